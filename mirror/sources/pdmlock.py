"""pdm.lock: the pins PDM wrote (lock_version 4.x with the ``inherit_metadata`` strategy), kept exactly per target.

``[metadata] groups`` names the groups locked and ``[[metadata.targets]]`` the environments the lock was made
for (``requires_python``, and optionally ``platform`` and ``implementation``, as ``pdm lock --platform`` writes
them): a target none of them covers is an error, not a re-resolution. Each ``[[package]]`` lists its ``groups``
and a ``marker``; for a target, the packages of the chosen groups (default: ``default``) whose marker holds are
pinned. A package from git, a URL or a path is not mirrored (the project's own and path dependencies) or refused
(a remote one). The files the lock lists are kept with their sha256, for the check against the upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from mirror.sources.inputs import (
    RELEASE_ADVICE,
    InvalidSource,
    LockedFiles,
    fields,
    marker_holds,
    read_toml,
    sha256_of,
)
from mirror.targets import Target

DEFAULT = "default"
_LOCAL_KEYS = ("path", "editable")
_REMOTE_KEYS = ("git", "url", "hg", "svn", "bzr")
_IMPLEMENTATIONS = {"cpython": "cp", "pypy": "pp"}


@dataclass(frozen=True, kw_only=True, slots=True)
class PdmEnvironment:
    """One ``[[metadata.targets]]`` entry."""

    requires_python: str | None
    platform: str | None  # PDM's spelling: manylinux_2_17_x86_64, windows_amd64, macos_14_0_arm64, ...
    implementation: str | None  # cpython, pypy

    def covers(self, target: Target) -> bool:
        if self.requires_python and not SpecifierSet(self.requires_python).contains(
            target.python_full_version, prereleases=True
        ):
            return False
        if self.implementation and _IMPLEMENTATIONS.get(self.implementation) != target.implementation:
            return False
        return self.platform is None or wheel_platform(self.platform) in target.platform_tags()

    def describe(self) -> str:
        parts = [f"requires_python {self.requires_python!r}"] if self.requires_python else []
        parts += [f"platform {self.platform!r}"] if self.platform else []
        parts += [f"implementation {self.implementation!r}"] if self.implementation else []
        return ", ".join(parts) or "any"


def wheel_platform(platform: str) -> str:
    """PDM's platform name as a wheel platform tag (``windows_amd64`` is ``win_amd64``)."""
    if platform.startswith("windows_"):
        arch = platform.removeprefix("windows_")
        return "win32" if arch in ("x86", "i686", "32") else f"win_{arch}"
    if platform.startswith("macos_"):
        return "macosx_" + platform.removeprefix("macos_")
    return platform


@dataclass(frozen=True, kw_only=True, slots=True)
class PdmPackage:
    name: str  # normalized
    version: str | None
    groups: tuple[str, ...]
    marker: str | None
    files: tuple[tuple[str | None, str], ...]  # (filename, or None for a URL entry; sha256)
    local: bool  # the project itself or a path dependency: built, not mirrored
    remote: str | None  # git, url, ...: cannot be mirrored from an index


@dataclass(frozen=True, kw_only=True, slots=True)
class PdmLock:
    path: Path
    label: str
    groups: tuple[str, ...]
    environments: tuple[PdmEnvironment, ...]
    packages: tuple[PdmPackage, ...]

    def locked(self, target: Target, groups: tuple[str, ...] = ()) -> list[LockedFiles]:
        """The packages the chosen ``groups`` (default: default) install on ``target``, with their files."""
        chosen = groups or (DEFAULT,)
        unknown = [g for g in chosen if g not in self.groups]
        if unknown:
            known = ", ".join(self.groups) or "none"
            raise InvalidSource(self.label, f"metadata.groups: the lock has no group {unknown[0]!r}; known: {known}")
        if self.environments and not any(env.covers(target) for env in self.environments):
            made = "; ".join(env.describe() for env in self.environments)
            raise InvalidSource(
                self.label,
                f"metadata.targets: the lock was made for {made}, not for target {target.name!r}"
                f" ({target.describe()}); lock for it with pdm lock --platform/--python, or drop the target",
            )
        out = []
        for package in self.packages:
            where = f"package {package.name}"
            if not set(chosen) & set(package.groups) or not marker_holds(
                package.marker, target, label=self.label, where=where
            ):
                continue
            if package.local:
                continue
            if package.remote is not None or package.version is None:
                raise InvalidSource(
                    self.label,
                    f"package {package.name} comes from {package.remote or 'a source without a version'} and cannot"
                    f" be mirrored from an index; {RELEASE_ADVICE}",
                )
            out.append(LockedFiles(name=package.name, version=package.version, origin=self.label, files=package.files))
        return out


def parse_pdm_lock(text: str, *, path: Path, label: str | None = None) -> PdmLock:
    """Parse the pdm.lock ``text`` of the file at ``path`` (shown as ``label``)."""
    label = label if label is not None else str(path)
    data = read_toml(text, label)
    check = fields(label, shown="repr")
    metadata = check.table(data.get("metadata", {}), "metadata")
    strategy = check.strings(metadata.get("strategy", []), "metadata", "strategy")
    if "inherit_metadata" not in strategy:
        raise InvalidSource(
            label,
            f"metadata.strategy {strategy!r}: without inherit_metadata the lock does not say which group and which"
            " platform needs each package; re-lock with pdm lock --strategy inherit_metadata (PDM's default)",
        )
    environments = []
    for i, item in enumerate(check.array(metadata.get("targets", []), "metadata", "targets")):
        where = f"metadata.targets[{i}]"
        env = check.table(item, where)
        requires_python = check.optional_string(env.get("requires_python"), where, "requires_python")
        try:
            SpecifierSet(requires_python or "")
        except InvalidSpecifier:
            raise InvalidSource(label, f"{where}.requires_python: {requires_python!r} is not a specifier") from None
        environments.append(
            PdmEnvironment(
                requires_python=requires_python,
                platform=check.optional_string(env.get("platform"), where, "platform"),
                implementation=check.optional_string(env.get("implementation"), where, "implementation"),
            )
        )
    packages = []
    for i, item in enumerate(check.array(data.get("package", []), "package", what="an array of tables")):
        where = f"package[{i}]"
        table = check.table(item, where)
        files = []
        for j, entry in enumerate(check.array(table.get("files", []), where, "files")):
            at = f"{where}.files[{j}]"
            file = check.table(entry, at)
            digest = sha256_of(file.get("hash"))
            if digest is None:
                continue
            name = check.optional_string(file.get("file"), at, "file")
            if name is None:  # a URL entry (static_urls): its last path segment is the file name
                name = check.string(file.get("url"), at, "url").rsplit("/", 1)[-1].split("#")[0] or None
            files.append((name, digest))
        remote = next((key for key in _REMOTE_KEYS if key in table), None)
        packages.append(
            PdmPackage(
                name=str(canonicalize_name(check.string(table.get("name"), where, "name"))),
                version=check.optional_string(table.get("version"), where, "version"),
                groups=tuple(
                    str(canonicalize_name(g)) for g in check.strings(table.get("groups", []), where, "groups")
                ),
                marker=check.optional_string(table.get("marker"), where, "marker"),
                files=tuple(files),
                local=any(key in table for key in _LOCAL_KEYS) and remote is None,
                remote=remote,
            )
        )
    return PdmLock(
        path=path,
        label=label,
        groups=tuple(
            str(canonicalize_name(g)) for g in check.strings(metadata.get("groups", [DEFAULT]), "metadata", "groups")
        ),
        environments=tuple(environments),
        packages=tuple(packages),
    )
