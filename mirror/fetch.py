"""mirror fetch: download exactly the locked files, verified, concurrently, resumably; and mirror check.

Files land in ``wheelhouse/files/<normalized-name>/<filename>``; a file several targets use is stored once.
Every download is verified by sha256 before it takes its name (:mod:`mirror._download`). A small record of
verified files (path, size, mtime, sha256) lets a re-run with nothing new finish without reading gigabytes:
``mirror check`` re-hashes everything on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests

from mirror import cooldown
from mirror._download import DownloadError, download, fsync_directory
from mirror._verified import VerifiedRecord, sha256_file
from mirror.errors import MirrorError
from mirror.manifest import MANIFEST, FileEntry, Manifest, TargetEntry
from mirror.progress import NullProgress, Progress

log = logging.getLogger(__name__)


class FetchError(MirrorError):
    """Some locked files could not be fetched."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetStats:
    """Per target: how many files it uses, their bytes, and how many were downloaded now or already here."""

    name: str
    files: int
    nbytes: int
    new: int
    reused: int


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchResult:
    downloaded: tuple[str, ...]
    reused: tuple[str, ...]
    missing: tuple[str, ...]  # --offline: what is not here yet
    targets: tuple[TargetStats, ...]
    nbytes: int  # downloaded now


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    ok: tuple[str, ...]
    missing: tuple[str, ...]
    corrupt: tuple[str, ...]  # "file: sha256 X, expected Y"
    partials: tuple[Path, ...] = ()  # unfinished downloads, resumed by the next fetch

    def render(self) -> list[str]:
        lines = [f"missing  {name}" for name in self.missing] + [f"corrupt  {line}" for line in self.corrupt]
        if self.partials:
            lines.append(f"{len(self.partials)} unfinished downloads (*.part) will be resumed by the next fetch")
        return [*lines, f"{len(self.ok)} ok, {len(self.missing)} missing, {len(self.corrupt)} corrupt"]


def files_for(targets: Iterable[TargetEntry], manifest: Manifest) -> dict[str, FileEntry]:
    """Every file the targets use, once."""
    return {name: manifest.files[name] for entry in targets for name in entry.filenames()}


def _check_cooldown(manifest: Manifest, files: Iterable[FileEntry]) -> None:
    """Every upstream file of a lock with a cooldown was uploaded before its cutoff (the lock is checked again, not
    trusted: it may have been edited, or made by another version)."""
    if manifest.exclude_newer is None:
        return
    limit = cooldown.uploaded(manifest.exclude_newer)
    if limit is None:
        raise FetchError(f"{MANIFEST}: exclude_newer: {manifest.exclude_newer!r} is not an RFC 3339 timestamp")
    for file in sorted(files, key=lambda f: f.filename):
        if file.built_from is None and cooldown.too_new(file.upload_time, limit):
            when = f"was uploaded {file.upload_time}" if file.upload_time else "has no upload time"
            raise FetchError(
                f"{file.filename} {when}, after the lock's exclude-newer {manifest.exclude_newer}; run mirror lock"
            )


def fetch(
    manifest: Manifest,
    files_dir: Path,
    *,
    session: requests.Session,
    targets: Sequence[str] = (),
    jobs: int = 8,
    offline: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    """Bring every file the chosen targets use into ``files_dir`` (all targets when none are named)."""
    progress = progress or NullProgress()
    chosen = manifest.select(targets)
    wanted = files_for(chosen, manifest)
    _check_cooldown(manifest, wanted.values())
    record = VerifiedRecord(files_dir)
    present: list[str] = []
    todo: list[FileEntry] = []
    for name in sorted(wanted):
        file = wanted[name]
        if record.fresh(file):
            present.append(name)
        elif (files_dir / file.relpath).is_file() and sha256_file(files_dir / file.relpath) == file.sha256:
            record.add(file)
            present.append(name)
        elif file.url is None:
            continue  # a wheel built here: fetch builds it again (mirror.wheelbuild), nothing to download
        else:
            todo.append(file)
    if offline:
        record.save()
        return FetchResult(
            downloaded=(),
            reused=tuple(present),
            missing=tuple(f.filename for f in todo),
            targets=_stats(chosen, manifest, set(), files_dir),
            nbytes=0,
        )

    progress.start(len(todo), sum(f.size or 0 for f in todo))
    downloaded: list[str] = []
    errors: list[str] = []
    nbytes = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_fetch_one, session, file, files_dir, progress): file for file in todo}
        for future in as_completed(futures):
            file = futures[future]
            try:
                future.result()
            except DownloadError as exc:
                errors.append(str(exc))
                continue
            record.add(file)
            downloaded.append(file.filename)
            nbytes += (files_dir / file.relpath).stat().st_size
            progress.done(file.filename)
    for directory in sorted({(files_dir / name).parent for name in (wanted[n].relpath for n in downloaded)}):
        fsync_directory(directory)
    record.save()
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise FetchError(f"{sorted(errors)[0]}{more}")
    return FetchResult(
        downloaded=tuple(sorted(downloaded)),
        reused=tuple(present),
        missing=(),
        targets=_stats(chosen, manifest, set(downloaded), files_dir),
        nbytes=nbytes,
    )


def _fetch_one(session: requests.Session, file: FileEntry, files_dir: Path, progress: Progress) -> None:
    assert file.url is not None
    download(session, file.url, files_dir / file.relpath, sha256=file.sha256, size=file.size, on_bytes=progress.advance)


def _stats(
    targets: Iterable[TargetEntry], manifest: Manifest, downloaded: set[str], files_dir: Path
) -> tuple[TargetStats, ...]:
    out = []
    for entry in targets:
        names = entry.filenames()
        sizes = []
        for name in names:
            path = files_dir / manifest.files[name].relpath
            sizes.append(path.stat().st_size if path.is_file() else (manifest.files[name].size or 0))
        new = sum(1 for n in names if n in downloaded)
        out.append(TargetStats(name=entry.name, files=len(names), nbytes=sum(sizes), new=new, reused=len(names) - new))
    return tuple(out)


def check(manifest: Manifest, files_dir: Path, *, targets: Sequence[str] = ()) -> CheckResult:
    """Re-hash every locked file of the chosen targets; refresh the verified record."""
    wanted = files_for(manifest.select(targets), manifest)
    record = VerifiedRecord(files_dir)
    ok, missing, corrupt = [], [], []
    for name in sorted(wanted):
        file = wanted[name]
        path = files_dir / file.relpath
        if not path.is_file():
            missing.append(name)
            record.forget(file)
            continue
        actual = sha256_file(path)
        if actual == file.sha256:
            ok.append(name)
            record.add(file)
        else:
            corrupt.append(f"{name}: sha256 {actual}, expected {file.sha256}")
            record.forget(file)
    if files_dir.is_dir():
        record.save()
    return CheckResult(
        ok=tuple(ok), missing=tuple(missing), corrupt=tuple(corrupt), partials=tuple(stray_partials(files_dir))
    )


def stray_partials(files_dir: Path) -> list[Path]:
    """Unfinished downloads (``.*.part``) — never served, resumed by the next fetch."""
    if not files_dir.is_dir():
        return []
    return sorted(p for p in files_dir.glob("*/.*.part") if p.is_file())
