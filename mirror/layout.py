"""Where a workspace keeps things: one place that names every path, so no other module spells them.

A workspace is the directory holding ``mirror.toml``; the spec may move its wheelhouse and lockfiles
(``[mirror] wheelhouse``, ``lockfiles``). The wheelhouse is also the static tree that is served: ``files/``
(``/files/<project>/<filename>``) and ``simple/`` (the index), whatever serves it (the embedded server, nginx,
an object store), which is why :func:`files_dir` and :func:`simple_dir` take only a wheelhouse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SPEC = "mirror.toml"
FILES = "files"
SIMPLE = "simple"
HOME_PAGE = "index.html"


def files_dir(wheelhouse: Path) -> Path:
    """The locked wheels and sdists of a served tree: ``<wheelhouse>/files/<project>/<filename>``."""
    return wheelhouse / FILES


def simple_dir(wheelhouse: Path) -> Path:
    """The static Simple Repository index of a served tree."""
    return wheelhouse / SIMPLE


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """The paths of one workspace; all absolute."""

    root: Path  # the directory holding mirror.toml
    wheelhouse: Path
    lockfiles: Path

    @classmethod
    def default(cls, root: Path) -> Layout:
        """The layout ``mirror init`` writes: ``wheelhouse/`` and ``lockfiles/`` beside mirror.toml."""
        return cls(root=root, wheelhouse=root / "wheelhouse", lockfiles=root / "lockfiles")

    @property
    def spec(self) -> Path:
        return self.root / SPEC

    @property
    def files(self) -> Path:
        return files_dir(self.wheelhouse)

    @property
    def simple(self) -> Path:
        return simple_dir(self.wheelhouse)

    @property
    def home_page(self) -> Path:
        """The page for people, beside ``simple/``."""
        return self.wheelhouse / HOME_PAGE

    @property
    def build_requirements_cache(self) -> Path:
        """What each sdist's build backend asked for, by the sdist's sha256."""
        return self.wheelhouse / ".cache" / "build-requirements"

    @property
    def built_wheels(self) -> Path:
        """The record of wheels built here from sdists (:mod:`mirror.builtwheels`)."""
        return self.wheelhouse / "built-wheels.json"

    @property
    def compile_report(self) -> Path:
        """What still compiles on each target (:mod:`mirror.compilereport`)."""
        return self.wheelhouse / "compile-report.json"

    @property
    def tool(self) -> Path:
        """The tool's own workspace for bundles: its dependencies locked and fetched (:mod:`mirror.selfinstall`)."""
        return self.wheelhouse / ".tool"

    @property
    def imported_bundles(self) -> Path:
        """On the offline side: the bundles imported here, in order."""
        return self.wheelhouse / ".bundles.json"

    def files_from_lockfiles(self) -> str:
        """``files/`` as a POSIX path relative to the lockfiles (a PEP 751 ``path`` of a wheel built here)."""
        return Path(os.path.relpath(self.files, self.lockfiles)).as_posix()
