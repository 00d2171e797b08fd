"""Pipfile.lock: the pins Pipenv wrote (JSON, pipfile-spec 6), kept exactly per target.

Each category (``default``, ``develop``, or a custom one) maps a package to its ``version`` (``==X``), its
``hashes`` and a ``markers`` expression. For a target, the packages of the chosen categories (default:
``default``) whose markers hold are pinned; ``_meta.requires.python_version`` (or ``python_full_version``) must be
the target's Python. A package the lock could not pin (Pipenv writes ``"version": "*"`` with no hashes for one it
could not resolve on the locking machine) is an error on a target that installs it. A package from git, a URL or a
file is refused; a local path (``editable``, ``path``) is built, not mirrored. The lock lists hashes, not file
names: each must be the sha256 of a file the upstream serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from mirror.sources.inputs import (
    RELEASE_ADVICE,
    InvalidSource,
    LockedFiles,
    fields,
    marker_holds,
    sha256_of,
)
from mirror.targets import Target

DEFAULT = "default"
_REMOTE_KEYS = ("git", "hg", "svn", "bzr", "file")
_LOCAL_KEYS = ("path", "editable")


@dataclass(frozen=True, kw_only=True, slots=True)
class PipfilePackage:
    name: str  # normalized
    category: str
    version: str | None  # None: not pinned (Pipenv wrote "*" or nothing)
    markers: str | None
    hashes: tuple[str, ...]
    local: bool
    remote: str | None
    index: str | None = None  # the URL of the _meta.sources entry its "index" names


@dataclass(frozen=True, kw_only=True, slots=True)
class PipfileLock:
    path: Path
    label: str
    python_version: str | None  # X.Y
    packages: tuple[PipfilePackage, ...]

    @property
    def categories(self) -> list[str]:
        return sorted({p.category for p in self.packages} | {DEFAULT})

    def locked(self, target: Target, categories: tuple[str, ...] = ()) -> list[LockedFiles]:
        """The packages the chosen ``categories`` (default: default) install on ``target``, with their hashes."""
        chosen = categories or (DEFAULT,)
        unknown = [c for c in chosen if c not in self.categories]
        if unknown:
            known = ", ".join(self.categories)
            raise InvalidSource(self.label, f"no category {unknown[0]!r} in the lock; known: {known}")
        wanted = "{}.{}".format(*target.python_version)
        if self.python_version and self.python_version != wanted:
            raise InvalidSource(
                self.label,
                f"_meta.requires: the lock is for Python {self.python_version}, not target {target.name!r}"
                f" (Python {target.python}); lock for it with pipenv lock --python {wanted}, or drop the target",
            )
        out: dict[str, LockedFiles] = {}
        for package in self.packages:
            where = f"{package.category}.{package.name}"
            if package.category not in chosen or not marker_holds(
                package.markers, target, label=self.label, where=where
            ):
                continue
            if package.local:
                continue
            if package.remote is not None:
                raise InvalidSource(
                    self.label, f"{where}: a {package.remote} source cannot be mirrored from an index; {RELEASE_ADVICE}"
                )
            if package.version is None:
                raise InvalidSource(
                    self.label,
                    f"{where}: locked without a version on target {target.name!r} (Pipenv could not resolve it"
                    " where the lock was made); lock it on that platform, or pin it in the Pipfile",
                )
            locked = LockedFiles(
                name=package.name,
                version=package.version,
                origin=self.label,
                files=tuple((None, h) for h in package.hashes),
                index=package.index,
            )
            other = out.setdefault(package.name, locked)
            if other.version != locked.version:
                raise InvalidSource(
                    self.label,
                    f"{package.name} is locked at {other.version} and {locked.version} in the chosen categories;"
                    " one environment cannot install both",
                )
        return list(out.values())


def parse_pipfile_lock(text: str, *, path: Path, label: str | None = None) -> PipfileLock:
    """Parse the Pipfile.lock ``text`` of the file at ``path`` (shown as ``label``)."""
    label = label if label is not None else str(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidSource(label, f"not valid JSON: {exc}") from None
    check = fields(label, shown="repr")
    document = check.table(data, "", what="a JSON object", shown="")
    meta = check.table(document.get("_meta", {}), "_meta")
    requires = check.table(meta.get("requires", {}), "_meta", "requires")
    python = check.optional_string(requires.get("python_version"), "_meta.requires", "python_version")
    full = check.optional_string(requires.get("python_full_version"), "_meta.requires", "python_full_version")
    if python is None and full is not None:
        python = ".".join(full.split(".")[:2])
    sources: dict[str, str] = {}
    for i, item in enumerate(check.array(meta.get("sources", []), "_meta", "sources")):
        source = check.table(item, f"_meta.sources[{i}]")
        name, url = source.get("name"), source.get("url")
        if isinstance(name, str) and isinstance(url, str):
            sources[name] = url
    packages = []
    for category, entries in document.items():
        if category == "_meta":
            continue
        for name, value in check.table(entries, category).items():
            where = f"{category}.{name}"
            entry = check.table(value, where)
            version = check.optional_string(entry.get("version"), where, "version")
            hashes = tuple(
                h for h in (sha256_of(v) for v in check.strings(entry.get("hashes", []), where, "hashes")) if h
            )
            remote = next((key for key in _REMOTE_KEYS if key in entry), None)
            index = check.optional_string(entry.get("index"), where, "index")
            if index is not None and index not in sources:
                known = ", ".join(sources) or "none"
                raise InvalidSource(label, f"{where}.index: {index!r} is not the name of one of _meta.sources: {known}")
            packages.append(
                PipfilePackage(
                    name=str(canonicalize_name(name)),
                    category=str(canonicalize_name(category)),
                    version=version.removeprefix("==") if version and version.startswith("==") else None,
                    markers=check.optional_string(entry.get("markers"), where, "markers"),
                    hashes=hashes,
                    local=any(key in entry for key in _LOCAL_KEYS) and remote is None,
                    remote=remote,
                    index=sources[index] if index is not None else None,
                )
            )
    return PipfileLock(path=path, label=label, python_version=python, packages=tuple(packages))
