"""Sources: turn ``[sources]`` of mirror.toml into the root requirements of one target's lock.

Four kinds of source feed a lock, and each has a pure parser (text in, frozen dataclasses out) and a thin
file-reading edge:

* **requirements files** (pip's format): :func:`parse_requirements` / :func:`read_requirements`, following
  ``-r`` and ``-c`` includes relative to the including file;
* **projects** (``pyproject.toml``): :func:`parse_pyproject` / :func:`read_project` — ``[project]``
  dependencies, the chosen extras and PEP 735 dependency groups, and the ``[build-system]`` (or pip's legacy
  default) that the build closure starts from;
* **uv.lock** files: :func:`parse_uv_lock` / :func:`read_uv_lock`, and :meth:`UvLock.pins_for` which walks the
  lock from its workspace members for one target and pins every package it reaches;
* **packages**: the plain PEP 508 strings of ``sources.packages``.

:func:`collect_inputs` is the one call the lock stage makes per target: it returns :class:`Inputs`, whose
:meth:`Inputs.requirements_txt` and :meth:`Inputs.constraints_txt` are the ``requirements.in`` and constraints
texts given to the resolver. Markers are kept (the resolver evaluates them for the target), except on uv.lock
edges, which are evaluated here because the lock itself is the resolution.

Every problem is an :class:`InvalidSource` naming the file and the line or key, in one line::

    requirements.txt:4: '-e .' cannot be mirrored from an index; list the project under [sources] projects
    app/pyproject.toml: project.dependencies[2]: 'x>=>' is not a valid requirement: Expected ...
"""

from __future__ import annotations

import ast
import configparser
import logging
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from mirror import _toml
from mirror.errors import MirrorError
from mirror.spec import SPEC_FILENAME, ProjectSource, Sources
from mirror.targets import Target

log = logging.getLogger(__name__)

#: What pip (and uv) build a project with when its pyproject.toml has no ``[build-system]`` table (PEP 517/518).
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"

LOCAL_ADVICE = "list the project under [sources] projects"
RELEASE_ADVICE = "require a released version instead"


class InvalidSource(MirrorError):
    """A source named by ``[sources]`` cannot be read or cannot be mirrored from an index.

    The message starts with where: ``requirements.txt:4`` or ``app/pyproject.toml: project.dependencies[2]``.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)


# -- the result -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RootRequirement:
    """One requirement the lock starts from, and where it was written."""

    requirement: Requirement  # markers kept: the resolver evaluates them for the target
    origin: str  # "requirements.txt:3", "app/pyproject.toml [project.dependencies]", "uv.lock", ...

    @property
    def line(self) -> str:
        """The requirement as one canonical PEP 508 line (normalized name and extras)."""
        return requirement_line(self.requirement)


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildSystem:
    """A project's ``[build-system]``; pip's legacy default when the table is absent."""

    requires: tuple[Requirement, ...]
    backend: str | None  # None: not declared (frontends then use LEGACY_BACKEND)
    backend_path: tuple[str, ...] = ()
    declared: bool  # False when pyproject.toml has no [build-system] and the legacy default applies

    @property
    def effective_backend(self) -> str:
        """The backend a PEP 517 frontend calls: the declared one or ``setuptools.build_meta:__legacy__``."""
        return self.backend or LEGACY_BACKEND

    @classmethod
    def legacy(cls) -> BuildSystem:
        """What pip uses for a project with no ``[build-system]``: setuptools' legacy backend."""
        return cls(
            requires=tuple(Requirement(r) for r in LEGACY_BUILD_REQUIRES), backend=None, backend_path=(), declared=False
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    """A local project: built (so its build system is locked) but never mirrored itself."""

    name: str  # normalized
    path: Path  # the project directory
    build_system: BuildSystem
    # True when the resolver must build the project to learn its dependencies; the project is then one of the
    # requirements itself (``name @ file:///...``) and the lock drops its own pin from the output.
    dynamic_dependencies: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Inputs:
    """What one target's lock starts from."""

    requirements: tuple[RootRequirement, ...] = ()  # what to install, every origin kept
    constraints: tuple[RootRequirement, ...] = ()  # from -c files and uv.lock pins
    projects: tuple[Project, ...] = ()  # local projects, for the build closure (their build_system)

    @classmethod
    def combine(cls, parts: Iterable[Inputs]) -> Inputs:
        """All ``parts`` in order, without repeating a requirement from the same origin or a project's path."""
        requirements: dict[tuple[str, str], RootRequirement] = {}
        constraints: dict[tuple[str, str], RootRequirement] = {}
        projects: dict[Path, Project] = {}
        for part in parts:
            for root in part.requirements:
                requirements.setdefault((root.line, root.origin), root)
            for root in part.constraints:
                constraints.setdefault((root.line, root.origin), root)
            for project in part.projects:
                projects.setdefault(project.path, project)
        return cls(
            requirements=tuple(requirements.values()),
            constraints=tuple(constraints.values()),
            projects=tuple(projects.values()),
        )

    def requirements_txt(self) -> str:
        """A ``requirements.in`` text: one PEP 508 line per distinct requirement, sorted by name."""
        return _lines(self.requirements)

    def constraints_txt(self) -> str:
        """A constraints text: one PEP 508 line per distinct constraint, sorted by name."""
        return _lines(self.constraints)


def requirement_line(requirement: Requirement) -> str:
    """``requirement`` as one canonical line: normalized name and extras, packaging's spelling of the rest."""
    copy = Requirement(str(requirement))
    copy.name = canonicalize_name(copy.name)
    copy.extras = {canonicalize_name(extra) for extra in copy.extras}
    return str(copy)


def _lines(roots: Iterable[RootRequirement]) -> str:
    lines = {(canonicalize_name(root.requirement.name), root.line) for root in roots}
    return "".join(f"{line}\n" for _, line in sorted(lines))


# -- requirement strings ------------------------------------------------------------------------------------

_VCS_OR_URL_RE = re.compile(r"^(?:(?:git|hg|svn|bzr)\+|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)
_ARCHIVE_RE = re.compile(r"\.(?:whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)$", re.IGNORECASE)


def _location_advice(location: str) -> str:
    """The advice for a requirement that names a location (URL, VCS, path) instead of a released version."""
    location = location.split(";")[0].split("#")[0].strip()
    if _ARCHIVE_RE.search(location):
        return RELEASE_ADVICE
    if location.lower().startswith("file:") or not _VCS_OR_URL_RE.match(location):
        return LOCAL_ADVICE
    return RELEASE_ADVICE


def _looks_like_location(text: str) -> bool:
    text = text.split(";")[0].strip()
    return bool(
        _VCS_OR_URL_RE.match(text)
        or text.lower().startswith("file:")
        or text.startswith((".", "/", "~"))
        or "/" in text
        or "\\" in text
        or _ARCHIVE_RE.search(text)
    )


def _not_mirrorable(text: str, advice: str) -> str:
    return f"{text!r} cannot be mirrored from an index; {advice}"


def parse_requirement(text: str, where: str) -> Requirement:
    """Parse one PEP 508 string that must come from an index; :class:`InvalidSource` at ``where`` otherwise."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        if _looks_like_location(text):
            raise InvalidSource(where, _not_mirrorable(text, _location_advice(text))) from None
        reason = str(exc).splitlines()[0] if str(exc) else "invalid syntax"
        raise InvalidSource(where, f"{text!r} is not a valid requirement: {reason}") from None
    if requirement.url is not None:
        raise InvalidSource(where, _not_mirrorable(text, _location_advice(requirement.url)))
    if _ARCHIVE_RE.search(requirement.name):
        raise InvalidSource(where, _not_mirrorable(text, RELEASE_ADVICE))
    return requirement


def package_inputs(packages: Sequence[str], *, label: str = SPEC_FILENAME) -> Inputs:
    """``sources.packages``: each string with origin ``mirror.toml packages[i]``."""
    return Inputs(
        requirements=tuple(
            RootRequirement(
                requirement=parse_requirement(text, f"{label}: sources.packages[{i}]"),
                origin=f"{label} packages[{i}]",
            )
            for i, text in enumerate(packages)
        )
    )


# -- requirements files ---------------------------------------------------------------------------------------
#
# No well-kept library parses pip requirements files as a public API: pip's parser (pip._internal.req.req_file)
# is internal, and pip-requirements-parser is a vendored copy of those internals. This follows pip's rules for
# what it reads: line continuations are joined first, then comments are stripped, then a line is either
# options or a requirement followed by per-requirement options.

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ALIASES = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable", "-i": "--index-url", "-f": "--find-links"}
_INCLUDE_OPTIONS = ("--requirement", "--constraint")
_INDEX_OPTIONS = ("--index-url", "--extra-index-url", "--no-index", "--find-links", "--trusted-host")
_RESOLVER_OPTIONS = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--use-feature")
_PER_REQUIREMENT_OPTIONS = ("--hash", "--config-settings", "--global-option", "--install-option")
_KNOWN_OPTIONS = (*_INCLUDE_OPTIONS, "--editable", *_INDEX_OPTIONS, *_RESOLVER_OPTIONS, *_PER_REQUIREMENT_OPTIONS)
_FLAGS = ("--no-index", "--pre", "--prefer-binary", "--require-hashes")


@dataclass(frozen=True, kw_only=True, slots=True)
class Include:
    """A ``-r`` or ``-c`` line: another file to read."""

    path: Path  # resolved against the including file's directory
    written: str  # as written on the line
    constraint: bool  # -c: its requirements are constraints
    origin: str  # "requirements.txt:3"


@dataclass(frozen=True, kw_only=True, slots=True)
class RequirementsFile:
    """One parsed requirements file; its includes are not followed (see :func:`read_requirements`)."""

    requirements: tuple[RootRequirement, ...] = ()
    constraints: tuple[RootRequirement, ...] = ()
    includes: tuple[Include, ...] = ()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first physical line number, line)`` with continuations joined, as pip's ``join_lines`` does."""
    joined: list[str] = []
    first = 0
    number = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.endswith("\\") or _COMMENT_RE.match(line):
            if _COMMENT_RE.match(line):
                line = " " + line  # a comment line ends a continuation and is stripped below
            if joined:
                joined.append(line)
                yield first, "".join(joined)
                joined = []
            else:
                yield number, line
        else:
            if not joined:
                first = number
            joined.append(line[:-1])
    if joined:
        yield first, "".join(joined)


def _options(text: str, where: str) -> list[tuple[str, str, str | None]]:
    """``(option as written, canonical long name, value)`` for each option in ``text``."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InvalidSource(where, f"cannot split {text!r} into options: {exc}") from None
    options: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        value: str | None
        if token.startswith("--"):
            written, equals, rest = token.partition("=")
            value = rest if equals else None
        elif token.startswith("-") and len(token) > 1:
            written, value = token[:2], token[2:] or None
        else:
            raise InvalidSource(where, f"{token!r} is neither an option nor part of a requirement")
        name = _ALIASES.get(written, written)
        if name not in _KNOWN_OPTIONS:
            raise InvalidSource(where, f"unknown option {written!r}")
        if name in _FLAGS:
            if value is not None:
                raise InvalidSource(where, f"option {written} takes no value")
        elif value is None:
            if i >= len(tokens):
                raise InvalidSource(where, f"option {written} needs a value")
            value = tokens[i]
            i += 1
        options.append((written, name, value))
    return options


def _split_requirement(line: str) -> tuple[str, str]:
    """Split a line into its requirement and its options at the first word starting with '-' (pip's rule)."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:i]), " ".join(words[i:])
    return " ".join(words), ""


def _ignored(where: str, written: str) -> None:
    name = _ALIASES.get(written, written)
    if name in _INDEX_OPTIONS:
        why = "packages come from mirror.toml's [mirror] upstream"
    elif name in _RESOLVER_OPTIONS:
        why = "the lock resolves with its own options"
    else:
        why = "build options are not part of a lock"
    log.warning("%s: %s is ignored: %s", where, written, why)


def parse_requirements(
    text: str, *, path: Path, label: str | None = None, constraint: bool = False
) -> RequirementsFile:
    """Parse the pip requirements ``text`` of the file at ``path`` (shown as ``label``; includes not followed).

    With ``constraint`` (a file included with ``-c``) its requirement lines are constraints. Index and resolver
    options (``--index-url``, ``--pre``, ...) are ignored with a logged warning: mirror.toml's upstream and the
    lock's own options decide. ``--hash`` options are allowed and ignored (the lock records its own hashes).
    """
    shown = label if label is not None else str(path)
    requirements: list[RootRequirement] = []
    constraints: list[RootRequirement] = []
    includes: list[Include] = []
    for number, raw in _logical_lines(text):
        line = _COMMENT_RE.sub("", raw).strip()
        if not line:
            continue
        where = f"{shown}:{number}"
        requirement_text, options_text = _split_requirement(line)
        options = _options(options_text, where)
        if not requirement_text:
            for written, name, value in options:
                assert value is not None or name in _FLAGS
                if name in _INCLUDE_OPTIONS:
                    assert value is not None
                    if _VCS_OR_URL_RE.match(value):
                        raise InvalidSource(where, f"cannot include {value!r}: only local files can be included")
                    includes.append(
                        Include(
                            path=path.parent / value,
                            written=value,
                            constraint=name == "--constraint",
                            origin=where,
                        )
                    )
                elif name == "--editable":
                    assert value is not None
                    raise InvalidSource(where, _not_mirrorable(line, _location_advice(value)))
                elif name in _PER_REQUIREMENT_OPTIONS:
                    raise InvalidSource(where, f"option {written} must follow a requirement on the same line")
                else:
                    _ignored(where, written)
            continue
        for written, name, _ in options:
            if name not in _PER_REQUIREMENT_OPTIONS:
                raise InvalidSource(where, f"option {written} cannot follow a requirement; only --hash can")
            if name != "--hash":
                _ignored(where, written)
        requirement = parse_requirement(requirement_text, where)
        if constraint and requirement.extras:
            log.warning("%s: extras of constraint %r are ignored: constraints cannot have extras", where, line)
            requirement.extras = set()
        (constraints if constraint else requirements).append(RootRequirement(requirement=requirement, origin=where))
    return RequirementsFile(requirements=tuple(requirements), constraints=tuple(constraints), includes=tuple(includes))


def read_requirements(path: Path, *, root: Path, constraint: bool = False) -> Inputs:
    """Read the requirements file at ``path`` and every file it includes, recursively.

    Includes resolve against the including file's directory; as in pip, ``-r`` inside a constraints file
    still names requirements and ``-c`` always names constraints. A file's own lines come first, then its
    includes, depth first. Origins show paths relative to ``root``.
    """
    requirements: list[RootRequirement] = []
    constraints: list[RootRequirement] = []

    def read(file: Path, as_constraint: bool, stack: tuple[Path, ...], where: str, written: str) -> None:
        key = file.resolve()
        if key in stack:
            chain = " -> ".join(_shown(p, root) for p in (*stack[stack.index(key) :], key))
            raise InvalidSource(where, f"cannot include {written!r}: include cycle {chain}")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            message = "no such file" if not where else f"cannot include {written!r}: no such file"
            raise InvalidSource(where or _shown(file, root), message) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSource(_shown(file, root), f"cannot read: {exc}") from None
        parsed = parse_requirements(text, path=file, label=_shown(file, root), constraint=as_constraint)
        requirements.extend(parsed.requirements)
        constraints.extend(parsed.constraints)
        for include in parsed.includes:
            read(include.path, include.constraint, (*stack, key), include.origin, include.written)

    read(path, constraint, (), "", str(path))
    return Inputs(requirements=tuple(requirements), constraints=tuple(constraints))


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (POSIX separators), absolute otherwise."""
    absolute = path if path.is_absolute() else root / path
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(absolute)


# -- projects (pyproject.toml) ----------------------------------------------------------------------------------


def _read_toml(text: str, label: str) -> dict[str, object]:
    try:
        data: dict[str, object] = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise InvalidSource(label, f"not valid TOML: {exc}") from None
    return data


def _table(data: Mapping[str, object], key: str, label: str, where: str) -> Mapping[str, object]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidSource(label, f"{where}: expected a table, got {type(value).__name__} {value!r}")
    return cast(Mapping[str, object], value)


def _strings(value: object, label: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSource(label, f"{where}: expected an array of strings, got {value!r}")
    return cast(list[str], value)


#: [tool.uv.sources] kinds, the one that matters most to a mirror first: remote, then local, then another index.
_UV_SOURCE_KINDS = ("git", "url", "path", "workspace", "index")


def _requirement_item(text: str, where: str, origin: str, uv_sources: Mapping[str, str]) -> RootRequirement | None:
    """One dependency string of a pyproject.toml; ``None`` when [tool.uv.sources] makes it a local project."""
    requirement = parse_requirement(text, where)
    kind = uv_sources.get(canonicalize_name(requirement.name))
    if kind in ("git", "url"):
        remote = "a git repository" if kind == "git" else "a URL"
        raise InvalidSource(
            where,
            f"{text!r} cannot be mirrored from an index: [tool.uv.sources] gets it from {remote}; {RELEASE_ADVICE}",
        )
    if kind in ("path", "workspace"):
        log.warning(
            "%s: %r is a local project (%s in [tool.uv.sources]) and is not mirrored; %s to mirror its dependencies",
            where,
            text,
            kind,
            LOCAL_ADVICE,
        )
        return None
    if kind == "index":
        log.warning(
            "%s: %r names an index in [tool.uv.sources]; the mirror resolves it from its [mirror] upstream", where, text
        )
    return RootRequirement(requirement=requirement, origin=origin)


def _requirements(items: Sequence[str], label: str, key: str, uv_sources: Mapping[str, str]) -> list[RootRequirement]:
    """The dependency strings at ``key`` (an array) with origin ``label [key]``."""
    found = (
        _requirement_item(text, f"{label}: {key}[{i}]", f"{label} [{key}]", uv_sources) for i, text in enumerate(items)
    )
    return [root for root in found if root is not None]


def _uv_sources(data: Mapping[str, object], label: str) -> dict[str, str]:
    """Normalized name -> the kind of its ``[tool.uv.sources]`` entry: git, url, path, workspace or index."""
    tool = _table(data, "tool", label, "tool")
    uv = _table(tool, "uv", label, "tool.uv")
    sources = _table(uv, "sources", label, "tool.uv.sources")
    kinds: dict[str, str] = {}
    for name, value in sources.items():
        entries = value if isinstance(value, list) else [value]
        found = [kind for entry in entries if isinstance(entry, dict) for kind in _UV_SOURCE_KINDS if kind in entry]
        if not found:
            raise InvalidSource(
                label, f"tool.uv.sources.{name}: expected a table with one of: {', '.join(_UV_SOURCE_KINDS)}"
            )
        kinds[canonicalize_name(name)] = min(found, key=_UV_SOURCE_KINDS.index)
    return kinds


def parse_build_system(data: Mapping[str, object], *, label: str) -> BuildSystem:
    """The ``[build-system]`` of a parsed pyproject.toml document; pip's legacy default when it is absent."""
    if "build-system" not in data:
        return BuildSystem.legacy()
    table = _table(data, "build-system", label, "build-system")
    if "requires" not in table:
        raise InvalidSource(
            label, 'build-system.requires: missing; PEP 518 requires it (e.g. requires = ["setuptools>=61"])'
        )
    requires = _strings(table["requires"], label, "build-system.requires")
    backend = table.get("build-backend")
    if backend is not None and (not isinstance(backend, str) or not backend.strip()):
        raise InvalidSource(label, f"build-system.build-backend: expected a non-empty string, got {backend!r}")
    return BuildSystem(
        requires=tuple(parse_requirement(r, f"{label}: build-system.requires[{i}]") for i, r in enumerate(requires)),
        backend=backend.strip() if backend is not None else None,
        backend_path=tuple(_strings(table.get("backend-path", []), label, "build-system.backend-path")),
        declared=True,
    )


def parse_pyproject(
    text: str,
    *,
    path: Path,
    extras: Sequence[str] = (),
    groups: Sequence[str] = (),
    label: str | None = None,
    fallback_name: str | None = None,
) -> Inputs:
    """Parse the pyproject.toml ``text`` of the project at ``path.parent`` (shown as ``label``).

    Returns the project (for its build system) and its requirements: ``[project].dependencies``, those of the
    chosen ``extras`` and of the chosen dependency ``groups`` (PEP 735, includes resolved). When the
    dependencies are dynamic (listed in ``project.dynamic``, or no ``[project]`` table at all) the project itself
    is the requirement, ``name[extras] @ file:///...``, and the resolver builds it to learn them;
    ``fallback_name`` (from setup.cfg or setup.py, see :func:`read_project`) names a project with no
    ``[project]`` table.
    """
    shown = label if label is not None else str(path)
    data = _read_toml(text, shown)
    directory = path.parent.absolute()
    build_system = parse_build_system(data, label=shown)
    uv_sources = _uv_sources(data, shown)
    tool_uv = _table(_table(data, "tool", shown, "tool"), "uv", shown, "tool.uv")
    uv_dev = _strings(tool_uv.get("dev-dependencies", []), shown, "tool.uv.dev-dependencies")

    if "project" in data:
        project = _table(data, "project", shown, "project")
        name = project.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidSource(shown, f"project.name: expected the project's name, got {name!r}")
        dynamic = _strings(project.get("dynamic", []), shown, "project.dynamic")
    else:
        project = {}
        poetry = _table(_table(data, "tool", shown, "tool"), "poetry", shown, "tool.poetry").get("name")
        name = poetry if isinstance(poetry, str) and poetry.strip() else fallback_name
        if name is None:
            raise InvalidSource(
                shown, "project: no [project] table and no name in setup.cfg or setup.py; add [project] with a name"
            )
        dynamic = ["dependencies", "optional-dependencies"]
    name = canonicalize_name(name.strip())

    requirements: list[RootRequirement] = []
    optional_dynamic = "optional-dependencies" in dynamic
    optional = _table(project, "optional-dependencies", shown, "project.optional-dependencies")
    known_extras = {canonicalize_name(extra): extra for extra in optional}
    chosen_extras = [canonicalize_name(extra) for extra in extras]
    if not optional_dynamic:
        for extra in chosen_extras:
            if extra not in known_extras:
                known = ", ".join(sorted(known_extras)) or "none"
                raise InvalidSource(
                    shown, f"project.optional-dependencies: project {name!r} has no extra {extra!r}; known: {known}"
                )
    dynamic_dependencies = "dependencies" in dynamic or (optional_dynamic and bool(chosen_extras))
    if dynamic_dependencies:
        extras_part = f"[{','.join(sorted(set(chosen_extras)))}]" if chosen_extras else ""
        requirements.append(
            RootRequirement(
                requirement=Requirement(f"{name}{extras_part} @ {directory.as_uri()}"),
                origin=f"{shown} (dynamic dependencies)",
            )
        )
    else:
        dependencies = _strings(project.get("dependencies", []), shown, "project.dependencies")
        requirements += _requirements(dependencies, shown, "project.dependencies", uv_sources)
        for extra in dict.fromkeys(chosen_extras):
            written = known_extras[extra]
            key = f"project.optional-dependencies.{written}"
            items = _strings(optional[written], shown, key)
            requirements += _requirements(items, shown, key, uv_sources)

    requirements += _dependency_groups(data, [canonicalize_name(g) for g in groups], name, shown, uv_sources, uv_dev)
    return Inputs(
        requirements=tuple(requirements),
        projects=(
            Project(name=name, path=directory, build_system=build_system, dynamic_dependencies=dynamic_dependencies),
        ),
    )


def _dependency_groups(
    data: Mapping[str, object],
    chosen: Sequence[str],
    project: str,
    label: str,
    uv_sources: Mapping[str, str],
    uv_dev: Sequence[str],
) -> list[RootRequirement]:
    """The requirements of the ``chosen`` PEP 735 groups, ``{include-group = "..."}`` followed recursively."""
    raw = _table(data, "dependency-groups", label, "dependency-groups")
    groups: dict[str, tuple[str, list[object]]] = {}
    for written, items in raw.items():
        normalized = canonicalize_name(written)
        if normalized in groups:
            raise InvalidSource(
                label,
                f"dependency-groups: {groups[normalized][0]!r} and {written!r} are the same group once normalized",
            )
        if not isinstance(items, list):
            raise InvalidSource(label, f"dependency-groups.{written}: expected an array, got {items!r}")
        groups[normalized] = (written, cast(list[object], items))

    out: list[RootRequirement] = []
    done: set[str] = set()

    def walk(group: str, stack: tuple[str, ...]) -> None:
        if group in done:
            return
        written, items = groups[group]
        for i, item in enumerate(items):
            key = f"dependency-groups.{written}[{i}]"
            if isinstance(item, str):
                root = _requirement_item(item, f"{label}: {key}", f"{label} [dependency-groups.{written}]", uv_sources)
                if root is not None:
                    out.append(root)
                continue
            if not isinstance(item, dict) or set(item) != {"include-group"}:
                raise InvalidSource(
                    label, f'{key}: expected a requirement string or {{ include-group = "..." }}, got {item!r}'
                )
            included = item["include-group"]
            if not isinstance(included, str):
                raise InvalidSource(label, f"{key}: include-group: expected a group name, got {included!r}")
            target = canonicalize_name(included)
            if target not in groups:
                known = ", ".join(sorted(groups)) or "none"
                raise InvalidSource(label, f"{key}: includes unknown group {included!r}; known: {known}")
            if target in stack:
                chain = " -> ".join((*stack[stack.index(target) :], target))
                raise InvalidSource(label, f"{key}: include-group cycle {chain}")
            walk(target, (*stack, target))
        done.add(group)

    for group in chosen:
        if group == "dev" and group not in groups and uv_dev:
            continue
        if group not in groups:
            known = sorted({*groups, *(["dev"] if uv_dev else [])})
            raise InvalidSource(
                label,
                f"dependency-groups: project {project!r} has no group {group!r}; known: {', '.join(known) or 'none'}",
            )
        walk(group, (group,))
    if "dev" in chosen and uv_dev:
        out += _requirements(uv_dev, label, "tool.uv.dev-dependencies", uv_sources)
    return out


def _legacy_name(directory: Path) -> str | None:
    """The name a setuptools project without ``[project]`` declares in setup.cfg or, literally, in setup.py."""
    setup_cfg = directory / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, configparser.Error):
            pass
        else:
            name = parser.get("metadata", "name", fallback="").strip()
            if name:
                return name
    setup_py = directory / "setup.py"
    if setup_py.is_file():
        try:
            tree = ast.parse(setup_py.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Name) and node.func.id == "setup")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "setup")
            ):
                for keyword in node.keywords:
                    if (
                        keyword.arg == "name"
                        and isinstance(keyword.value, ast.Constant)
                        and isinstance(keyword.value.value, str)
                    ):
                        return keyword.value.value
    return None


def _project_file(directory: Path, root: Path) -> tuple[str, str | None] | None:
    """(label, pyproject.toml text) of the project in ``directory``; text ``None`` for a legacy project (setup.py
    alone: no [project], no [build-system]); ``None`` when it is not a Python project."""
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        label = _shown(pyproject, root)
        try:
            return label, pyproject.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSource(label, f"cannot read: {exc}") from None
    if (directory / "setup.py").is_file():
        return _shown(directory / "setup.py", root), None
    return None


def read_project(source: ProjectSource, *, root: Path) -> Inputs:
    """Read the project at ``source.path``: its pyproject.toml, or a legacy setup.py alone (:func:`parse_pyproject`)."""
    directory = source.path if source.path.is_absolute() else root / source.path
    pyproject = directory / "pyproject.toml"
    found = _project_file(directory, root)
    if found is None:
        raise InvalidSource(_shown(pyproject, root), "no such file (and no setup.py): not a Python project")
    label, text = found
    return parse_pyproject(
        text or "",
        path=pyproject,
        extras=source.extras,
        groups=source.groups,
        label=label,
        fallback_name=_legacy_name(directory),
    )


# -- uv.lock ----------------------------------------------------------------------------------------------------

#: uv.lock source kinds: where a locked package comes from.
_REGISTRY = "registry"
_LOCAL_KINDS = ("editable", "virtual", "directory")  # a project directory: built locally, never mirrored
_REMOTE_KINDS = ("git", "url", "path")  # an archive or checkout: cannot be mirrored from an index
_SOURCE_KINDS = (_REGISTRY, *_LOCAL_KINDS, *_REMOTE_KINDS)
_EXTRA_LITERAL_RE = re.compile(r"""\bextra\s*(?:==|!=)\s*(['"])(.*?)\1|(['"])(.*?)\3\s*(?:==|!=)\s*extra\b""")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedDependency:
    """One edge of uv.lock: ``{ name = "...", version = "...", source = {...}, marker = "...", extra = [...] }``."""

    name: str  # normalized
    version: str | None = None  # given when several packages share the name (a forked resolution)
    source: tuple[str, str] | None = None  # (kind, value), given when the name and version are still ambiguous
    marker: str | None = None
    extras: tuple[str, ...] = ()  # normalized


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedPackage:
    """One ``[[package]]`` of uv.lock."""

    name: str  # normalized
    version: str | None  # None for a local project with a dynamic version
    source: tuple[str, str]  # (kind, value): ("registry", "https://pypi.org/simple"), ("editable", "."), ...
    dependencies: tuple[LockedDependency, ...] = ()
    optional_dependencies: Mapping[str, tuple[LockedDependency, ...]] = field(default_factory=dict)  # by extra
    dev_dependencies: Mapping[str, tuple[LockedDependency, ...]] = field(default_factory=dict)  # by group

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
    packages: tuple[LockedPackage, ...]

    @property
    def members(self) -> tuple[LockedPackage, ...]:
        """Where a walk starts: local projects inside the lock's workspace (the root ``editable = "."`` too)."""
        return tuple(p for p in self.packages if p.kind in _LOCAL_KINDS and _inside(p.source[1]))

    def reachable(self, target: Target) -> tuple[LockedPackage, ...]:
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
        by_name: dict[str, list[LockedPackage]] = {}
        for package in self.packages:
            by_name.setdefault(package.name, []).append(package)
        order: dict[int, LockedPackage] = {}  # id(package) -> package, in the order reached
        seen: set[tuple[int, str]] = set()  # (id(package), part): "" for dependencies, "extra:x", "group:y"
        warned: set[str] = set()
        work: list[tuple[LockedPackage, str]] = []
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

    def pins_for(self, target: Target) -> list[RootRequirement]:
        """``name==version`` for every registry package :meth:`reachable` on ``target``, sorted by name."""
        return self.pins(self.reachable(target), target=target)

    def pins(self, packages: Iterable[LockedPackage], *, target: Target) -> list[RootRequirement]:
        """``name==version`` for every registry package of ``packages``, sorted by name.

        A package from git, a URL or a local archive is an :class:`InvalidSource` (it cannot be mirrored from an
        index), and so is one name pinned at two versions (conflicting extras or groups: one resolution cannot
        hold both). Local project directories are skipped.
        """
        pins: dict[str, LockedPackage] = {}
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
        return [
            RootRequirement(requirement=Requirement(f"{name}=={package.version}"), origin=self.label)
            for name, package in sorted(pins.items())
        ]

    def _applies(self, edge: LockedDependency, package: LockedPackage, target: Target, warned: set[str]) -> bool:
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

    def _resolve(
        self, edge: LockedDependency, package: LockedPackage, by_name: Mapping[str, list[LockedPackage]]
    ) -> LockedPackage:
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


def _lock_source(value: object, label: str, where: str) -> tuple[str, str]:
    if isinstance(value, dict):
        kinds = [k for k in value if k in _SOURCE_KINDS]
        if len(kinds) == 1 and isinstance(value[kinds[0]], str):
            return kinds[0], value[kinds[0]]
    raise InvalidSource(label, f"{where}: expected a table with one of {', '.join(_SOURCE_KINDS)}, got {value!r}")


def _lock_dependencies(value: object, label: str, where: str) -> tuple[LockedDependency, ...]:
    if not isinstance(value, list):
        raise InvalidSource(label, f"{where}: expected an array of tables, got {value!r}")
    edges = []
    for i, item in enumerate(value):
        key = f"{where}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidSource(label, f"{key}: expected a table with a name, got {item!r}")
        version = item.get("version")
        marker = item.get("marker")
        if version is not None and not isinstance(version, str):
            raise InvalidSource(label, f"{key}.version: expected a string, got {version!r}")
        if marker is not None and not isinstance(marker, str):
            raise InvalidSource(label, f"{key}.marker: expected a string, got {marker!r}")
        edges.append(
            LockedDependency(
                name=canonicalize_name(item["name"]),
                version=version,
                source=_lock_source(item["source"], label, f"{key}.source") if "source" in item else None,
                marker=marker,
                extras=tuple(canonicalize_name(e) for e in _strings(item.get("extra", []), label, f"{key}.extra")),
            )
        )
    return tuple(edges)


def _lock_tables(value: object, label: str, where: str) -> dict[str, tuple[LockedDependency, ...]]:
    if not isinstance(value, dict):
        raise InvalidSource(label, f"{where}: expected a table, got {value!r}")
    return {
        canonicalize_name(name): _lock_dependencies(edges, label, f"{where}.{name}") for name, edges in value.items()
    }


def parse_uv_lock(text: str, *, path: Path, label: str | None = None) -> UvLock:
    """Parse the uv.lock ``text`` of the file at ``path`` (shown as ``label``)."""
    shown = label if label is not None else str(path)
    data = _read_toml(text, shown)
    version = data.get("version")
    if version != 1:
        raise InvalidSource(shown, f"version: {version!r} is not a uv.lock version this tool reads; expected 1")
    requires_python = None
    if "requires-python" in data:
        raw = data["requires-python"]
        try:
            requires_python = SpecifierSet(raw) if isinstance(raw, str) else None
        except InvalidSpecifier:
            requires_python = None
        if requires_python is None:
            raise InvalidSource(shown, f"requires-python: {raw!r} is not a version specifier")
    raw_packages = data.get("package", [])
    if not isinstance(raw_packages, list):
        raise InvalidSource(shown, "package: expected an array of tables ([[package]])")
    packages = []
    for i, item in enumerate(raw_packages):
        where = f"package[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidSource(shown, f"{where}: expected a table with a name")
        package_version = item.get("version")
        if package_version is not None and not isinstance(package_version, str):
            raise InvalidSource(shown, f"{where}.version: expected a string, got {package_version!r}")
        if "source" not in item:
            raise InvalidSource(shown, f"{where}.source: missing")
        source = _lock_source(item["source"], shown, f"{where}.source")
        if source[0] == _REGISTRY and package_version is None:
            raise InvalidSource(shown, f"{where}.version: missing; a package from a registry has a version")
        packages.append(
            LockedPackage(
                name=canonicalize_name(item["name"]),
                version=package_version,
                source=source,
                dependencies=_lock_dependencies(item.get("dependencies", []), shown, f"{where}.dependencies"),
                optional_dependencies=_lock_tables(
                    item.get("optional-dependencies", {}), shown, f"{where}.optional-dependencies"
                ),
                dev_dependencies=_lock_tables(item.get("dev-dependencies", {}), shown, f"{where}.dev-dependencies"),
            )
        )
    return UvLock(path=path, label=shown, requires_python=requires_python, packages=tuple(packages))


def read_uv_lock(path: Path, *, root: Path) -> UvLock:
    """Read and parse the uv.lock at ``path``; it is shown relative to ``root``."""
    label = _shown(path, root)
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
    pins = lock.pins(reached, target=target)
    projects = []
    for package in (p for p in reached if p.kind in ("editable", "directory")):
        directory = (lock.path.parent / package.source[1]).absolute()
        found = _project_file(directory, root)
        if found is None:
            log.warning(
                "%s: local project %r is not at %s; its build system is not mirrored",
                lock.label,
                package.name,
                _shown(directory, root),
            )
            continue
        label, text = found
        build_system = (
            BuildSystem.legacy() if text is None else parse_build_system(_read_toml(text, label), label=label)
        )
        projects.append(Project(name=package.name, path=directory, build_system=build_system))
    return Inputs(requirements=tuple(pins), constraints=tuple(pins), projects=tuple(projects))


# -- all sources ------------------------------------------------------------------------------------------------


def collect_inputs(sources: Sources, target: Target, *, root: Path) -> Inputs:
    """Everything ``sources`` asks to mirror on ``target``: requirements, constraints and local projects.

    ``root`` is the workspace directory (the one holding mirror.toml); origins show paths relative to it.
    Sources are read in the order requirements, projects, uv-locks, packages.
    """
    parts = [read_requirements(path, root=root) for path in sources.requirements]
    parts += [read_project(project, root=root) for project in sources.projects]
    parts += [uv_lock_inputs(read_uv_lock(path, root=root), target, root=root) for path in sources.uv_locks]
    parts.append(package_inputs(sources.packages))
    return Inputs.combine(parts)
