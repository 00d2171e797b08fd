"""The workspace spec, ``mirror.toml``: what to mirror, for which targets, from where, under which policy.

``parse_spec`` is pure (TOML text in, frozen dataclasses out); ``load_spec`` is the file edge. Every bad key,
type or value raises :class:`~mirror.errors.InvalidSpec` naming the key path, e.g.
``target[1].platform: 'linux/amd65' is not a known platform; known: …``. Relative paths are resolved
against the directory holding the spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Literal, cast
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror import _atomic, _toml, cooldown
from mirror._records import Fields
from mirror.errors import InvalidSpec
from mirror.indexes import FIND_LINKS, INDEX_NAME_RE, PYPI_SIMPLE, Index, Routing, normalize_pattern, redact, same_url
from mirror.layout import SPEC, Layout
from mirror.targets import Target, host_target

SPEC_FILENAME = SPEC
DEFAULT_INDEX = Index(name="pypi", url=PYPI_SIMPLE)
SdistPolicy = Literal["when-needed", "always", "never"]
SDIST_POLICIES: tuple[SdistPolicy, ...] = ("when-needed", "always", "never")

_TABLES = ("mirror", "index", "target", "sources", "policy")
_MIRROR_KEYS = ("upstream", "wheelhouse", "lockfiles", "trust")
_INDEX_KEYS = ("name", "url", "packages")
_SOURCE_KEYS = ("requirements", "projects", "locks", "uv-locks", "packages", "find-links")
_PROJECT_KEYS = ("path", "extras", "groups")
_LOCK_KEYS = ("path", "groups", "extras")
LockFormat = Literal["uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock", "pylock.toml"]
LOCK_FORMATS: tuple[LockFormat, ...] = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock", "pylock.toml")
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+)\.toml$")  # PEP 751; packaging.pylock.is_valid_pylock_path
_POLICY_KEYS = ("sdists", "build-wheels", "no-binary", "only-binary", "compiler", "exclude-newer")
Compiler = Literal["host", "zig"]
COMPILERS: tuple[Compiler, ...] = ("host", "zig")
ALL = ":all:"
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectSource:
    """A ``pyproject.toml`` project whose dependencies (and build system) are mirrored."""

    path: Path
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def lock_format(path: PurePath) -> LockFormat | None:
    """The lock format a file's name says: uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pylock[.NAME].toml."""
    name = path.name
    if name == "pylock.toml" or _PYLOCK_NAME.fullmatch(name):
        return "pylock.toml"
    return next((f for f in LOCK_FORMATS if f == name), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class LockSource:
    """A lock a team already has; its pins are kept exactly, per target."""

    path: Path
    format: LockFormat
    groups: tuple[str, ...] = ()  # Poetry/PDM groups, Pipfile categories, PEP 751 dependency groups; () = default
    extras: tuple[str, ...] = ()  # PEP 751 extras
    key: str = field(default="sources.locks", compare=False)  # where the spec names it: sources.locks[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class Sources:
    """Everything the lock starts from."""

    requirements: tuple[Path, ...] = ()
    projects: tuple[ProjectSource, ...] = ()
    locks: tuple[LockSource, ...] = ()
    packages: tuple[str, ...] = ()
    find_links: tuple[Path, ...] = ()  # folders of wheels and sdists, like pip's --find-links

    @property
    def uv_locks(self) -> tuple[Path, ...]:
        return tuple(lock.path for lock in self.locks if lock.format == "uv.lock")

    @property
    def is_empty(self) -> bool:
        return not (self.requirements or self.projects or self.locks or self.packages)

    def files(self) -> list[tuple[str, Path]]:
        """Every file the sources name, with the key that names it (``sources.requirements[0]``); a project is
        its pyproject.toml, or its setup.py when it has none (a legacy project)."""
        named = [(f"sources.requirements[{i}]", p) for i, p in enumerate(self.requirements)]
        for i, project in enumerate(self.projects):
            pyproject, setup_py = project.path / "pyproject.toml", project.path / "setup.py"
            named.append(
                (
                    f"sources.projects[{i}].path",
                    setup_py if setup_py.is_file() and not pyproject.is_file() else pyproject,
                )
            )
        named += [(lock.key, lock.path) for lock in self.locks]
        return named


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """What to keep and build."""

    sdists: SdistPolicy = "when-needed"
    build_wheels: bool = True
    no_binary: tuple[str, ...] = ()  # normalized names, or ":all:": pip's --no-binary (built from source)
    only_binary: tuple[str, ...] = ()  # pip's --only-binary (never from an sdist)
    compiler: Compiler = "host"  # "zig": C/C++ for glibc targets compiled with zig cc for the target's glibc floor
    exclude_newer: str | None = None  # a release cooldown (mirror.cooldown): a moment, a date or "7d"

    def source_only(self, project: str) -> bool:
        """Whether ``project`` is installed from its sdist only (a name in one list wins over ``:all:`` in the
        other, as pip reads them)."""
        name = str(canonicalize_name(project))
        if name in self.no_binary or name in self.only_binary:
            return name in self.no_binary
        return ALL in self.no_binary

    def binary_only(self, project: str) -> bool:
        """Whether ``project`` is installed from a wheel only."""
        name = str(canonicalize_name(project))
        if name in self.no_binary or name in self.only_binary:
            return name in self.only_binary
        return ALL in self.only_binary and ALL not in self.no_binary


@dataclass(frozen=True, kw_only=True, slots=True)
class Spec:
    """A parsed ``mirror.toml``; all paths are absolute."""

    path: Path
    indexes: tuple[Index, ...] = (DEFAULT_INDEX,)  # the first without packages is the default
    wheelhouse: Path
    lockfiles: Path
    targets: tuple[Target, ...]
    trust: Path | None = None  # an allowed_signers file: every bundle imported here must be signed by a key it lists
    sources: Sources = field(default_factory=Sources)
    policy: Policy = field(default_factory=Policy)

    @property
    def root(self) -> Path:
        """The workspace directory (the one holding mirror.toml)."""
        return self.path.parent

    @property
    def upstream(self) -> str:
        """The default index's URL: where every name no index is routed to comes from."""
        return self.routing.default.url

    @property
    def routing(self) -> Routing:
        """Which index each name comes from, by the spec's ``[[index]] packages`` (locks add exact names)."""
        return Routing(indexes=self.indexes)

    @property
    def layout(self) -> Layout:
        """Where this workspace keeps its lockfiles, files, index, caches and records."""
        return Layout.of(self.root, wheelhouse=self.wheelhouse, lockfiles=self.lockfiles)

    def target(self, name: str) -> Target:
        """The target called ``name``; an :class:`InvalidSpec` listing the known names otherwise."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise InvalidSpec("target", f"no target named {name!r}; known: {known}", file=str(self.path))

    def select(self, names: Sequence[str]) -> tuple[Target, ...]:
        """The named targets, in spec order; all of them when ``names`` is empty."""
        if not names:
            return self.targets
        chosen = {self.target(name).name for name in names}
        return tuple(t for t in self.targets if t.name in chosen)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, path: Path) -> Spec:
        """Build a spec from the parsed TOML document of the file at ``path``."""
        _FIELDS.keys(data, _TABLES, "", what="table")
        root = path.parent
        mirror = _table(data, "mirror")
        _FIELDS.keys(mirror, _MIRROR_KEYS, "mirror")
        indexes = _indexes(data.get("index", []), mirror.get("upstream"))
        wheelhouse = _path(root, _str(mirror, "wheelhouse", "mirror", "wheelhouse"), "mirror.wheelhouse")
        lockfiles = _path(root, _str(mirror, "lockfiles", "mirror", "lockfiles"), "mirror.lockfiles")
        trust = _path(root, _str(mirror, "trust", "mirror", ""), "mirror.trust") if "trust" in mirror else None

        raw_targets = data.get("target", [])
        if not isinstance(raw_targets, list) or not all(isinstance(t, dict) for t in raw_targets):
            raise InvalidSpec("target", "expected an array of tables ([[target]])")
        if not raw_targets:
            raise InvalidSpec("target", "no target; add at least one [[target]] with platform and python")
        targets = tuple(Target.from_dict(t, where=f"target[{i}]") for i, t in enumerate(raw_targets))
        seen: dict[str, int] = {}
        for i, target in enumerate(targets):
            if target.name in seen:
                raise InvalidSpec(
                    f"target[{i}].name",
                    f"{target.name!r} is already the name of target[{seen[target.name]}];"
                    ' give one of them a distinct name = "..."',
                )
            seen[target.name] = i

        return cls(
            path=path,
            indexes=indexes,
            wheelhouse=wheelhouse,
            lockfiles=lockfiles,
            targets=targets,
            trust=trust,
            sources=_sources(_table(data, "sources"), root),
            policy=_policy(_table(data, "policy")),
        )

    def to_dict(self) -> dict[str, object]:
        """A TOML-shaped document; paths relative to the workspace where they are inside it."""

        def rel(p: Path) -> str:
            try:
                return p.relative_to(self.root).as_posix() or "."
            except ValueError:
                return str(p)

        return {
            "mirror": {
                "wheelhouse": rel(self.wheelhouse),
                "lockfiles": rel(self.lockfiles),
                **({"trust": rel(self.trust)} if self.trust is not None else {}),
            },
            "index": [{"name": i.name, "url": i.url, "packages": list(i.packages)} for i in self.indexes],
            "target": [t.to_dict() for t in self.targets],
            "sources": {
                "requirements": [rel(p) for p in self.sources.requirements],
                "projects": [
                    {"path": rel(p.path), "extras": list(p.extras), "groups": list(p.groups)}
                    for p in self.sources.projects
                ],
                "locks": [
                    {"path": rel(lock.path), "groups": list(lock.groups), "extras": list(lock.extras)}
                    for lock in self.sources.locks
                ],
                "packages": list(self.sources.packages),
                "find-links": [rel(p) for p in self.sources.find_links],
            },
            "policy": {
                "sdists": self.policy.sdists,
                "build-wheels": self.policy.build_wheels,
                "no-binary": list(self.policy.no_binary),
                "only-binary": list(self.policy.only_binary),
                "compiler": self.policy.compiler,
                **({"exclude-newer": self.policy.exclude_newer} if self.policy.exclude_newer else {}),
            },
        }


def parse_spec(text: str, path: Path) -> Spec:
    """Parse the TOML ``text`` of the spec file at ``path`` (the file itself is not read)."""
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise InvalidSpec("", f"not valid TOML: {exc}", file=str(path)) from None
    try:
        return Spec.from_dict(data, path=path.absolute())
    except InvalidSpec as exc:
        if exc.file is None:
            raise InvalidSpec(exc.key, exc.detail, file=str(path)) from None
        raise


def load_spec(path: Path) -> Spec:
    """Read and parse ``path``, and check that every file its sources name exists."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSpec("", "no such file; create one with 'mirror init'", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec("", f"cannot read: {exc}", file=str(path)) from None
    spec = parse_spec(text, path)
    for key, file in spec.sources.files():
        if not file.is_file():
            raise InvalidSpec(key, f"{str(file)!r} does not exist", file=str(path))
    for i, folder in enumerate(spec.sources.find_links):
        if not folder.is_dir():
            raise InvalidSpec(f"sources.find-links[{i}]", f"{str(folder)!r} is not a directory", file=str(path))
    return spec


# -- the starter spec ---------------------------------------------------------------------------------------


def starter_spec(
    targets: Sequence[Target],
    *,
    requirements: Sequence[str] = (),
    projects: Sequence[str] = (),
    locks: Sequence[str] = (),
    uv_locks: Sequence[str] = (),
    packages: Sequence[str] = (),
    upstream: str = PYPI_SIMPLE,
) -> str:
    """The commented ``mirror.toml`` that ``mirror init`` writes."""

    def array(values: Sequence[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    lines = [
        "# offline-mirror workspace: what to mirror, for which targets, from where.",
        "# Paths are relative to this file. Reference: docs/spec.md",
        "",
        "[mirror]",
        "# upstream: any PEP 503/691 simple index; wheelhouse: downloaded files and the generated index;",
        "# lockfiles: one lock per target, plus the manifest every later stage reads",
        f"upstream = {json.dumps(_upstream(upstream))}",
        'wheelhouse = "wheelhouse"',
        'lockfiles = "lockfiles"',
        "",
        "# Private indexes: the names in `packages` (PEP 503 names, `*` patterns) come from that index only, never",
        "# from any other. Credentials: MIRROR_INDEX_<NAME>_USERNAME and _PASSWORD (or _TOKEN), ~/.netrc or keyring.",
        "# [[index]]",
        '# name = "internal"',
        '# url = "https://pypi.internal.example/simple"',
        '# packages = ["acme-*"]',
        "",
        "# One [[target]] per deployment platform x Python version.",
        "# platform: linux/amd64, linux/arm64, linux/amd64/musl, linux/arm64/musl, macos/arm64, macos/amd64,",
        "#           windows/amd64, windows/arm64, windows/386, or a wheel platform tag (manylinux_2_28_aarch64).",
        '# Optional: glibc = "2.28" (glibc Linux), musl = "1.2", macos = "13.0", name = "…".',
    ]
    for target in targets:
        lines += ["[[target]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in target.to_dict().items()]
        lines += [""]
    lines += [
        "[sources]",
        "# pip requirements files (-r/-c includes, extras, markers and hashes are understood)",
        f"requirements = {array(requirements)}",
        "# pyproject.toml projects: dependencies, chosen extras and dependency groups, and their build-system",
        "projects = [" + ", ".join(f"{{ path = {json.dumps(p)}, extras = [], groups = [] }}" for p in projects) + "]",
        "# locks a team already has: poetry.lock, pdm.lock, Pipfile.lock, pylock.toml, uv.lock; their pins are kept",
        '# exactly, per target (choose groups with { path = "pdm.lock", groups = ["default", "dev"] })',
        f"locks = {array(locks)}",
        "# uv.lock files (the older spelling of locks)",
        f"uv-locks = {array(uv_locks)}",
        "# plain requirement strings",
        f"packages = {array(packages)}",
        "# folders of wheels and sdists (a CI's output), like pip's --find-links; their projects come from there only",
        "find-links = []",
        "",
        "[policy]",
        'sdists = "when-needed"   # "when-needed": only where no wheel fits a target | "always" | "never"',
        "build-wheels = true      # build wheels where no upstream wheel fits (offered where auditwheel says so)",
        'no-binary = []           # pip\'s --no-binary: these projects (or ":all:") come as sdists, built on target',
        'only-binary = []         # pip\'s --only-binary: never an sdist for these projects (or ":all:")',
        'compiler = "host"        # "zig": compile wheels here for each glibc target\'s floor (pip install ziglang)',
        '# exclude-newer = "7d"   # a release cooldown: no file uploaded in the last 7 days (or after a date)',
        "",
    ]
    return "\n".join(lines)


def write_starter_spec(directory: Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` as ``directory/mirror.toml`` (atomically); refuse to overwrite unless ``force``."""
    path = directory / SPEC_FILENAME
    if path.exists() and not force:
        raise InvalidSpec("", "already exists; pass --force to overwrite it", file=str(path))
    parse_spec(text, path)  # never write a spec that does not load
    _atomic.write_text(path, text)
    return path


@dataclass(frozen=True, kw_only=True, slots=True)
class Started:
    """A starter spec written by :func:`init_spec`."""

    path: Path
    targets: tuple[Target, ...]
    sources: tuple[str, ...]  # the files found that became sources, and each package asked for


def init_spec(
    directory: Path,
    *,
    targets: Sequence[Target] = (),
    packages: Sequence[str] = (),
    upstream: str = PYPI_SIMPLE,
    force: bool = False,
) -> Started:
    """Write a starter ``directory/mirror.toml``: this host first, then ``targets`` (one for the host's platform
    replaces the host's); ``requirements.txt``, ``pyproject.toml``, ``uv.lock`` and the locks of Poetry, PDM,
    Pipenv and PEP 751 found there become sources (with such a lock, the lock is the source, not the project)."""
    chosen = [host_target()]
    for target in targets:
        same = [i for i, t in enumerate(chosen) if t.name == target.name]
        if same:
            chosen[same[0]] = target
        else:
            chosen.append(target)
    found = {name: (directory / name).is_file() for name in ("requirements.txt", "pyproject.toml", "uv.lock")}
    locks = [
        path.name
        for path in sorted(directory.glob("*.*"))
        if path.is_file() and lock_format(path) not in (None, "uv.lock")
    ]
    if locks:  # the lock is the source; the project beside it is built, not resolved again
        found["pyproject.toml"] = False
    found.update((name, True) for name in locks)
    text = starter_spec(
        chosen,
        requirements=["requirements.txt"] if found["requirements.txt"] else [],
        projects=["."] if found["pyproject.toml"] else [],
        locks=locks,
        uv_locks=["uv.lock"] if found["uv.lock"] else [],
        packages=list(packages),
        upstream=upstream,
    )
    path = write_starter_spec(directory, text, force=force)
    used = [name for name, present in found.items() if present] + [f"'{p}'" for p in packages]
    return Started(path=path, targets=tuple(chosen), sources=tuple(used))


# -- helpers --------------------------------------------------------------------------------------------------


_FIELDS = Fields(InvalidSpec)


def _table(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    return _FIELDS.table(data.get(key, {}), key, what=f"a table ([{key}])", shown="type")


def _str(data: Mapping[str, object], key: str, where: str, default: str) -> str:
    return _FIELDS.string(data.get(key, default), where, key, non_empty=True).strip()


def _str_list(data: Mapping[str, object], key: str, where: str) -> list[str]:
    items = _FIELDS.array(data.get(key, []), where, key, what="an array of strings", shown="type repr")
    return [_FIELDS.string(item, f"{where}.{key}[{i}]", non_empty=True).strip() for i, item in enumerate(items)]


def _path(root: Path, value: str, key: str) -> Path:
    if "\x00" in value:
        raise InvalidSpec(key, f"{value!r} is not a valid path")
    return (root / value).resolve()


def _index_url(value: str, key: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.port is None or parts.port >= 0  # .port raises ValueError for a port that is no number < 65536
    except ValueError:  # also "http://[::1" and the like
        valid = False
    valid = valid and value.isprintable() and not any(c.isspace() for c in value)
    if not valid or parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise InvalidSpec(key, f"{redact(value)!r} is not an index URL; expected http(s)://host/simple or file:///path")
    if "@" in parts.netloc:
        raise InvalidSpec(
            key,
            f"{redact(value)!r} holds credentials, which never belong in mirror.toml; give them in the environment"
            " (MIRROR_INDEX_<NAME>_USERNAME and _PASSWORD, or _TOKEN), ~/.netrc or keyring",
        )
    return value.rstrip("/")


def _upstream(value: str) -> str:
    return _index_url(value, "mirror.upstream")


def _indexes(raw: object, upstream: object) -> tuple[Index, ...]:
    """``[[index]]`` tables, after the default index ``[mirror] upstream`` names; PyPI is the default when no
    index without ``packages`` is declared."""
    indexes: list[Index] = []
    if upstream is not None:
        url = _upstream(_FIELDS.string(upstream, "mirror", "upstream", non_empty=True).strip())
        indexes.append(Index(name="pypi" if same_url(url, PYPI_SIMPLE) else "upstream", url=url))
    tables = _FIELDS.array(raw, "index", what="an array of tables ([[index]])", shown="type")
    claimed: dict[str, str] = {}
    for i, item in enumerate(tables):
        where = f"index[{i}]"
        table = _FIELDS.table(item, where, what="a table ([[index]])", shown="type")
        _FIELDS.keys(table, _INDEX_KEYS, where)
        for key in ("name", "url"):
            if key not in table:
                raise InvalidSpec(f"{where}.{key}", "missing")
        name = _str(table, "name", where, "")
        if not INDEX_NAME_RE.fullmatch(name) or name == FIND_LINKS:
            reserved = f"; {FIND_LINKS!r} names the [sources] find-links folders" if name == FIND_LINKS else ""
            raise InvalidSpec(
                f"{where}.name",
                f"{name!r} is not an index name (letters, digits and '.-_', first a letter or digit){reserved}",
            )
        url = _index_url(_str(table, "url", where, ""), f"{where}.url")
        for j, other in enumerate(indexes):
            if other.name == name or same_url(other.url, url):
                what = "name" if other.name == name else "url"
                first = "mirror.upstream" if upstream is not None and j == 0 else f"index[{j - (upstream is not None)}]"
                raise InvalidSpec(f"{where}.{what}", f"{first} already has this {what}")
        patterns = []
        for k, value in enumerate(_str_list(table, "packages", where)):
            pattern = normalize_pattern(value)
            if pattern is None:
                raise InvalidSpec(
                    f"{where}.packages[{k}]", f"{value!r} is not a project name or a pattern such as 'acme-*'"
                )
            if pattern in claimed:
                raise InvalidSpec(
                    f"{where}.packages[{k}]", f"{value!r} is already routed to index {claimed[pattern]!r}"
                )
            claimed[pattern] = name
            patterns.append(pattern)
        indexes.append(Index(name=name, url=url, packages=tuple(patterns)))
    if not any(not index.packages for index in indexes):
        taken = next((i for i, index in enumerate(indexes) if index.name == DEFAULT_INDEX.name), None)
        if taken is not None:
            raise InvalidSpec(
                f"index[{taken}].name",
                "'pypi' is the default index's name when every index has packages; choose another name",
            )
        indexes.append(DEFAULT_INDEX)
    return tuple(indexes)


def _names(values: list[str], key: str) -> tuple[str, ...]:
    for i, value in enumerate(values):
        if not _NAME_RE.fullmatch(value):
            raise InvalidSpec(f"{key}[{i}]", f"{value!r} is not a valid name (PEP 508)")
    return tuple(str(canonicalize_name(v)) for v in values)


def _sources(data: Mapping[str, object], root: Path) -> Sources:
    _FIELDS.keys(data, _SOURCE_KEYS, "sources")
    projects: list[ProjectSource] = []
    raw_projects = data.get("projects", [])
    if not isinstance(raw_projects, list):
        raise InvalidSpec("sources.projects", 'expected an array of tables such as { path = "." }')
    for i, raw in enumerate(raw_projects):
        where = f"sources.projects[{i}]"
        item = _entry(raw, where, _PROJECT_KEYS, 'a table such as { path = "." } or a path')
        projects.append(
            ProjectSource(
                path=_path(root, _str(item, "path", where, "."), f"{where}.path"),
                extras=_names(_str_list(item, "extras", where), f"{where}.extras"),
                groups=_names(_str_list(item, "groups", where), f"{where}.groups"),
            )
        )
    packages = _str_list(data, "packages", "sources")
    for i, package in enumerate(packages):
        try:
            Requirement(package)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            raise InvalidSpec(f"sources.packages[{i}]", f"{package!r} is not a valid requirement: {reason}") from None
    return Sources(
        requirements=tuple(
            _path(root, p, f"sources.requirements[{i}]")
            for i, p in enumerate(_str_list(data, "requirements", "sources"))
        ),
        projects=tuple(projects),
        locks=tuple(_locks(data, root)),
        packages=tuple(packages),
        find_links=tuple(
            _path(root, p, f"sources.find-links[{i}]") for i, p in enumerate(_str_list(data, "find-links", "sources"))
        ),
    )


def _entry(raw: object, where: str, keys: Sequence[str], expected: str) -> Mapping[str, object]:
    """A source entry written as a path or as a table with a ``path`` and only ``keys``."""
    item = {"path": raw} if isinstance(raw, str) else raw
    if not isinstance(item, dict):
        raise InvalidSpec(where, f"expected {expected}, got {raw!r}")
    _FIELDS.keys(item, keys, where)
    return cast(Mapping[str, object], item)


def _locks(data: Mapping[str, object], root: Path) -> list[LockSource]:
    """``locks`` (paths, or tables with path, groups and extras), then ``uv-locks`` (paths of uv.lock files)."""
    locks = []
    for i, raw in enumerate(_FIELDS.array(data.get("locks", []), "sources", "locks", shown="type repr")):
        where = f"sources.locks[{i}]"
        item = _entry(raw, where, _LOCK_KEYS, 'a path or a table such as { path = "poetry.lock" }')
        path = _path(root, _str(item, "path", where, ""), f"{where}.path")
        found = lock_format(path)
        if found is None:
            raise InvalidSpec(
                f"{where}.path",
                f"{path.name!r} is not a lock file name offline-mirror reads; expected one of: uv.lock, poetry.lock,"
                " pdm.lock, Pipfile.lock, pylock.toml or pylock.<name>.toml",
            )
        groups = _names(_str_list(item, "groups", where), f"{where}.groups")
        extras = _names(_str_list(item, "extras", where), f"{where}.extras")
        if found == "uv.lock" and (groups or extras):
            raise InvalidSpec(where, "uv.lock: every group and extra of its workspace is mirrored; drop groups/extras")
        if extras and found != "pylock.toml":
            raise InvalidSpec(f"{where}.extras", f"{found} locks extras into groups: choose groups instead")
        locks.append(LockSource(path=path, format=found, groups=groups, extras=extras, key=where))
    for i, raw in enumerate(_str_list(data, "uv-locks", "sources")):  # the older spelling of locks for uv.lock
        where = f"sources.uv-locks[{i}]"
        locks.append(LockSource(path=_path(root, raw, where), format="uv.lock", key=where))
    return locks


def _policy(data: Mapping[str, object]) -> Policy:
    _FIELDS.keys(data, _POLICY_KEYS, "policy")
    sdists = data.get("sdists", "when-needed")
    if sdists not in SDIST_POLICIES:
        raise InvalidSpec("policy.sdists", f"{sdists!r} is not a policy; expected one of: {', '.join(SDIST_POLICIES)}")
    formats = {key: _formats(data, key) for key in ("no-binary", "only-binary")}
    both = sorted(set(formats["no-binary"]) & set(formats["only-binary"]))
    if both:
        raise InvalidSpec("policy.only-binary", f"{both[0]!r} is also in policy.no-binary; name it in one of them")
    exclude_newer = data.get("exclude-newer")
    if exclude_newer is not None and (not isinstance(exclude_newer, str) or not cooldown.valid(exclude_newer)):
        raise InvalidSpec("policy.exclude-newer", f"{exclude_newer!r} is not {cooldown.EXPECTED}")
    compiler = data.get("compiler", "host")
    if compiler not in COMPILERS:
        raise InvalidSpec("policy.compiler", f"{compiler!r} is not a compiler; expected one of: {', '.join(COMPILERS)}")
    return Policy(
        sdists=sdists,
        build_wheels=_FIELDS.boolean(data.get("build-wheels", True), "policy", "build-wheels"),
        no_binary=formats["no-binary"],
        only_binary=formats["only-binary"],
        compiler=compiler,
        exclude_newer=exclude_newer.strip() if exclude_newer else None,
    )


def _formats(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    """A no-binary / only-binary list: project names, or ":all:"."""
    values = _str_list(data, key, "policy")
    for i, value in enumerate(values):
        if value != ALL and not _NAME_RE.fullmatch(value):
            raise InvalidSpec(f"policy.{key}[{i}]", f"{value!r} is not a project name or {ALL!r}")
    return tuple(dict.fromkeys(v if v == ALL else str(canonicalize_name(v)) for v in values))
