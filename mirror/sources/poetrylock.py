"""poetry.lock: the pins Poetry (>= 2, lock-version 2.1) wrote, kept exactly for each target.

Each ``[[package]]`` says which dependency groups need it (``groups``) and when (``markers``: one PEP 508 marker,
or one per group). For a target, the packages of the chosen groups (default: ``main``) whose marker holds on that
target are pinned; ``[metadata] python-versions`` (Poetry's constraint syntax: ``^3.10``, ``>=3.9,<4.0``,
``~3.11``, ``||``) must allow the target's Python. A package from git, a URL or a file cannot come from an index
and is refused; a local directory is the project itself or a path dependency and is not mirrored. The files the
lock lists are kept with their sha256, for the check against the upstream.

Poetry 1.x locks (lock-version 2.0 and older) do not say which group needs a package; they are refused with the
way out: ``poetry lock`` with Poetry 2 keeps the locked versions and writes the groups.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mirror import _atomic
from mirror.sources.inputs import (
    RELEASE_ADVICE,
    InvalidSource,
    LockedFiles,
    fields,
    marker_holds,
    read_text,
    read_toml,
    sha256_of,
)
from mirror.targets import Target

MAIN = "main"
_LOCAL = ("directory",)
_UNMIRRORABLE = ("git", "url", "file")


@dataclass(frozen=True, kw_only=True, slots=True)
class PoetryPackage:
    name: str  # normalized
    version: str
    groups: tuple[str, ...]
    markers: str | dict[str, str] | None  # one marker, or one per group
    files: tuple[tuple[str, str], ...]  # (filename, sha256)
    source: str | None  # "legacy", "directory", "git", ...; None: PyPI
    source_url: str | None = None  # a legacy source's index URL


@dataclass(frozen=True, kw_only=True, slots=True)
class PoetryLock:
    path: Path
    label: str
    python_versions: str | None
    packages: tuple[PoetryPackage, ...]

    @property
    def groups(self) -> list[str]:
        return sorted({g for p in self.packages for g in p.groups})

    def locked(self, target: Target, groups: tuple[str, ...] = ()) -> list[LockedFiles]:
        """The packages the chosen ``groups`` (default: main) install on ``target``, with their files."""
        chosen = groups or (MAIN,)
        unknown = [g for g in chosen if g not in self.groups]
        if unknown:
            known = ", ".join(self.groups) or "none"
            raise InvalidSource(self.label, f"no dependency group {unknown[0]!r} in the lock; known: {known}")
        if self.python_versions and not poetry_allows(self.python_versions, target.python_full_version, self.label):
            raise InvalidSource(
                self.label,
                f"metadata.python-versions {self.python_versions!r} excludes target {target.name!r} (Python"
                f" {target.python}); the lock cannot be installed there",
            )
        out = []
        for package in self.packages:
            applies = [g for g in chosen if g in package.groups]
            if not applies or not any(_marker_holds(package, g, target, self.label) for g in applies):
                continue
            if package.source in _LOCAL:
                continue
            if package.source in _UNMIRRORABLE:
                raise InvalidSource(
                    self.label,
                    f"package {package.name} {package.version} comes from a {package.source} source and cannot be"
                    f" mirrored from an index; {RELEASE_ADVICE}",
                )
            index = package.source_url if package.source == "legacy" else None
            out.append(
                LockedFiles(
                    name=package.name, version=package.version, origin=self.label, files=package.files, index=index
                )
            )
        return out


def _marker_holds(package: PoetryPackage, group: str, target: Target, label: str) -> bool:
    marker = package.markers.get(group) if isinstance(package.markers, dict) else package.markers
    return marker_holds(marker, target, label=label, where=f"package {package.name}")


def parse_poetry_lock(text: str, *, path: Path, label: str | None = None) -> PoetryLock:
    """Parse the poetry.lock ``text`` of the file at ``path`` (shown as ``label``)."""
    label = label if label is not None else str(path)
    data = read_toml(text, label)
    check = fields(label, shown="repr")
    metadata = check.table(data.get("metadata", {}), "metadata")
    version = metadata.get("lock-version")
    if not isinstance(version, str) or _version_tuple(version) < (2, 1):
        raise InvalidSource(
            label,
            f"metadata.lock-version {version!r}: a Poetry 1.x lock does not say which dependency group needs each"
            " package; re-lock with Poetry >= 2 (`poetry lock` keeps the locked versions)",
        )
    packages = []
    for i, item in enumerate(check.array(data.get("package", []), "package", what="an array of tables")):
        where = f"package[{i}]"
        table = check.table(item, where)
        name = check.string(table.get("name"), where, "name")
        groups = tuple(str(canonicalize_name(g)) for g in check.strings(table.get("groups", []), where, "groups"))
        markers = table.get("markers")
        if markers is not None and not isinstance(markers, str):
            markers = {
                k: check.string(v, f"{where}.markers", k) for k, v in check.table(markers, where, "markers").items()
            }
        files = []
        for j, entry in enumerate(check.array(table.get("files", []), where, "files")):
            at = f"{where}.files[{j}]"
            item_table = check.table(entry, at)
            digest = sha256_of(item_table.get("hash"))
            if digest is not None:
                files.append((check.string(item_table.get("file"), at, "file"), digest))
        source = check.table(table["source"], where, "source") if "source" in table else None
        packages.append(
            PoetryPackage(
                name=str(canonicalize_name(name)),
                version=check.string(table.get("version"), where, "version"),
                groups=groups,
                markers=markers,
                files=tuple(files),
                source=check.string(source.get("type"), where, "source.type") if source is not None else None,
                source_url=None if source is None else check.optional_string(source.get("url"), where, "source.url"),
            )
        )
    python_versions = metadata.get("python-versions")
    return PoetryLock(
        path=path,
        label=label,
        python_versions=check.string(python_versions, "metadata", "python-versions")
        if python_versions is not None
        else None,
        packages=tuple(packages),
    )


# -- Poetry's version constraints (python-versions) ---------------------------------------------------------
#
# packaging reads PEP 440 specifiers only; Poetry also writes ^X.Y, ~X.Y, bare versions, "*" and "||" unions.
# poetry-core parses them (poetry.core.constraints.version) but is not a dependency of the mirror: the subset
# a lock's python-versions uses is translated here.

_ATOM = re.compile(r"^(\^|~=|~|==|!=|<=|>=|<|>|=)?\s*([0-9][0-9A-Za-z.*+!-]*)$")


def poetry_allows(constraint: str, version: str, label: str) -> bool:
    """Whether Poetry's ``constraint`` (python-versions) allows ``version``."""
    for alternative in constraint.split("||"):
        atoms = [a for a in re.split(r"[,\s]+(?=[\^~=!<>0-9*])", alternative.strip()) if a.strip()]
        if all(_allows(atom.strip(), version, constraint, label) for atom in atoms):
            return True
    return False


def _allows(atom: str, version: str, constraint: str, label: str) -> bool:
    if atom == "*":
        return True
    match = _ATOM.fullmatch(atom)
    try:
        if match is None:
            raise InvalidSpecifier(atom)
        operator, text = match[1] or "==", match[2]
        if operator in ("^", "~"):
            low = Version(text)
            parts = [*low.release, 0, 0][:3]
            count = len(low.release)
            if operator == "^":
                first = next((i for i, p in enumerate(parts[:count]) if p != 0), count - 1)
                high = [*parts[:first], parts[first] + 1]
            else:
                high = [parts[0] + 1] if count == 1 else [parts[0], parts[1] + 1]
            spec = SpecifierSet(f">={low},<{'.'.join(map(str, high))}")
        else:
            spec = SpecifierSet(f"{'==' if operator == '=' else operator}{text}")
        return spec.contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        raise InvalidSource(label, f"metadata.python-versions: {constraint!r} is not a version constraint") from None


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


# -- relocation onto the mirror (mirror relocate-poetry-lock) ------------------------------------------------
#
# Poetry has no setting for a PyPI mirror (python-poetry/poetry#1632): it installs each locked package from the
# source its lock names (PyPI when none), and refuses a lock whose content-hash no longer matches pyproject.toml.
# So the project gets a primary source "mirror" (what `poetry source add --priority=primary` writes), every
# registry package of the lock is attributed to it, and the content-hash is computed again the way Poetry computes
# it (poetry.packages.locker: sha256 of the sorted JSON of the [project] keys requires-python, dependencies and
# optional-dependencies, [dependency-groups] (since Poetry 2.3), and [tool.poetry] dependencies, source, extras,
# dev-dependencies and group). `poetry check --lock` and `poetry install` are run on the result in the tests.

SOURCE_NAME = "mirror"
_PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
_POETRY_LEGACY_KEYS = ("dependencies", "source", "extras", "dev-dependencies")
_POETRY_KEYS = (*_POETRY_LEGACY_KEYS, "group")
_GENERATED_BY = re.compile(r"Poetry ([0-9][^ ]*)")


@dataclass(frozen=True, kw_only=True, slots=True)
class PoetryRelocation:
    """A Poetry project pointed at the mirror: the new pyproject.toml and poetry.lock texts."""

    pyproject: str
    lock: str
    packages: int  # registry packages now installed from the mirror
    index_url: str
    notes: tuple[str, ...] = ()

    def render(self, project: Path) -> list[str]:
        return [
            f"wrote {project / 'pyproject.toml'} and {project / 'poetry.lock'}: {self.packages} packages from"
            f" {self.index_url}/",
            *(f"note: {note}" for note in self.notes),
        ]


def poetry_content_hash(pyproject: Mapping[str, Any], *, with_dependency_groups: bool = True) -> str:
    """The ``content-hash`` Poetry writes into poetry.lock for ``pyproject`` (parsed pyproject.toml)."""
    project = pyproject.get("project", {})
    groups = pyproject.get("dependency-groups", {}) if with_dependency_groups else {}
    poetry = pyproject.get("tool", {}).get("poetry", {})
    relevant_project = {key: project[key] for key in _PROJECT_KEYS if project.get(key) is not None}
    relevant_poetry = {}
    for key in _POETRY_KEYS:
        value = poetry.get(key)
        if value is None and (key not in _POETRY_LEGACY_KEYS or relevant_project or groups):
            continue
        relevant_poetry[key] = value
    content: dict[str, Any] = {}
    if relevant_project:
        content["project"] = relevant_project
    if groups:
        content["dependency-groups"] = groups
    if content:
        content["tool"] = {"poetry": relevant_poetry}
    else:  # a pyproject with only [tool.poetry]: its keys at the top, as Poetry hashes it
        content = relevant_poetry
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def relocate_poetry(pyproject_text: str, lock_text: str, *, index_url: str, label: str) -> PoetryRelocation:
    """Point the Poetry project (its pyproject.toml and poetry.lock texts) at the mirror's ``index_url``."""
    index_url = index_url.rstrip("/")
    parse_poetry_lock(lock_text, path=Path(label), label=label)  # the format checks: lock-version 2.1, tables
    pyproject: dict[str, Any] = read_toml(pyproject_text, "pyproject.toml")
    tool_poetry = pyproject.get("tool", {}).get("poetry", {}) if isinstance(pyproject.get("tool"), dict) else {}
    sources = tool_poetry.get("source", []) if isinstance(tool_poetry, dict) else []
    existing = [s for s in sources if isinstance(s, dict) and s.get("name") == SOURCE_NAME]
    if existing and str(existing[0].get("url", "")).rstrip("/") != index_url:
        raise InvalidSource(
            "pyproject.toml",
            f"tool.poetry.source: a source named {SOURCE_NAME!r} points at {existing[0].get('url')!r}, not the mirror"
            f" {index_url}/",
        )
    if not existing:
        block = f'\n[[tool.poetry.source]]\nname = "{SOURCE_NAME}"\nurl = "{index_url}/"\npriority = "primary"\n'
        pyproject_text = pyproject_text.rstrip("\n") + "\n" + block
        pyproject = read_toml(pyproject_text, "pyproject.toml")
    lock: dict[str, Any] = read_toml(lock_text, label)
    packages = 0
    for package in lock.get("package", []):
        assert isinstance(package, dict)
        source = package.get("source")
        if source is None or (isinstance(source, dict) and source.get("type") == "legacy"):
            package["source"] = {"type": "legacy", "url": index_url, "reference": SOURCE_NAME}
            packages += 1
    lines = lock_text.splitlines()
    header = "".join(
        f"{line}\n" for line in lines[: next((i for i, s in enumerate(lines) if not s.startswith("#")), 0)]
    )
    generated = _GENERATED_BY.search(header)
    with_groups = generated is None or _version_tuple(generated[1].split("+")[0]) >= (2, 3)
    metadata = lock.get("metadata")
    assert isinstance(metadata, dict)
    metadata["content-hash"] = poetry_content_hash(pyproject, with_dependency_groups=with_groups)
    return PoetryRelocation(
        pyproject=pyproject_text,
        lock=header + "\n" + tomli_w.dumps(lock),
        packages=packages,
        index_url=index_url,
    )


def relocate_poetry_lock(
    project: Path, *, url: str, held: Mapping[str, object] | None = None, targets: Sequence[Target] = ()
) -> PoetryRelocation:
    """Point the Poetry project in ``project`` at the mirror served at ``url`` (its pyproject.toml and poetry.lock
    rewritten together, or neither). With ``held`` (the files the mirror holds, by name), a main-group package one
    of ``targets`` installs with no file there is an error, and the other groups it lacks come back as notes."""
    from mirror.sources.uvlock import RelocateError, mirror_root

    pyproject_path, lock_path = project / "pyproject.toml", project / "poetry.lock"
    pyproject_text = read_text(pyproject_path, str(pyproject_path))
    lock_text = read_text(lock_path, str(lock_path))
    relocation = relocate_poetry(
        pyproject_text, lock_text, index_url=mirror_root(url) + "/simple", label=str(lock_path)
    )
    lock = parse_poetry_lock(lock_text, path=lock_path, label=str(lock_path))
    missing: dict[str, set[str]] = {}
    for target in targets if held is not None else ():
        for package in lock.locked(target, tuple(lock.groups)):
            if package.files and not any(name in (held or {}) for name, _ in package.files):
                (entry,) = [p for p in lock.packages if p.name == package.name and p.version == package.version]
                for group in entry.groups:
                    missing.setdefault(group, set()).add(f"{package.name} {package.version}")
    if MAIN in missing:
        shown_missing = ", ".join(sorted(missing[MAIN]))
        raise RelocateError(
            f"{lock_path}: the mirror has no file of {shown_missing} (main group) for its targets; add the lock to"
            " [sources] locks and run 'mirror sync'"
        )
    notes = tuple(
        f"group {group!r} is not in the mirror ({', '.join(sorted(names))}): install with"
        f" poetry install --only main, or add the group to the lock's entry in mirror.toml"
        for group, names in sorted(missing.items())
    )
    try:
        with _atomic.Batch() as batch:
            batch.write_text(lock_path, relocation.lock)
            batch.write_text(pyproject_path, relocation.pyproject)
    except OSError as exc:
        raise RelocateError(f"{project}: cannot write: {exc}") from None
    return dataclasses.replace(relocation, notes=notes)
