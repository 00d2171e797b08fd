"""What every source parses to: the root requirements, constraints and local projects of one target's lock
(:class:`Inputs`), the one error of the sources (:class:`InvalidSource`), and what the parsers share: a
requirement that must come from an index, a path as shown in messages, TOML read with the file named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror import _toml
from mirror._records import Fields, Shown
from mirror.errors import MirrorError
from mirror.spec import SPEC_FILENAME
from mirror.targets import Target

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
class LockedFiles:
    """The files a team's lock pins for one package, by sha256: each must be a file the upstream serves."""

    name: str  # normalized
    version: str
    origin: str  # the lock, as shown: "app/poetry.lock"
    files: tuple[tuple[str | None, str], ...]  # (filename, or None where the lock lists only hashes; sha256)
    index: str | None = None  # the index URL the lock says the package comes from (None: it does not say)


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexRoute:
    """A source saying which index one name comes from: a lock's registry, a project's [tool.uv.sources]."""

    name: str  # normalized
    url: str  # the index URL as the source writes it
    origin: str  # "uv.lock: acme-auth", "app/pyproject.toml: tool.uv.sources.acme-auth"


@dataclass(frozen=True, kw_only=True, slots=True)
class Inputs:
    """What one target's lock starts from."""

    requirements: tuple[RootRequirement, ...] = ()  # what to install, every origin kept
    constraints: tuple[RootRequirement, ...] = ()  # from -c files and locks' pins
    projects: tuple[Project, ...] = ()  # local projects, for the build closure (their build_system)
    locked_files: tuple[LockedFiles, ...] = ()  # what locks say each pinned file's sha256 is
    routes: tuple[IndexRoute, ...] = ()  # names a project's own configuration takes from a named index

    def index_routes(self) -> list[IndexRoute]:
        """Every name a source ties to an index: :attr:`routes`, then each locked package whose lock names one."""
        return [
            *self.routes,
            *(
                IndexRoute(name=p.name, url=p.index, origin=f"{p.origin}: {p.name}")
                for p in self.locked_files
                if p.index is not None
            ),
        ]

    @classmethod
    def combine(cls, parts: Iterable[Inputs]) -> Inputs:
        """All ``parts`` in order, without repeating a requirement from the same origin or a project's path."""
        requirements: dict[tuple[str, str], RootRequirement] = {}
        constraints: dict[tuple[str, str], RootRequirement] = {}
        projects: dict[Path, Project] = {}
        locked: list[LockedFiles] = []
        routes: dict[tuple[str, str], IndexRoute] = {}
        for part in parts:
            for route in part.routes:
                routes.setdefault((route.name, route.url), route)
            for root in part.requirements:
                requirements.setdefault((root.line, root.origin), root)
            for root in part.constraints:
                constraints.setdefault((root.line, root.origin), root)
            for project in part.projects:
                projects.setdefault(project.path, project)
            locked += part.locked_files
        return cls(
            requirements=tuple(requirements.values()),
            constraints=tuple(constraints.values()),
            projects=tuple(projects.values()),
            locked_files=tuple(locked),
            routes=tuple(routes.values()),
        )

    @classmethod
    def pinned(cls, locked: Iterable[LockedFiles], projects: Iterable[Project] = ()) -> Inputs:
        """Exactly the ``locked`` packages: each ``name==version`` is a requirement and a constraint."""
        locked = sorted(locked, key=lambda package: package.name)
        pins = tuple(
            RootRequirement(requirement=Requirement(f"{package.name}=={package.version}"), origin=package.origin)
            for package in locked
        )
        return cls(requirements=pins, constraints=pins, projects=tuple(projects), locked_files=tuple(locked))

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

VCS_OR_URL_RE = re.compile(r"^(?:(?:git|hg|svn|bzr)\+|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)
ARCHIVE_RE = re.compile(r"\.(?:whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)$", re.IGNORECASE)


def location_advice(location: str) -> str:
    """The advice for a requirement that names a location (URL, VCS, path) instead of a released version."""
    location = location.split(";")[0].split("#")[0].strip()
    if ARCHIVE_RE.search(location):
        return RELEASE_ADVICE
    if location.lower().startswith("file:") or not VCS_OR_URL_RE.match(location):
        return LOCAL_ADVICE
    return RELEASE_ADVICE


def _looks_like_location(text: str) -> bool:
    text = text.split(";")[0].strip()
    return bool(
        VCS_OR_URL_RE.match(text)
        or text.lower().startswith("file:")
        or text.startswith((".", "/", "~"))
        or "/" in text
        or "\\" in text
        or ARCHIVE_RE.search(text)
    )


def not_mirrorable(text: str, advice: str) -> str:
    return f"{text!r} cannot be mirrored from an index; {advice}"


def parse_requirement(text: str, where: str) -> Requirement:
    """Parse one PEP 508 string that must come from an index; :class:`InvalidSource` at ``where`` otherwise."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        if _looks_like_location(text):
            raise InvalidSource(where, not_mirrorable(text, location_advice(text))) from None
        reason = str(exc).splitlines()[0] if str(exc) else "invalid syntax"
        raise InvalidSource(where, f"{text!r} is not a valid requirement: {reason}") from None
    if requirement.url is not None:
        raise InvalidSource(where, not_mirrorable(text, location_advice(requirement.url)))
    if ARCHIVE_RE.search(requirement.name):
        raise InvalidSource(where, not_mirrorable(text, RELEASE_ADVICE))
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


def shown(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (POSIX separators), absolute otherwise."""
    absolute = path if path.is_absolute() else root / path
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(absolute)


def read_text(path: Path, label: str) -> str:
    """A source file's text; :class:`InvalidSource` naming it when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSource(label, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSource(label, f"cannot read: {exc}") from None


def sha256_of(value: object) -> str | None:
    """The hex digest of a lock's ``"sha256:<hex>"`` hash string; ``None`` for another algorithm or no hash."""
    if isinstance(value, str) and value.startswith("sha256:") and len(value) == 71:
        return value[7:].lower()
    return None


def marker_holds(marker: str | None, target: Target, *, label: str, where: str) -> bool:
    """Whether a lock's PEP 508 ``marker`` holds on ``target``; an invalid one is an :class:`InvalidSource`."""
    try:
        return target.evaluate(marker)
    except MirrorError as exc:
        raise InvalidSource(label, f"{where}: {exc}") from None


def read_toml(text: str, label: str) -> dict[str, object]:
    try:
        data: dict[str, object] = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise InvalidSource(label, f"not valid TOML: {exc}") from None
    return data


def fields(label: str, *, shown: Shown = "type repr") -> Fields:
    """Validating accessors for the file shown as ``label``: each error is ``InvalidSource(label, "key: …")``."""
    return Fields(lambda where, message: InvalidSource(label, f"{where}: {message}"), shown=shown)


def table(data: Mapping[str, object], key: str, label: str, where: str) -> Mapping[str, object]:
    """``data[key]``, a table (an empty one when absent)."""
    return fields(label).table(data.get(key, {}), where)


def strings(value: object, label: str, where: str) -> list[str]:
    """``value``, an array of strings."""
    return fields(label).strings(value, where, shown="repr")
