"""mirror index: a static Simple Repository tree that any web server, object store or CDN can serve.

``wheelhouse/simple/`` gets, for the root and for each project (normalized names) — and beside it the pages for
people (:mod:`mirror.pages`: ``index.html``, ``projects/<project>.html``, ``use.html``):

* ``index.html`` — PEP 503, with ``#sha256=`` on every link, ``data-requires-python`` (escaped), PEP 592
  ``data-yanked``, and PEP 658/714 ``data-core-metadata`` / ``data-dist-info-metadata``;
* ``index.json`` — PEP 691 v1.1 (PEP 700: ``versions``, ``size``, ``upload-time``; PEP 714 ``core-metadata`` only:
  pip 22.3-23.1 crash on the old JSON key).

Each wheel's ``METADATA`` is extracted next to it as ``<file>.metadata`` (PEP 658), so pip and uv resolve without
downloading wheels. File links are relative (``../../files/<project>/<file>``): nothing in the tree depends on
the host that serves it. Only files that are present and verified are listed — the index never names a file
that is missing or unverified. Output is deterministic and written atomically; a project's pages (its Simple
pages, its page for people) are rewritten only when what they show changed.

What changed in the lock is kept in ``wheelhouse/.changes.json``: each run compares the lock's project versions
with the previous run's and, when they differ, records the change and when it was seen (the newest ten are kept).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import stat
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from packaging.version import InvalidVersion, Version

from mirror import __version__, _atomic
from mirror._verified import verified_stats
from mirror.errors import MirrorError
from mirror.layout import CHANGES, HOME_PAGE, USE_PAGE, files_dir, project_pages_dir, simple_dir
from mirror.manifest import FileEntry, Manifest
from mirror.pages import (
    BundleImport,
    LockChange,
    Overview,
    PageFile,
    ProjectSummary,
    check_url,
    overview_html,
    project_page_html,
    use_html,
)
from mirror.progress import Progress

log = logging.getLogger(__name__)

API_VERSION = "1.1"
STATE = ".state.json"
WRITING = ".writing"  # in simple/ while a batch of index files is staged (see mirror._atomic.Batch)
STATE_VERSION = 1
KEPT_CHANGES = 10  # lock changes kept in .changes.json (and shown on the overview)


class IndexWriteError(MirrorError):
    """The index cannot be written."""


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexedFile:
    """One link of a project page."""

    filename: str
    project: str
    version: str  # as the lock has it: str(Version) of the filename's version
    sha256: str
    size: int
    requires_python: str | None = None
    upload_time: str | None = None
    yanked: bool | str = False
    metadata_sha256: str | None = None  # PEP 658: sha256 of <file>.metadata, for wheels

    def to_json(self) -> dict[str, object]:
        metadata: object = {"sha256": self.metadata_sha256} if self.metadata_sha256 else False
        out: dict[str, object] = {
            "filename": self.filename,
            "url": f"../../files/{self.project}/{self.filename}",
            "hashes": {"sha256": self.sha256},
            "requires-python": self.requires_python,
            "size": self.size,
            "yanked": self.yanked,
            # PEP 714: only the new name in JSON. pip 22.3-23.1 (bundled with Python 3.8-3.10) crash on a dict
            # under "dist-info-metadata" (pypa/pip#12042); they ignore "core-metadata" and download the wheel.
            "core-metadata": metadata,
        }
        if self.upload_time:
            out["upload-time"] = self.upload_time
        return out

    def to_html(self) -> str:
        attrs = [f'href="../../files/{html.escape(self.project)}/{html.escape(self.filename)}#sha256={self.sha256}"']
        if self.requires_python:
            attrs.append(f'data-requires-python="{html.escape(self.requires_python)}"')
        if self.metadata_sha256:
            attrs.append(f'data-dist-info-metadata="sha256={self.metadata_sha256}"')
            attrs.append(f'data-core-metadata="sha256={self.metadata_sha256}"')
        if self.yanked is not False:
            reason = self.yanked if isinstance(self.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason)}"')
        return f"    <a {' '.join(attrs)}>{html.escape(self.filename)}</a><br/>"


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexResult:
    projects: int
    files: int
    written: tuple[str, ...]  # projects whose pages were (re)written
    skipped: tuple[str, ...]  # locked files not indexed: missing or unverified

    def render(self, simple: Path) -> list[str]:
        return [
            f"index: {self.projects} projects, {self.files} files in {simple} ({len(self.written)} pages rewritten)"
        ]

    def warnings(self) -> list[str]:
        return [f"not indexed (missing or unverified; run mirror fetch): {name}" for name in self.skipped]


def extract_metadata(wheel: Path) -> bytes:
    """The ``*.dist-info/METADATA`` of a wheel (the one whose directory matches the wheel's name)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            candidates = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(candidates) != 1:
                raise IndexWriteError(f"{wheel.name}: expected one .dist-info/METADATA, found {len(candidates)}")
            return archive.read(candidates[0])
    except (OSError, zipfile.BadZipFile) as exc:
        raise IndexWriteError(f"{wheel.name}: cannot read the wheel: {exc}") from None


class _MetadataFiles:
    """PEP 658 ``<wheel>.metadata`` files: extracted when missing or older than the wheel.

    Their sha256 is remembered in the index state with the wheel's and the file's size and mtime, so an unchanged
    tree is not read again (the trust the verified record gives files: same size and mtime, same content).
    """

    def __init__(self, known: Mapping[str, object], batch: _atomic.Batch | None) -> None:
        self.known = known
        self.batch = batch
        self.seen: dict[str, list[int | str]] = {}  # relpath -> [wheel size, wheel mtime, size, mtime, sha256]

    def sha256(self, relpath: str, wheel_path: str, wheel_stat: os.stat_result) -> str:
        """Write ``<wheel>.metadata`` if needed; return its sha256."""
        try:
            found: os.stat_result | None = os.stat(f"{wheel_path}.metadata")  # str paths: pathlib costs as much
        except FileNotFoundError:
            found = None
        wheel_key: list[int | str] = [wheel_stat.st_size, wheel_stat.st_mtime_ns]
        if found is not None and stat.S_ISREG(found.st_mode) and found.st_mtime_ns >= wheel_stat.st_mtime_ns:
            key = [*wheel_key, found.st_size, found.st_mtime_ns]
            cached = self.known.get(relpath)
            if isinstance(cached, list) and len(cached) == 5 and cached[:4] == key and isinstance(cached[4], str):
                digest: str = cached[4]
            else:
                digest = hashlib.sha256(Path(f"{wheel_path}.metadata").read_bytes()).hexdigest()
        else:
            wheel = Path(wheel_path)
            target = wheel.with_name(wheel.name + ".metadata")
            data = extract_metadata(wheel)
            if self.batch is not None:
                written = self.batch.write_bytes(target, data)
            else:
                _atomic.write_bytes(target, data)
                written = target.stat()
            key = [*wheel_key, written.st_size, written.st_mtime_ns]
            digest = hashlib.sha256(data).hexdigest()
        self.seen[relpath] = [*key, digest]
        return digest


def collect(
    manifest: Manifest, files_dir: Path, *, metadata: _MetadataFiles | None = None
) -> tuple[dict[str, list[IndexedFile]], list[str]]:
    """The indexed files per project: every locked file present and verified under ``files_dir``."""
    metadata = metadata or _MetadataFiles({}, None)
    ready, skipped = verified_stats(manifest, files_dir, purpose="indexed")
    projects: dict[str, list[IndexedFile]] = defaultdict(list)
    for file, found in ready:
        projects[file.project].append(_indexed(file, found, files_dir, metadata))
    return dict(projects), skipped


def _indexed(file: FileEntry, found: os.stat_result, files_dir: Path, metadata: _MetadataFiles) -> IndexedFile:
    path = f"{files_dir}{os.sep}{file.project}{os.sep}{file.filename}"  # file.relpath, without pathlib's cost
    return IndexedFile(
        filename=file.filename,
        project=file.project,
        version=file.version,
        sha256=file.sha256,
        size=found.st_size,
        requires_python=file.requires_python,
        upload_time=file.upload_time,
        yanked=file.yanked,
        metadata_sha256=metadata.sha256(file.relpath, path, found) if file.kind == "wheel" else None,
    )


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def project_json(project: str, files: Iterable[IndexedFile]) -> str:
    ordered = sorted(files, key=lambda f: f.filename)
    versions = sorted({f.version for f in ordered}, key=_version_key)
    document = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": versions,
        "files": [f.to_json() for f in ordered],
    }
    return json.dumps(document, indent=1, sort_keys=False) + "\n"


def project_html(project: str, files: Iterable[IndexedFile]) -> str:
    name = html.escape(project)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>Links for {name}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {name}</h1>",
        *(f.to_html() for f in sorted(files, key=lambda f: f.filename)),
        "  </body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"


def root_json(projects: Iterable[str]) -> str:
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in sorted(projects)]}
    return json.dumps(document, indent=1) + "\n"


def root_html(projects: Iterable[str]) -> str:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
        *(f'    <a href="{html.escape(p)}/">{html.escape(p)}</a><br/>' for p in sorted(projects)),
        "  </body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"


def _targets_of(manifest: Manifest) -> dict[str, list[str]]:
    """Which targets' locks use each file, in the lock's target order."""
    targets_of: dict[str, list[str]] = {}
    for entry in manifest.targets:
        name = entry.name
        for package in entry.packages:
            for filename in package.files:
                targets_of.setdefault(filename, []).append(name)
    return targets_of


def _source(manifest: Manifest, filename: str) -> str:
    """Where a file came from, for a person: its index's name, "find-links", or "built here"."""
    file = manifest.files.get(filename)
    if file is None:
        return "?"
    return "built here" if file.built_from is not None else file.index or "upstream"


def overview(
    manifest: Manifest,
    projects: Mapping[str, list[IndexedFile]],
    *,
    missing: int = 0,
    changes: Sequence[LockChange] = (),
    bundles: Sequence[BundleImport] = (),
    targets_of: Mapping[str, Sequence[str]] | None = None,
) -> Overview:
    """What ``wheelhouse/index.html`` shows of the lock and its indexed files."""
    targets_of = targets_of if targets_of is not None else _targets_of(manifest)
    rows = []
    for name in sorted(projects):
        files = projects[name]
        covered = {t for f in files for t in targets_of.get(f.filename, ())}
        rows.append(
            ProjectSummary(
                name=name,
                versions=tuple(sorted({f.version for f in files}, key=_version_key)),
                files=len(files),
                size=sum(f.size for f in files),
                targets=tuple(t.name for t in manifest.targets if t.name in covered),
                sources=tuple(sorted({_source(manifest, f.filename) for f in files})),
            )
        )
    return Overview(
        projects=tuple(rows),
        targets=tuple((t.name, t.target.describe()) for t in manifest.targets),
        indexes=tuple(manifest.indexes.items()),
        locked_files=sum(len(f) for f in projects.values()) + missing,
        missing=missing,
        changes=tuple(changes),
        bundles=tuple(bundles),
    )


def page_files(
    manifest: Manifest, files: Iterable[IndexedFile], targets_of: Mapping[str, Sequence[str]]
) -> list[PageFile]:
    """A project's indexed files as its page for people shows them."""
    out = []
    for f in files:
        entry = manifest.files.get(f.filename)
        out.append(
            PageFile(
                filename=f.filename,
                project=f.project,
                version=f.version,
                kind="wheel" if f.filename.endswith(".whl") else "sdist",
                size=f.size,
                sha256=f.sha256,
                requires_python=f.requires_python,
                upload_time=f.upload_time,
                yanked=f.yanked,
                index=entry.index if entry is not None else None,
                built_from=entry.built_from if entry is not None else None,
                targets=tuple(targets_of.get(f.filename, ())),
            )
        )
    return out


def locked_versions(manifest: Manifest) -> dict[str, list[str]]:
    """Each project of the lock (by its files' normalized names) and its versions over every target (in text order:
    :meth:`LockChange.between` orders the few that changed as versions)."""
    versions: dict[str, set[str]] = defaultdict(set)
    files = manifest.files
    for entry in manifest.targets:
        for package in entry.packages:
            if package.files and package.files[0] in files:
                versions[files[package.files[0]].project].add(package.version)
    return {name: sorted(found) for name, found in sorted(versions.items())}  # by text: Version() costs 30 ms here


@dataclass(frozen=True, kw_only=True, slots=True)
class _History:
    """``wheelhouse/.changes.json``: the lock's project versions at the last run, and the changes seen."""

    lock: Mapping[str, Sequence[str]] | None  # None: no run recorded one
    changes: tuple[LockChange, ...] = ()

    @classmethod
    def load(cls, path: Path) -> tuple[_History, str]:
        """The record (empty when missing or unreadable: it is only shown) and its text."""
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, ValueError):
            return cls(lock=None), ""
        if not isinstance(data, dict) or not isinstance(data.get("lock"), dict):
            return cls(lock=None), text
        lock = {str(name): [str(v) for v in found] for name, found in data["lock"].items() if isinstance(found, list)}
        raw = data.get("changes")
        changes = [LockChange.from_dict(item) for item in raw] if isinstance(raw, list) else []
        return cls(lock=lock, changes=tuple(c for c in changes if c is not None)), text

    def after(self, lock: Mapping[str, Sequence[str]], at: Callable[[], str]) -> _History:
        change = LockChange.between(self.lock or {}, lock, at=at())
        if change is None:
            return self
        return _History(lock=lock, changes=(change, *self.changes)[:KEPT_CHANGES])

    def dumps(self) -> str:
        document = {"lock": self.lock, "changes": [c.to_dict() for c in self.changes]}
        return json.dumps(document, separators=(",", ":")) + "\n"


def _remove_stale_temporaries(wheelhouse: Path) -> None:
    """What an index run killed before its commit left: its staged ``.<name>.*.part`` files, never renamed."""
    stale = [
        *files_dir(wheelhouse).glob("*/.*.metadata.*.part"),
        *simple_dir(wheelhouse).glob(".*.part"),
        *simple_dir(wheelhouse).glob("*/.index.*.part"),
        *wheelhouse.glob(".index.html.*.part"),
        *wheelhouse.glob(f".{USE_PAGE}.*.part"),
        *wheelhouse.glob(f".{CHANGES}.*.part"),
        *project_pages_dir(wheelhouse).glob(".*.part"),
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary files of an index run that did not finish", len(stale))


def _content_key(manifest: Manifest, digests: Mapping[str, str]) -> str:
    """What the pages for people are made of, but for the history and the counts: the projects' Simple pages, the
    targets and which files each uses, the indexes and where each file came from. While it is unchanged, so are
    every project's page for people and the lock's project versions."""
    targets = [[t.name, t.target.describe(), t.filenames()] for t in manifest.targets]
    sources = sorted(
        (name, file.index, file.built_from) for name, file in manifest.files.items() if file.index or file.built_from
    )
    text = json.dumps([__version__, sorted(digests.items()), targets, sorted(manifest.indexes.items()), sources])
    return hashlib.sha256(text.encode()).hexdigest()


def _home_key(content_key: str, shown: Sequence[object]) -> str:
    """What ``wheelhouse/index.html`` is made of: the content and ``shown`` (counts, what changed, bundles)."""
    return hashlib.sha256(json.dumps([content_key, shown]).encode()).hexdigest()


def _people_key(
    digest: str, files: Iterable[IndexedFile], manifest: Manifest, targets_of: Mapping[str, Sequence[str]], columns: str
) -> str:
    """What a project's page for people shows beyond its Simple pages (``digest``): each file's targets, index and
    source sdist, and the mirror's targets (its columns). ``files`` in a fixed order (``collect`` sorts them)."""
    entries = manifest.files
    parts = [digest, columns]
    for f in files:
        entry = entries[f.filename]  # collect() lists files of the lock only
        parts.append(f"{f.filename}\0{targets_of.get(f.filename)}\0{entry.index}\0{entry.built_from}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]  # 128 bits: a smaller state


def _digest(files: Iterable[IndexedFile]) -> str:
    """What a project's pages show, as one hash: every field of every file (the dataclass repr names them all)."""
    text = "\n".join(repr(f) for f in sorted(files, key=lambda f: f.filename))
    return hashlib.sha256(text.encode()).hexdigest()


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_index(
    manifest: Manifest,
    wheelhouse: Path,
    *,
    progress: Progress | None = None,
    url: str | None = None,
    bundles: Sequence[BundleImport] = (),
    clock: Callable[[], str] = _utc_now,
) -> IndexResult:
    """Write ``wheelhouse/simple`` for every verified file of the lock, and the pages for people; rewrite only what
    changed.

    ``url``: the mirror's Simple API root for ``use.html`` (kept for later runs; without one ever given, the page
    names the address it is loaded from). ``bundles``: the bundles imported here, for the overview. ``clock``: the
    moment (RFC 3339, UTC) a change of the lock is recorded with.

    Everything is written as one :class:`mirror._atomic.Batch` (metadata files first, then project pages, the root,
    the pages for people and the state last): one wave of fsyncs for thousands of files instead of one each.
    """
    if url is not None:
        check_url(url)
    files = files_dir(wheelhouse)
    simple = simple_dir(wheelhouse)
    people_dir = project_pages_dir(wheelhouse)
    state_path = simple / STATE
    state_text = ""
    try:
        state_text = state_path.read_text(encoding="utf-8")
        state = json.loads(state_text)
        if state.get("version") != STATE_VERSION:
            state = {}
        known: Mapping[str, str] = state["projects"]
    except (FileNotFoundError, ValueError, KeyError, AttributeError, TypeError):
        state, known = {}, {}
    known_metadata = state.get("metadata") if isinstance(state.get("metadata"), dict) else {}
    known_people = state.get("people") if isinstance(state.get("people"), dict) else {}
    if url is None and isinstance(state.get("url"), str):
        url = state["url"]
    history_path = wheelhouse / CHANGES
    history, history_text = _History.load(history_path)
    if (simple / WRITING).exists():
        _remove_stale_temporaries(wheelhouse)
    with _atomic.Batch(marker=simple / WRITING) as batch:
        metadata = _MetadataFiles(known_metadata, batch)
        projects, skipped = collect(manifest, files, metadata=metadata)
        digests = {name: _digest(files) for name, files in projects.items()}
        written = []
        for name in sorted(projects):
            page_dir = simple / name
            if known.get(name) == digests[name] and (page_dir / "index.html").is_file():
                continue
            batch.write_text(page_dir / "index.json", project_json(name, projects[name]))
            batch.write_text(page_dir / "index.html", project_html(name, projects[name]))
            written.append(name)
            if progress is not None:
                progress.message(f"indexed {name}")
        if written or set(known) != set(projects) or not (simple / "index.html").is_file():
            batch.write_text(simple / "index.json", root_json(projects))
            batch.write_text(simple / "index.html", root_html(projects))
        # the pages for people: one per project, when what it shows changed; the overview; use.html
        content_key = _content_key(manifest, digests)
        people_prefix = f"{people_dir}{os.sep}"  # str paths: pathlib costs as much as the stat
        unchanged = state.get("content") == content_key and set(known_people) == set(projects)
        targets_of: dict[str, list[str]] | None = None
        if unchanged:  # nothing a project's page shows changed: only a missing page is written again
            people = {name: str(key) for name, key in known_people.items()}
            stale = [name for name in sorted(projects) if not os.path.isfile(f"{people_prefix}{name}.html")]
        else:
            targets_of = _targets_of(manifest)
            # the version: another release may render the pages differently
            columns_text = repr((__version__, tuple((t.name, t.target.describe()) for t in manifest.targets)))
            people = {
                name: _people_key(digests[name], projects[name], manifest, targets_of, columns_text)
                for name in sorted(projects)
            }
            stale = [
                name
                for name in sorted(projects)
                if known_people.get(name) != people[name] or not os.path.isfile(f"{people_prefix}{name}.html")
            ]
        if not unchanged or history.lock is None:  # the lock's project versions follow from the content
            history = history.after(locked_versions(manifest), clock)
            history_document = history.dumps()
            if history_document != history_text:
                batch.write_text(history_path, history_document)
        if stale:
            targets_of = targets_of if targets_of is not None else _targets_of(manifest)
            columns = tuple((t.name, t.target.describe()) for t in manifest.targets)
            for name in stale:
                shown_files = page_files(manifest, projects[name], targets_of)
                batch.write_text(people_dir / f"{name}.html", project_page_html(name, shown_files, columns))
        shown = [len(skipped), [c.to_dict() for c in history.changes], [repr(b) for b in bundles]]
        home_key = _home_key(content_key, shown)
        if state.get("home") != home_key or not (wheelhouse / HOME_PAGE).is_file():
            summary = overview(
                manifest,
                projects,
                missing=len(skipped),
                changes=history.changes,
                bundles=bundles,
                targets_of=targets_of,
            )
            batch.write_text(wheelhouse / HOME_PAGE, overview_html(summary))
        use_key = hashlib.sha256(repr(("use", __version__, url)).encode()).hexdigest()
        if state.get("use") != use_key or not (wheelhouse / USE_PAGE).is_file():
            batch.write_text(wheelhouse / USE_PAGE, use_html(url))
        document = {
            "version": STATE_VERSION,
            "projects": digests,
            "home": home_key,
            "metadata": metadata.seen,
            "content": content_key,
            "people": people,
            "use": use_key,
            **({"url": url} if url is not None else {}),
        }
        text = json.dumps(document, separators=(",", ":")) + "\n"  # no indent: the C encoder, 10x faster
        if text != state_text:
            batch.write_text(state_path, text)
    for name in sorted(set(known) - set(projects)):  # projects no longer locked, once the root no longer names them
        for page in ("index.json", "index.html"):
            (simple / name / page).unlink(missing_ok=True)
        if (simple / name).is_dir() and not any((simple / name).iterdir()):
            (simple / name).rmdir()
    for name in sorted(set(known_people) - set(projects)):
        (people_dir / f"{name}.html").unlink(missing_ok=True)
    return IndexResult(
        projects=len(projects),
        files=sum(len(f) for f in projects.values()),
        written=tuple(written),
        skipped=tuple(skipped),
    )
