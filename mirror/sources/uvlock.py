"""uv.lock: read it as a source of pins, and relocate it onto the mirror.

**Reading** (:func:`parse_uv_lock` / :func:`read_uv_lock`): :meth:`UvLock.reachable` walks the lock from its
workspace members for one target, evaluating each edge's marker for that target, and :func:`uv_lock_inputs`
pins every registry package it reaches, exactly as locked.

**Relocating** (``mirror relocate-uv-lock``).
``uv sync --frozen`` installs every file from the URL written in uv.lock and ignores every index setting
(``--index-url``, ``UV_DEFAULT_INDEX``, uv.toml; astral-sh/uv#19625, #21747; a lock records where each file was
found, #6349). A lock made against PyPI therefore cannot install in a network without PyPI, whatever the clients
are told. :func:`relocate` rewrites the lock's text so that it names the mirror instead:

* ``source = { registry = "<url>" }`` — of each registry package and of each dependency edge naming one — becomes
  ``<mirror>/simple``, the Simple API root that ``mirror index`` writes and ``mirror serve`` or nginx serve;
* the ``url`` of each ``sdist`` and ``wheels`` entry the wheelhouse holds (same file name, same sha256) becomes
  ``<mirror>/files/<project>/<file>``; ``hash``, ``size`` and ``upload-time`` stay as they are;
* each locked file the wheelhouse does not hold is **dropped**. A uv.lock is universal — it names the files of
  every platform — and uv picks, among the files a package lists, the best one for the machine it runs on. Kept
  at a mirror URL, a file the mirror lacks is a 404 as soon as uv prefers it (a ``manylinux_2_34`` wheel on a
  newer host than the target's ``glibc`` floor, whose ``manylinux_2_17`` wheel the mirror holds); dropped, uv
  chooses among the files the mirror serves, or says that the package has no file for this platform. uv 0.13
  reads a package left with no file at all and complains only if it must install it (tests/test_uvlock.py).

Everything else stays byte for byte: versions, markers, ``[package.metadata]`` (the project's input, with any
``index`` it names: ``uv sync --frozen`` does not compare it), packages from git, a URL or a path. The text is
edited line by line where uv writes these keys, then parsed again with tomllib and compared with the original
document transformed the same way, so a hand-formatted lock is refused rather than rewritten wrongly.

:func:`unserved` is the check before writing: every package that one of the spec's targets installs (walked by
:meth:`UvLock.reachable`) must keep a file that target can use. :func:`relocate_uv_lock` is the
thin edge: read the lock and the wheelhouse, check, write atomically.
"""

from __future__ import annotations

import copy
import logging
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from mirror import _atomic, _toml
from mirror._filenames import classify
from mirror._records import Fields
from mirror.errors import MirrorError
from mirror.manifest import FileEntry
from mirror.sources.inputs import (
    RELEASE_ADVICE,
    Inputs,
    InvalidSource,
    LockedFiles,
    Project,
    RootRequirement,
    fields,
    read_toml,
    sha256_of,
    shown,
)
from mirror.sources.pyproject import project_build_system
from mirror.targets import Target

log = logging.getLogger(__name__)

#: uv.lock source kinds: where a locked package comes from.
_REGISTRY = "registry"
_LOCAL_KINDS = ("editable", "virtual", "directory")  # a project directory: built locally, never mirrored
_REMOTE_KINDS = ("git", "url", "path")  # an archive or checkout: cannot be mirrored from an index
_SOURCE_KINDS = (_REGISTRY, *_LOCAL_KINDS, *_REMOTE_KINDS)
_EXTRA_LITERAL_RE = re.compile(r"""\bextra\s*(?:==|!=)\s*(['"])(.*?)\1|(['"])(.*?)\3\s*(?:==|!=)\s*extra\b""")


@dataclass(frozen=True, kw_only=True, slots=True)
class UvDependency:
    """One edge of uv.lock: ``{ name = "...", version = "...", source = {...}, marker = "...", extra = [...] }``."""

    name: str  # normalized
    version: str | None = None  # given when several packages share the name (a forked resolution)
    source: tuple[str, str] | None = None  # (kind, value), given when the name and version are still ambiguous
    marker: str | None = None
    extras: tuple[str, ...] = ()  # normalized


@dataclass(frozen=True, kw_only=True, slots=True)
class UvPackage:
    """One ``[[package]]`` of uv.lock."""

    name: str  # normalized
    version: str | None  # None for a local project with a dynamic version
    source: tuple[str, str]  # (kind, value): ("registry", "https://pypi.org/simple"), ("editable", "."), ...
    dependencies: tuple[UvDependency, ...] = ()
    optional_dependencies: Mapping[str, tuple[UvDependency, ...]] = field(default_factory=dict)  # by extra
    dev_dependencies: Mapping[str, tuple[UvDependency, ...]] = field(default_factory=dict)  # by group
    files: tuple[tuple[str, str], ...] = ()  # (filename, sha256) of its sdist and wheels

    @property
    def kind(self) -> str:
        return self.source[0]

    def describe(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True, kw_only=True, slots=True)
class UvLock:
    """A parsed uv.lock (version 1)."""

    path: Path  # the lock file; relative local sources resolve against its directory
    label: str  # how the file is shown in origins and errors
    requires_python: SpecifierSet | None
    packages: tuple[UvPackage, ...]

    @property
    def members(self) -> tuple[UvPackage, ...]:
        """Where a walk starts: local projects inside the lock's workspace (the root ``editable = "."`` too)."""
        return tuple(p for p in self.packages if p.kind in _LOCAL_KINDS and _inside(p.source[1]))

    def reachable(self, target: Target) -> tuple[UvPackage, ...]:
        """Every package the members need on ``target``: all their extras and groups, edges' markers evaluated.

        An edge's marker is evaluated for the target with no extra active and with each extra it names active
        (uv spells conflicting extras and groups ``extra == 'extra-3-app-cpu'`` / ``'group-3-app-dev'``); a
        marker that cannot be evaluated counts as true and is logged. A package is walked through its
        ``dependencies`` and the ``optional-dependencies`` of the extras its edges ask for.
        """
        if self.requires_python is not None and not self.requires_python.contains(
            target.python_full_version, prereleases=True
        ):
            raise InvalidSource(
                self.label,
                f"requires-python {str(self.requires_python)!r} excludes target {target.name!r}"
                f" (Python {target.python}); the lock cannot be installed there",
            )
        if not self.members:
            raise InvalidSource(
                self.label,
                "no workspace member to start from (a package whose source is editable, virtual or directory"
                " inside the lock's directory)",
            )
        by_name: dict[str, list[UvPackage]] = {}
        for package in self.packages:
            by_name.setdefault(package.name, []).append(package)
        order: dict[int, UvPackage] = {}  # id(package) -> package, in the order reached
        seen: set[tuple[int, str]] = set()  # (id(package), part): "" for dependencies, "extra:x", "group:y"
        warned: set[str] = set()
        work: list[tuple[UvPackage, str]] = []
        for member in self.members:
            order[id(member)] = member
            work.append((member, ""))
            work += [(member, f"extra:{extra}") for extra in member.optional_dependencies]
            work += [(member, f"group:{group}") for group in member.dev_dependencies]
        while work:
            package, part = work.pop(0)
            if (id(package), part) in seen:
                continue
            seen.add((id(package), part))
            if not part:
                edges = package.dependencies
            elif part.startswith("extra:"):
                edges = package.optional_dependencies.get(part[6:], ())
            else:
                edges = package.dev_dependencies.get(part[6:], ())
            for edge in edges:
                if not self._applies(edge, package, target, warned):
                    continue
                found = self._resolve(edge, package, by_name)
                order.setdefault(id(found), found)
                work.append((found, ""))
                work += [(found, f"extra:{extra}") for extra in edge.extras]
        return tuple(order.values())

    def locked_files(self, packages: Iterable[UvPackage], *, target: Target) -> list[LockedFiles]:
        """The registry packages of ``packages`` with their files and the registry URL each was locked from."""
        return [
            LockedFiles(
                name=name,
                version=str(package.version),
                origin=self.label,
                files=package.files,
                index=package.source[1] if _is_url(package.source[1]) else None,
            )
            for name, package in self.registry_packages(packages, target=target).items()
        ]

    def pins_for(self, target: Target) -> list[RootRequirement]:
        """``name==version`` for every registry package :meth:`reachable` on ``target``, sorted by name."""
        return self.pins(self.reachable(target), target=target)

    def pins(self, packages: Iterable[UvPackage], *, target: Target) -> list[RootRequirement]:
        """``name==version`` for every registry package of ``packages``, sorted by name.

        A package from git, a URL or a local archive is an :class:`InvalidSource` (it cannot be mirrored from an
        index), and so is one name pinned at two versions (conflicting extras or groups: one resolution cannot
        hold both). Local project directories are skipped.
        """
        return [
            RootRequirement(requirement=Requirement(f"{name}=={package.version}"), origin=self.label)
            for name, package in sorted(self.registry_packages(packages, target=target).items())
        ]

    def registry_packages(self, packages: Iterable[UvPackage], *, target: Target) -> dict[str, UvPackage]:
        """The registry packages of ``packages`` by name (see :meth:`pins` for what is refused)."""
        pins: dict[str, UvPackage] = {}
        for package in packages:
            kind, value = package.source
            if kind in _REMOTE_KINDS:
                raise InvalidSource(
                    self.label,
                    f"package {package.describe()!r} ({kind} = {value!r}) cannot be mirrored from an index;"
                    f" {RELEASE_ADVICE}",
                )
            if kind != _REGISTRY:
                continue
            other = pins.setdefault(package.name, package)
            if other is not package:
                raise InvalidSource(
                    self.label,
                    f"package {package.name!r} is locked at both {other.version} and {package.version} for target"
                    f" {target.name!r} (conflicting extras or groups); one resolution cannot install both",
                )
        return pins

    def _applies(self, edge: UvDependency, package: UvPackage, target: Target, warned: set[str]) -> bool:
        if edge.marker is None:
            return True
        literals = [m[2] if m[2] is not None else m[4] for m in _EXTRA_LITERAL_RE.finditer(edge.marker)]
        try:
            return target.evaluate(edge.marker, extras=["", *literals])
        except (MirrorError, ValueError) as exc:
            if edge.marker not in warned:
                warned.add(edge.marker)
                log.warning(
                    "%s: cannot evaluate marker %r (%s -> %s) for target %s, so the dependency is kept: %s",
                    self.label,
                    edge.marker,
                    package.describe(),
                    edge.name,
                    target.name,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
            return True

    def _resolve(self, edge: UvDependency, package: UvPackage, by_name: Mapping[str, list[UvPackage]]) -> UvPackage:
        candidates = [
            p
            for p in by_name.get(edge.name, [])
            if (edge.version is None or p.version == edge.version) and (edge.source is None or p.source == edge.source)
        ]
        if len(candidates) == 1:
            return candidates[0]
        wanted = edge.name + (f" {edge.version}" if edge.version else "")
        if not candidates:
            raise InvalidSource(
                self.label, f"package {package.describe()!r} depends on {wanted!r}, which is not in the lock"
            )
        raise InvalidSource(
            self.label,
            f"package {package.describe()!r} depends on {wanted!r}, which the lock holds"
            f" {len(candidates)} times; the edge names no version or source to choose",
        )


def _inside(relative: str) -> bool:
    """Whether a local source path (relative to the lock's directory) stays inside that directory."""
    if relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relative):
        return False
    normalized = posixpath.normpath(relative.replace("\\", "/"))
    return normalized != ".." and not normalized.startswith("../")


def _lock_source(value: object, fields: Fields, where: str) -> tuple[str, str]:
    if isinstance(value, dict):
        kinds = [k for k in value if k in _SOURCE_KINDS]
        if len(kinds) == 1 and isinstance(value[kinds[0]], str):
            return kinds[0], value[kinds[0]]
    raise fields.expected(f"a table with one of {', '.join(_SOURCE_KINDS)}", value, where)


def _lock_dependencies(value: object, fields: Fields, where: str) -> tuple[UvDependency, ...]:
    edges = []
    for i, item in enumerate(fields.array(value, where, what="an array of tables")):
        key = f"{where}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise fields.expected("a table with a name", item, key)
        extras = fields.strings(item.get("extra", []), key, "extra")
        edges.append(
            UvDependency(
                name=canonicalize_name(item["name"]),
                version=fields.optional_string(item.get("version"), key, "version"),
                source=_lock_source(item["source"], fields, f"{key}.source") if "source" in item else None,
                marker=fields.optional_string(item.get("marker"), key, "marker"),
                extras=tuple(canonicalize_name(e) for e in extras),
            )
        )
    return tuple(edges)


def _lock_tables(value: object, fields: Fields, where: str) -> dict[str, tuple[UvDependency, ...]]:
    table = fields.table(value, where)
    return {
        canonicalize_name(name): _lock_dependencies(edges, fields, f"{where}.{name}") for name, edges in table.items()
    }


def _lock_files(item: Mapping[str, object], check: Fields, where: str) -> tuple[tuple[str, str], ...]:
    """(filename, sha256) of a package's ``sdist`` and ``wheels`` (the file name is the URL's or path's last part)."""
    entries = [("sdist", item["sdist"])] if "sdist" in item else []
    entries += [(f"wheels[{i}]", w) for i, w in enumerate(check.array(item.get("wheels", []), where, "wheels"))]
    files = []
    for key, entry in entries:
        table = check.table(entry, where, key)
        digest = sha256_of(table.get("hash"))
        location = table.get("url", table.get("path"))
        if digest is not None and isinstance(location, str):
            files.append((unquote(urlsplit(location).path.rsplit("/", 1)[-1]), digest))
    return tuple(files)


def parse_uv_lock(text: str, *, path: Path, label: str | None = None) -> UvLock:
    """Parse the uv.lock ``text`` of the file at ``path`` (shown as ``label``)."""
    label = label if label is not None else str(path)
    data = read_toml(text, label)
    check = fields(label, shown="repr")
    version = data.get("version")
    if version != 1:
        raise InvalidSource(label, f"version: {version!r} is not a uv.lock version this tool reads; expected 1")
    requires_python = None
    if "requires-python" in data:
        raw = data["requires-python"]
        try:
            requires_python = SpecifierSet(raw) if isinstance(raw, str) else None
        except InvalidSpecifier:
            requires_python = None
        if requires_python is None:
            raise InvalidSource(label, f"requires-python: {raw!r} is not a version specifier")
    packages = []
    raw_packages = check.array(data.get("package", []), "package", what="an array of tables ([[package]])", shown="")
    for i, item in enumerate(raw_packages):
        where = f"package[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise check.expected("a table with a name", item, where, shown="")
        package_version = check.optional_string(item.get("version"), where, "version")
        if "source" not in item:
            raise InvalidSource(label, f"{where}.source: missing")
        source = _lock_source(item["source"], check, f"{where}.source")
        if source[0] == _REGISTRY and package_version is None:
            raise InvalidSource(label, f"{where}.version: missing; a package from a registry has a version")
        packages.append(
            UvPackage(
                name=canonicalize_name(item["name"]),
                version=package_version,
                source=source,
                dependencies=_lock_dependencies(item.get("dependencies", []), check, f"{where}.dependencies"),
                optional_dependencies=_lock_tables(
                    item.get("optional-dependencies", {}), check, f"{where}.optional-dependencies"
                ),
                dev_dependencies=_lock_tables(item.get("dev-dependencies", {}), check, f"{where}.dev-dependencies"),
                files=_lock_files(item, check, where),
            )
        )
    return UvLock(path=path, label=label, requires_python=requires_python, packages=tuple(packages))


def read_uv_lock(path: Path, *, root: Path) -> UvLock:
    """Read and parse the uv.lock at ``path``; it is shown relative to ``root``."""
    label = shown(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSource(label, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSource(label, f"cannot read: {exc}") from None
    return parse_uv_lock(text, path=path, label=label)


def uv_lock_inputs(lock: UvLock, target: Target, *, root: Path) -> Inputs:
    """The lock's pins for ``target`` (as requirements and as constraints) and the local projects it builds.

    A local project's build system is read from its directory (relative to the lock); a project whose
    directory is missing is skipped with a warning.
    """
    reached = lock.reachable(target)
    locked = lock.locked_files(reached, target=target)
    projects = []
    for package in (p for p in reached if p.kind in ("editable", "directory")):
        directory = (lock.path.parent / package.source[1]).absolute()
        build_system = project_build_system(directory, root)
        if build_system is None:
            log.warning(
                "%s: local project %r is not at %s; its build system is not mirrored",
                lock.label,
                package.name,
                shown(directory, root),
            )
            continue
        projects.append(Project(name=package.name, path=directory, build_system=build_system))
    return Inputs.pinned(locked, projects)


# -- relocation --------------------------------------------------------------------------------------------

SYNC_ADVICE = "add it to [sources] uv-locks and run 'mirror sync'"
LAYOUT_ADVICE = "run 'uv lock' to write it in uv's layout, then relocate it"


class RelocateError(MirrorError):
    """A uv.lock cannot be relocated onto the mirror; the message names the file and the package."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedFile:
    """One ``sdist`` or ``wheels`` entry of a registry package in uv.lock."""

    package: str  # normalized
    version: str
    filename: str
    url: str  # as locked
    hash: str | None  # as locked: "sha256:<hex>"

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True, kw_only=True, slots=True)
class Relocation:
    """A relocated uv.lock and what changed in it."""

    text: str
    root: str  # the mirror's root URL, no trailing slash
    packages: int  # registry packages now pointing at the mirror
    kept: tuple[LockedFile, ...]  # files the mirror serves, with their URLs before relocation
    dropped: tuple[LockedFile, ...]  # files the wheelhouse does not hold: removed from the lock
    registries: tuple[str, ...]  # the registry URLs replaced, sorted

    @property
    def index_url(self) -> str:
        """The mirror's Simple API root, as the relocated lock names it."""
        return f"{self.root}/simple"

    def render(self, out: Path) -> list[str]:
        """What was written to ``out``."""
        dropped = len(self.dropped)
        return [
            f"wrote {out}: {self.packages} packages, {len(self.kept)} files at {self.index_url}",
            f"{dropped} locked file{'s are' if dropped != 1 else ' is'} outside the targets"
            " (not in the wheelhouse; dropped from the lock)",
        ]


def mirror_root(url: str) -> str:
    """The mirror's root URL from ``--url``: http(s), no trailing slash; a ``…/simple`` index URL is accepted too."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RelocateError(f"--url: {url!r} is not an http(s) URL of the mirror, e.g. http://mirror.internal:3141/")
    if parts.query or parts.fragment or re.search(r'["\\\s]', url.strip()):
        raise RelocateError(f"--url: {url!r} must be a plain URL (no query, fragment, quotes or spaces)")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/simple")
    return f"{parts.scheme}://{parts.netloc}{path}"


# -- the pure rewrite -----------------------------------------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*\]\]?\s*(?:#.*)?$")
_REGISTRY_RE = re.compile(r'(\bregistry\s*=\s*)"([^"\\]*)"')
_SDIST_RE = re.compile(r'^(\s*sdist\s*=\s*\{\s*url\s*=\s*)"([^"\\]*)"')
_WHEEL_RE = re.compile(r'^(\s*\{\s*url\s*=\s*)"([^"\\]*)"')
_WHEELS_OPEN_RE = re.compile(r"^\s*wheels\s*=\s*\[\s*(?:#.*)?$")
_CLOSE_RE = re.compile(r"^\s*\]\s*(?:#.*)?$")
# Tables whose registry sources are rewritten: the package itself and its dependency edges; never
# [package.metadata] (the project's input) or [manifest].
_EDGE_TABLES = ("package", "package.optional-dependencies", "package.dev-dependencies")
_EDGE_KEYS = ("dependencies", "optional-dependencies", "dev-dependencies")


def _is_url(value: str) -> bool:
    """A registry given by URL (relocated), not a local directory of distributions (left alone)."""
    return urlsplit(value).scheme in ("http", "https", "file")


def _describe(item: Mapping[str, Any], index: int) -> str:
    name, version = item.get("name"), item.get("version")
    return f"package[{index}] ({name} {version})" if version else f"package[{index}] ({name})"


def _registry(item: Mapping[str, Any]) -> str | None:
    source = item.get("source")
    if isinstance(source, dict) and isinstance(source.get("registry"), str):
        return str(source["registry"])
    return None


def _files(item: Mapping[str, Any], index: int, label: str) -> list[LockedFile]:
    """The sdist and wheels of a registry package, in the lock's order."""
    entries: list[tuple[str, object]] = []
    if "sdist" in item:
        entries.append(("sdist", item["sdist"]))
    wheels = item.get("wheels", [])
    if not isinstance(wheels, list):
        raise RelocateError(f"{label}: {_describe(item, index)}: wheels: expected an array of tables")
    entries += [(f"wheels[{i}]", wheel) for i, wheel in enumerate(wheels)]
    name = canonicalize_name(str(item["name"]))
    files = []
    for where, entry in entries:
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str):
            raise RelocateError(f"{label}: {_describe(item, index)}: {where}: expected a table with a url")
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if classify(filename, name) is None:
            raise RelocateError(
                f"{label}: {_describe(item, index)}: {where}: {url!r} does not end in a distribution file name"
            )
        digest = entry.get("hash") if isinstance(entry, dict) else None
        files.append(
            LockedFile(
                package=name,
                version=str(item["version"]),
                filename=filename,
                url=url,
                hash=digest if isinstance(digest, str) else None,
            )
        )
    return files


def _held(file: LockedFile, held: Mapping[str, FileEntry]) -> FileEntry | None:
    """The wheelhouse's copy of ``file``: same name and, when the lock gives a sha256, the same one."""
    entry = held.get(file.filename)
    if entry is None:
        return None
    if file.hash is not None and file.hash.startswith("sha256:") and file.hash[7:].lower() != entry.sha256:
        log.warning("%s: the wheelhouse holds a different file of that name (sha256 %s)", file.url, entry.sha256)
        return None
    return entry


def relocate(text: str, *, root: str, held: Mapping[str, FileEntry], label: str = "uv.lock") -> Relocation:
    """Rewrite the uv.lock ``text`` onto the mirror at ``root`` (see the module docstring).

    ``held`` maps each file name the wheelhouse serves to its entry (its sha256 and its place under ``files/``).
    """
    parse_uv_lock(text, path=Path(label), label=label)  # the format checks of sources.py: version 1, packages
    data: dict[str, Any] = _toml.loads(text)
    simple = f"{root}/simple"
    packages: list[dict[str, Any]] = data.get("package", [])

    new_urls: dict[tuple[int, str], str | None] = {}  # (package index, locked url) -> mirror url, None: drop
    kept: list[LockedFile] = []
    dropped: list[LockedFile] = []
    registries: dict[str, list[int]] = {}
    seen: dict[tuple[str, str], list[str]] = {}
    for index, item in enumerate(packages):
        registry = _registry(item)
        if registry is None or not _is_url(registry):
            continue
        registries.setdefault(registry, []).append(index)
        seen.setdefault((canonicalize_name(str(item["name"])), str(item["version"])), []).append(registry)
        for file in _files(item, index, label):
            entry = _held(file, held)
            new_urls[(index, file.url)] = None if entry is None else f"{root}/files/{quote(entry.relpath)}"
            (dropped if entry is None else kept).append(file)
    for (name, version), urls in seen.items():
        if len(urls) > 1:
            raise RelocateError(
                f"{label}: {name} {version} is locked from {len(urls)} registries ({', '.join(urls)}); the mirror is"
                " one index, where they would become one package"
            )

    relocated = _rewrite_text(
        text, new_urls, simple, relocatable={i for indexes in registries.values() for i in indexes}
    )
    expected = _rewrite_data(data, new_urls, simple)
    _check_same(_toml.loads(relocated), expected, label)
    return Relocation(
        text=relocated,
        root=root,
        packages=sum(len(indexes) for indexes in registries.values()),
        kept=tuple(kept),
        dropped=tuple(dropped),
        registries=tuple(sorted(registries)),
    )


def _rewrite_text(
    text: str, new_urls: Mapping[tuple[int, str], str | None], simple: str, *, relocatable: set[int]
) -> str:
    """Edit the lines where uv writes registry sources and file URLs; drop the lines of dropped files.

    ``relocatable`` holds the indexes of the ``[[package]]`` tables whose files are relocated.
    """

    def registry(match: re.Match[str]) -> str:
        return f'{match[1]}"{simple}"' if _is_url(match[2]) else match[0]

    out: list[str] = []
    table = ""
    index = -1
    block: list[str] | None = None  # the lines of a `wheels = [` array being read
    for line in text.splitlines(keepends=True):
        if block is not None:
            if _CLOSE_RE.match(line):
                if len(block) > 1:  # an array left empty is dropped with its brackets
                    out += [*block, line]
                block = None
                continue
            wheel = _WHEEL_RE.match(line)
            new = new_urls.get((index, wheel[2]), "") if wheel else ""
            if wheel and new is None:
                continue
            block.append(f'{wheel[1]}"{new}"{line[wheel.end() :]}' if wheel and new else line)
            continue
        header = _HEADER_RE.match(line)
        if header:
            table = re.sub(r"\s+", "", header[2])
            if header[1] == "[[" and table == "package":
                index += 1
            out.append(line)
            continue
        if table == "package" and (sdist := _SDIST_RE.match(line)) and (index, sdist[2]) in new_urls:
            new = new_urls[(index, sdist[2])]
            if new is not None:
                out.append(f'{sdist[1]}"{new}"{line[sdist.end() :]}')
            continue
        if table == "package" and index in relocatable and _WHEELS_OPEN_RE.match(line):
            block = [line]
            continue
        out.append(_REGISTRY_RE.sub(registry, line) if table in _EDGE_TABLES else line)
    if block is not None:
        out += block
    return "".join(out)


def _rewrite_data(
    data: Mapping[str, Any], new_urls: Mapping[tuple[int, str], str | None], simple: str
) -> dict[str, Any]:
    """What the relocated text must parse to: the original document with the same rewrite applied."""
    expected: dict[str, Any] = copy.deepcopy(dict(data))

    def edge_sources(edges: object) -> None:
        for edge in edges if isinstance(edges, list) else []:
            source = edge.get("source") if isinstance(edge, dict) else None
            if isinstance(source, dict) and isinstance(source.get("registry"), str) and _is_url(source["registry"]):
                source["registry"] = simple

    for index, item in enumerate(expected.get("package", [])):
        edge_sources(item.get("dependencies"))
        for key in _EDGE_KEYS[1:]:
            for edges in (item.get(key) or {}).values():
                edge_sources(edges)
        registry = _registry(item)
        if registry is None or not _is_url(registry):
            continue
        item["source"]["registry"] = simple
        if "sdist" in item:
            new = new_urls[(index, item["sdist"]["url"])]
            if new is None:
                del item["sdist"]
            else:
                item["sdist"]["url"] = new
        if "wheels" in item:
            wheels = []
            for wheel in item["wheels"]:
                new = new_urls[(index, wheel["url"])]
                if new is not None:
                    wheels.append({**wheel, "url": new})
            if wheels:
                item["wheels"] = wheels
            else:
                del item["wheels"]
    return expected


def _check_same(actual: Mapping[str, Any], expected: Mapping[str, Any], label: str) -> None:
    if actual == expected:
        return
    packages, wanted = actual.get("package", []), expected.get("package", [])
    for index, item in enumerate(wanted):
        if index >= len(packages) or packages[index] != item:
            raise RelocateError(f"{label}: cannot rewrite {_describe(item, index)} in place; {LAYOUT_ADVICE}")
    raise RelocateError(f"{label}: cannot rewrite the file in place; {LAYOUT_ADVICE}")


# -- the check ------------------------------------------------------------------------------------------------


def unserved(lock: UvLock, relocation: Relocation, targets: Sequence[Target]) -> list[str]:
    """The packages a target installs from ``lock`` that the relocated lock gives no file for, with the targets.

    A target can use a kept sdist (it builds there) or a kept wheel its tags accept. A package from git or a URL
    needs the network, so it is listed too; local projects and archives are not. Targets whose Python the lock's
    ``requires-python`` excludes install nothing from it.
    """
    files: dict[tuple[str, str], list[str]] = {}
    for file in relocation.kept:
        files.setdefault((file.package, file.version), []).append(file.filename)
    missing: dict[str, list[str]] = {}
    for target in targets:
        if lock.requires_python is not None and not lock.requires_python.contains(
            target.python_full_version, prereleases=True
        ):
            log.info("%s: requires-python excludes target %s; not checked", lock.label, target.name)
            continue
        for package in lock.reachable(target):
            kind, value = package.source
            if kind == "registry" and _is_url(value):
                usable = [
                    f
                    for f in files.get((package.name, package.version or ""), [])
                    if not f.endswith(".whl") or target.accepts(f)
                ]
                if not usable:
                    missing.setdefault(package.describe(), []).append(target.name)
            elif kind in ("git", "url"):
                missing.setdefault(f"{package.describe()} ({kind} source)", []).append(target.name)
    return [f"{name} [{', '.join(names)}]" for name, names in sorted(missing.items())]


# -- the edge -------------------------------------------------------------------------------------------------


def relocate_uv_lock(
    path: Path, *, url: str, held: Mapping[str, FileEntry], targets: Sequence[Target], out: Path
) -> Relocation:
    """Relocate the uv.lock at ``path`` onto the mirror at ``url`` serving the files in ``held`` (by file name:
    the locked files present and verified in its wheelhouse); write ``out``.

    Refuses, writing nothing, when a package that one of ``targets`` installs keeps no file.
    """
    label = str(path)
    try:
        text = path.read_bytes().decode("utf-8")  # bytes: line endings stay as they are
    except FileNotFoundError:
        raise RelocateError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RelocateError(f"{label}: cannot read: {exc}") from None
    root = mirror_root(url)
    relocation = relocate(text, root=root, held=held, label=label)
    missing = unserved(parse_uv_lock(text, path=path, label=label), relocation, targets)
    if missing:
        count = f"{len(missing)} package{'s' if len(missing) > 1 else ''}"
        raise RelocateError(
            f"{label}: {count} that the targets install {'have' if len(missing) > 1 else 'has'} no locked file in the"
            f" wheelhouse: {'; '.join(missing)}; {SYNC_ADVICE}"
        )
    try:
        _atomic.write_bytes(out, relocation.text.encode("utf-8"))
    except OSError as exc:
        raise RelocateError(f"{out}: cannot write: {exc}") from None
    log.info("%s: %d files kept, %d dropped", out, len(relocation.kept), len(relocation.dropped))
    return relocation
