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
ADVISORIES = "advisories/osv-pypi.zip"  # beside mirror.toml; also its path in a bundle
USE_PAGE = "use.html"  # the page for people: how to point each client at this mirror
PROJECT_PAGES = "projects"  # the pages for people, one per project: projects/<normalized name>.html
CHANGES = ".changes.json"  # what each index run found changed in the lock (the overview's "what changed")


def files_dir(wheelhouse: Path) -> Path:
    """The locked wheels and sdists of a served tree: ``<wheelhouse>/files/<project>/<filename>``."""
    return wheelhouse / FILES


def simple_dir(wheelhouse: Path) -> Path:
    """The static Simple Repository index of a served tree."""
    return wheelhouse / SIMPLE


def project_pages_dir(wheelhouse: Path) -> Path:
    """The pages for people about each project of a served tree: ``<wheelhouse>/projects/<project>.html``."""
    return wheelhouse / PROJECT_PAGES


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """The paths of one workspace; all absolute. Made by :meth:`of` (or :meth:`default`) from the three a spec
    chooses; every other path follows from them."""

    root: Path  # the directory holding mirror.toml
    wheelhouse: Path
    lockfiles: Path
    spec: Path  # mirror.toml
    files: Path  # the locked wheels and sdists: files/<project>/<filename>
    simple: Path  # the static index
    home_page: Path  # the page for people, beside simple/
    build_requirements_cache: Path  # what each sdist's build backend asked for, by the sdist's sha256
    license_cache: Path  # the license each file declares, by its sha256 (mirror.sbom)
    built_wheels: Path  # the record of wheels built here from sdists (mirror.builtwheels)
    compile_report: Path  # what still compiles on each target (mirror.compilereport)
    tool: Path  # offline-mirror's own workspace for bundles: its dependencies locked and fetched (mirror.selfinstall)
    imported_bundles: Path  # on the offline side: the bundles imported here, in order
    advisories: Path  # the OSV export a bundle carried (bundle export --osv), which mirror audit reads by default

    @classmethod
    def of(cls, root: Path, *, wheelhouse: Path, lockfiles: Path) -> Layout:
        return cls(
            root=root,
            wheelhouse=wheelhouse,
            lockfiles=lockfiles,
            spec=root / SPEC,
            files=files_dir(wheelhouse),
            simple=simple_dir(wheelhouse),
            home_page=wheelhouse / HOME_PAGE,
            build_requirements_cache=wheelhouse / ".cache" / "build-requirements",
            license_cache=wheelhouse / ".cache" / "licenses.json",
            built_wheels=wheelhouse / "built-wheels.json",
            compile_report=wheelhouse / "compile-report.json",
            tool=wheelhouse / ".tool",
            imported_bundles=wheelhouse / ".bundles.json",
            advisories=root / ADVISORIES,
        )

    @classmethod
    def default(cls, root: Path) -> Layout:
        """The layout ``mirror init`` writes: ``wheelhouse/`` and ``lockfiles/`` beside mirror.toml."""
        return cls.of(root, wheelhouse=root / "wheelhouse", lockfiles=root / "lockfiles")

    def files_from_lockfiles(self) -> str:
        """``files/`` as a POSIX path relative to the lockfiles (a PEP 751 ``path`` of a wheel built here)."""
        return Path(os.path.relpath(self.files, self.lockfiles)).as_posix()
