"""The lock manifest, ``lockfiles/mirror.lock.json``: the one document every stage after ``lock`` reads.

It says, per target, which packages are installed (``runtime``) or needed to build (``build``), with which files,
and what each build needs; and, once per file, where it comes from and its sha256. Wheels built here from an
sdist (``mirror fetch`` with ``policy.build-wheels``) are files too, with ``built_from`` naming the sdist.

``Manifest.from_dict`` validates everything it reads — a manifest is edited by hand and carried across air gaps —
and names the JSON path of the first problem.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

from mirror._filenames import classify
from mirror._records import Fields
from mirror.errors import InvalidSpec, MirrorError
from mirror.targets import Target

MANIFEST = "mirror.lock.json"
MANIFEST_VERSION = 1
Role = Literal["runtime", "build"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class InvalidManifest(MirrorError):
    """mirror.lock.json is missing, unreadable or not what ``mirror lock`` writes."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FileEntry:
    """One file of the mirror: a wheel or sdist from upstream, or a wheel built here."""

    filename: str
    project: str
    version: str
    kind: Literal["wheel", "sdist"]
    url: str | None  # None for a wheel built here
    sha256: str
    size: int | None = None
    requires_python: str | None = None
    upload_time: str | None = None
    yanked: bool | str = False
    built_from: str | None = None  # the sdist filename a wheel was built from, here
    index: str | None = None  # the name of the index it came from ("find-links": a find-links folder)

    @property
    def relpath(self) -> str:
        """Where the file lives under ``wheelhouse/files``."""
        return f"{self.project}/{self.filename}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "project": self.project,
            "version": self.version,
            "kind": self.kind,
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
            "requires_python": self.requires_python,
            "upload_time": self.upload_time,
            "yanked": self.yanked,
        }
        if self.built_from is not None:
            out["built_from"] = self.built_from
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageEntry:
    """One pinned distribution of one target."""

    name: str
    version: str
    role: Role
    files: tuple[str, ...]
    via: tuple[str, ...] = ()  # runtime: what pulled it in; build: the builds needing it

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "role": self.role,
            "files": list(self.files),
            ("via" if self.role == "runtime" else "needed_by"): list(self.via),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildEntry:
    """What building one sdist (or one workspace project) needs, for one target."""

    requirer: str  # an sdist filename, or "project <name>"
    requires: tuple[str, ...]
    static: tuple[str, ...]
    dynamic: tuple[str, ...] | None
    backend: str
    error: str | None
    pins: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "for": self.requirer,
            "requires": list(self.requires),
            "static": list(self.static),
            "dynamic": None if self.dynamic is None else list(self.dynamic),
            "backend": self.backend,
            "error": self.error,
            "pins": list(self.pins),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetEntry:
    """Everything one target installs and builds."""

    target: Target
    packages: tuple[PackageEntry, ...]
    builds: tuple[BuildEntry, ...] = ()

    @property
    def name(self) -> str:
        return self.target.name

    def runtime(self) -> list[PackageEntry]:
        return [p for p in self.packages if p.role == "runtime"]

    def build(self) -> list[PackageEntry]:
        return [p for p in self.packages if p.role == "build"]

    def filenames(self) -> list[str]:
        return sorted({f for p in self.packages for f in p.files})


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """The whole lock."""

    upstream: str  # the default index's URL
    resolver: str
    created_by: str
    targets: tuple[TargetEntry, ...]
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    indexes: Mapping[str, str] = field(default_factory=dict)  # name -> URL of every index the lock read
    exclude_newer: str | None = None  # the cooldown's cutoff (RFC 3339): no file uploaded later is locked

    def target(self, name: str) -> TargetEntry:
        for entry in self.targets:
            if entry.name == name:
                return entry
        known = ", ".join(t.name for t in self.targets)
        raise InvalidManifest(f"{MANIFEST}: no target named {name!r}; known: {known}")

    def select(self, names: Sequence[str]) -> tuple[TargetEntry, ...]:
        if not names:
            return self.targets
        chosen = {self.target(n).name for n in names}
        return tuple(t for t in self.targets if t.name in chosen)

    def with_built_wheel(self, target: str, sdist: str, wheel: FileEntry) -> Manifest:
        """A copy where ``wheel`` (built here from ``sdist``) is one more file of the packages using ``sdist``."""
        targets = []
        for entry in self.targets:
            if entry.name == target:
                packages = tuple(
                    replace(p, files=(*p.files, wheel.filename))
                    if sdist in p.files and wheel.filename not in p.files
                    else p
                    for p in entry.packages
                )
                entry = replace(entry, packages=packages)
            targets.append(entry)
        return replace(self, targets=tuple(targets), files={**self.files, wheel.filename: wheel})

    def without_built_wheels(self) -> Manifest:
        """A copy without the wheels built here (as ``mirror lock`` wrote it)."""
        built = {name for name, file in self.files.items() if file.built_from is not None}
        if not built:
            return self
        targets = tuple(
            replace(
                t,
                packages=tuple(replace(p, files=tuple(f for f in p.files if f not in built)) for p in t.packages),
            )
            for t in self.targets
        )
        files = {name: file for name, file in self.files.items() if name not in built}
        return replace(self, targets=targets, files=files)

    def to_dict(self) -> dict[str, object]:
        return {
            "version": MANIFEST_VERSION,
            "created_by": self.created_by,
            "upstream": self.upstream,
            **({"indexes": dict(self.indexes)} if self.indexes else {}),
            **({"exclude_newer": self.exclude_newer} if self.exclude_newer else {}),
            "resolver": self.resolver,
            "targets": {
                t.name: {
                    "target": t.target.to_dict(),
                    "packages": [p.to_dict() for p in t.packages],
                    "builds": [b.to_dict() for b in t.builds],
                }
                for t in self.targets
            },
            "files": {name: self.files[name].to_dict() for name in sorted(self.files)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Manifest:
        reader = _Reader()
        if data.get("version") != MANIFEST_VERSION:
            raise reader.error("version", f"expected {MANIFEST_VERSION}, got {data.get('version')!r}")
        files = {name: reader.file(name, item) for name, item in reader.mapping(data.get("files"), "files").items()}
        targets = []
        for name, item in reader.mapping(data.get("targets"), "targets").items():
            targets.append(reader.target(name, item, files))
        return cls(
            upstream=reader.string(data.get("upstream"), "upstream"),
            resolver=reader.string(data.get("resolver"), "resolver"),
            created_by=reader.string(data.get("created_by"), "created_by"),
            targets=tuple(targets),
            files=files,
            indexes={
                name: reader.string(url, "indexes", name)
                for name, url in reader.mapping(data.get("indexes", {}), "indexes").items()
            },
            exclude_newer=reader.optional_string(data.get("exclude_newer"), "exclude_newer"),
        )


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Reading a large lock makes hundreds of thousands of objects and no cycles: the collector would only scan
    them over and over (about a tenth of reading 10,000 files)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_manifest(directory: Path) -> Manifest:
    """Read ``directory/mirror.lock.json``."""
    path = directory / MANIFEST
    with _no_gc():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidManifest(f"{path}: no such file; run 'mirror lock' first") from None
        except (OSError, ValueError) as exc:
            raise InvalidManifest(f"{path}: cannot read: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidManifest(f"{path}: expected a JSON object")
        try:
            return Manifest.from_dict(data)
        except InvalidManifest as exc:
            raise InvalidManifest(f"{path}: {str(exc).removeprefix(MANIFEST + ': ')}") from None


def _error(where: str, message: str) -> InvalidManifest:
    where = where if where.isprintable() else repr(where)  # a hostile key must not break the one-line message
    return InvalidManifest(f"{MANIFEST}: {where}: {message}")


class _Reader(Fields):
    """The manifest's accessors: a JSON path in every error."""

    def __init__(self) -> None:
        super().__init__(_error)

    # the two accessors a large manifest calls most check inline (one call each, not two)

    def mapping(self, value: object, where: str, key: str = "") -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.expected("an object", value, where, key, shown="")
        return cast(dict[str, object], value)

    def names(self, value: object, where: str, key: str = "") -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.expected("an array of strings", value, where, key, shown="")
        return tuple(value)

    def file(self, name: str, value: object) -> FileEntry:
        where = f"files.{name}"
        item = self.mapping(value, where)
        project = item.get("project")
        parsed = classify(name, project if isinstance(project, str) else None)
        if parsed is None:
            raise self.error(where, "not a safe wheel or sdist filename")
        project = self.string(project, where, "project")
        if project != parsed[0]:
            raise self.error(f"{where}.project", f"{project!r} does not match the filename ({parsed[0]})")
        sha256 = self.string(item.get("sha256"), where, "sha256")
        if not _SHA256.fullmatch(sha256):
            raise self.error(f"{where}.sha256", f"{sha256!r} is not a lowercase hex sha256")
        url = self.optional_string(item.get("url"), where, "url")
        if url is not None and url.partition(":")[0].lower() not in ("http", "https", "file"):  # urlsplit's scheme
            raise self.error(f"{where}.url", f"{url!r} is not an http(s) or file URL")
        raw_size = item.get("size")
        size = None if raw_size is None else self.count(raw_size, where, "size")
        yanked = item.get("yanked", False)
        if not isinstance(yanked, (bool, str)):
            raise self.error(f"{where}.yanked", f"expected true, false or a reason, got {yanked!r}")
        built_from = self.optional_string(item.get("built_from"), where, "built_from")
        if url is None and built_from is None:
            raise self.error(f"{where}.url", "missing (only a wheel built here has no URL)")
        return FileEntry(
            filename=name,
            project=project,
            version=self.string(item.get("version"), where, "version"),
            kind=parsed[2],
            url=url,
            sha256=sha256,
            size=size,
            requires_python=self.optional_string(item.get("requires_python"), where, "requires_python"),
            upload_time=self.optional_string(item.get("upload_time"), where, "upload_time"),
            yanked=yanked,
            built_from=built_from,
            index=self.optional_string(item.get("index"), where, "index"),
        )

    def target(self, name: str, value: object, files: Mapping[str, FileEntry]) -> TargetEntry:
        where = f"targets.{name}"
        item = self.mapping(value, where)
        try:
            target = Target.from_dict(self.mapping(item.get("target"), where, "target"), where=f"{where}.target")
        except InvalidSpec as exc:
            raise self.error(exc.key, exc.detail) from None
        if target.name != name:
            raise self.error(f"{where}.target.name", f"{target.name!r} does not match the key {name!r}")
        packages = []
        raw_packages = item.get("packages")
        if not isinstance(raw_packages, list):
            raise self.error(f"{where}.packages", "expected an array")
        for i, raw in enumerate(raw_packages):
            at = f"{where}.packages[{i}]"
            package = self.mapping(raw, at)
            role = package.get("role")
            if role not in ("runtime", "build"):
                raise self.error(f"{at}.role", f"expected 'runtime' or 'build', got {role!r}")
            names = self.names(package.get("files"), at, "files")
            for filename in names:
                if filename not in files:
                    raise self.error(f"{at}.files", f"{filename!r} is not listed under files")
            packages.append(
                PackageEntry(
                    name=self.string(package.get("name"), at, "name"),
                    version=self.string(package.get("version"), at, "version"),
                    role=role,
                    files=names,
                    via=self.names(package.get("via" if role == "runtime" else "needed_by", []), at, "via"),
                )
            )
        builds = []
        raw_builds = item.get("builds", [])
        if not isinstance(raw_builds, list):
            raise self.error(f"{where}.builds", "expected an array")
        for i, raw in enumerate(raw_builds):
            at = f"{where}.builds[{i}]"
            build = self.mapping(raw, at)
            dynamic = build.get("dynamic")
            builds.append(
                BuildEntry(
                    requirer=self.string(build.get("for"), at, "for"),
                    requires=self.names(build.get("requires"), at, "requires"),
                    static=self.names(build.get("static", []), at, "static"),
                    dynamic=None if dynamic is None else self.names(dynamic, at, "dynamic"),
                    backend=self.string(build.get("backend", ""), at, "backend"),
                    error=self.optional_string(build.get("error"), at, "error"),
                    pins=self.names(build.get("pins"), at, "pins"),
                )
            )
        return TargetEntry(target=target, packages=tuple(packages), builds=tuple(builds))
