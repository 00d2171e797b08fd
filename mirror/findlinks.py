"""``[sources] find-links``: folders of wheels and sdists (a CI's output) read as one more index.

Like pip's ``--find-links DIR``, every wheel and sdist directly inside each folder is a candidate (sub-folders are
not searched). Unlike pip, a project found there comes from there **only** (:data:`mirror.indexes.FIND_LINKS` is
its route): a team's own build must never be outranked by a same-named upload elsewhere. Each file's sha256 is
computed here; a wheel's ``Requires-Python`` is read from its metadata, as an index would publish it. The files
are then locked, fetched (copied, verified), indexed and served like every other.
"""

from __future__ import annotations

import email.parser
import logging
import threading
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from mirror._filenames import classify
from mirror._verified import sha256_file
from mirror.errors import MirrorError
from mirror.indexes import FIND_LINKS
from mirror.simple import DistFile, ProjectPage, UnknownProject

log = logging.getLogger(__name__)


class FindLinksError(MirrorError):
    """A find-links folder cannot be read, or holds two different files of one name."""


def _requires_python(wheel: Path) -> str | None:
    """``Requires-Python`` of a wheel's METADATA (None when absent or unreadable)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            name = names[0] if names else None
            if name is None:
                return None
            headers = email.parser.BytesHeaderParser().parsebytes(archive.read(name))
    except (OSError, zipfile.BadZipFile) as exc:
        raise FindLinksError(f"{wheel}: not a readable wheel: {exc}") from None
    value = str(headers.get("Requires-Python") or "").strip()
    return value or None


class FindLinks:
    """The distributions of some folders, by project; pages are made (and files hashed) on first ask."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple(folders)
        self._paths: dict[str, dict[str, Path]] = {}  # project -> filename -> path
        for folder in self.folders:
            try:
                entries = sorted(folder.iterdir())
            except OSError as exc:
                raise FindLinksError(f"find-links {folder}: cannot read: {exc.strerror or exc}") from None
            for path in entries:
                parsed = classify(path.name) if path.is_file() else None
                if parsed is None:
                    continue
                files = self._paths.setdefault(parsed[0], {})
                other = files.setdefault(path.name, path)
                if other != path and sha256_file(other) != sha256_file(path):
                    raise FindLinksError(f"find-links: {other} and {path} differ; a file name must mean one file")
        self._pages: dict[str, ProjectPage] = {}
        self._lock = threading.Lock()

    def projects(self) -> Mapping[str, Path]:
        """Each project found, with one of its files (to say why the name is routed here)."""
        return {name: next(iter(files.values())) for name, files in sorted(self._paths.items())}

    def check(self) -> None:
        """Nothing to reach: the folders were read when this was made."""

    def project(self, name: str) -> ProjectPage:
        project = str(canonicalize_name(name))
        with self._lock:
            page = self._pages.get(project)
            if page is None:
                if project not in self._paths:
                    raise UnknownProject(f"{project}: not in the find-links folders")
                page = ProjectPage(name=project, files=tuple(self._file(p) for p in self._paths[project].values()))
                self._pages[project] = page
        return page

    @staticmethod
    def _file(path: Path) -> DistFile:
        parsed = classify(path.name)
        assert parsed is not None
        name, version, kind = parsed
        return DistFile(
            filename=path.name,
            url=path.absolute().as_uri(),
            project=name,
            version=version,
            kind=kind,
            sha256=sha256_file(path),
            size=path.stat().st_size,
            requires_python=_requires_python(path) if kind == "wheel" else None,
            index=FIND_LINKS,
        )
