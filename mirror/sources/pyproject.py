"""Projects: ``pyproject.toml`` (:func:`parse_pyproject` / :func:`read_project`) — ``[project]`` dependencies, the
chosen extras and PEP 735 dependency groups, and the ``[build-system]`` (or pip's legacy default) that the build
closure starts from; a legacy project with only setup.py or setup.cfg too."""

from __future__ import annotations

import ast
import configparser
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mirror.sources.inputs import (
    LOCAL_ADVICE,
    RELEASE_ADVICE,
    BuildSystem,
    IndexRoute,
    Inputs,
    InvalidSource,
    Project,
    RootRequirement,
    parse_requirement,
    read_toml,
    shown,
    strings,
    table,
)
from mirror.spec import ProjectSource

log = logging.getLogger(__name__)

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
    return RootRequirement(requirement=requirement, origin=origin)


def _requirements(items: Sequence[str], label: str, key: str, uv_sources: Mapping[str, str]) -> list[RootRequirement]:
    """The dependency strings at ``key`` (an array) with origin ``label [key]``."""
    found = (
        _requirement_item(text, f"{label}: {key}[{i}]", f"{label} [{key}]", uv_sources) for i, text in enumerate(items)
    )
    return [root for root in found if root is not None]


def _uv_sources(data: Mapping[str, object], label: str) -> dict[str, str]:
    """Normalized name -> the kind of its ``[tool.uv.sources]`` entry: git, url, path, workspace or index."""
    tool = table(data, "tool", label, "tool")
    uv = table(tool, "uv", label, "tool.uv")
    sources = table(uv, "sources", label, "tool.uv.sources")
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


def _uv_index_routes(data: Mapping[str, object], label: str) -> tuple[IndexRoute, ...]:
    """The names ``[tool.uv.sources]`` takes from a named ``[[tool.uv.index]]``, with that index's URL: the mirror
    takes them from the spec's index at the same URL (and refuses an index the spec does not declare)."""
    tool_uv = table(table(data, "tool", label, "tool"), "uv", label, "tool.uv")
    urls: dict[str, str] = {}
    raw_indexes = tool_uv.get("index", [])
    for item in raw_indexes if isinstance(raw_indexes, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("url"), str):
            urls[item["name"]] = item["url"]
    routes = []
    for name, value in table(tool_uv, "sources", label, "tool.uv.sources").items():
        for entry in value if isinstance(value, list) else [value]:
            index = entry.get("index") if isinstance(entry, dict) else None
            if not isinstance(index, str):
                continue
            if index not in urls:  # declared in a uv.toml, perhaps: mirror.toml's [[index]] routing decides
                log.warning(
                    "%s: tool.uv.sources.%s: index %r is not a [[tool.uv.index]] here; %s comes from the index"
                    " mirror.toml routes it to",
                    label,
                    name,
                    index,
                    name,
                )
                continue
            origin = f"{label}: tool.uv.sources.{name}"
            routes.append(IndexRoute(name=str(canonicalize_name(name)), url=urls[index], origin=origin))
    return tuple(routes)


def parse_build_system(data: Mapping[str, object], *, label: str) -> BuildSystem:
    """The ``[build-system]`` of a parsed pyproject.toml document; pip's legacy default when it is absent."""
    if "build-system" not in data:
        return BuildSystem.legacy()
    build = table(data, "build-system", label, "build-system")
    if "requires" not in build:
        raise InvalidSource(
            label, 'build-system.requires: missing; PEP 518 requires it (e.g. requires = ["setuptools>=61"])'
        )
    requires = strings(build["requires"], label, "build-system.requires")
    backend = build.get("build-backend")
    if backend is not None and (not isinstance(backend, str) or not backend.strip()):
        raise InvalidSource(label, f"build-system.build-backend: expected a non-empty string, got {backend!r}")
    return BuildSystem(
        requires=tuple(parse_requirement(r, f"{label}: build-system.requires[{i}]") for i, r in enumerate(requires)),
        backend=backend.strip() if backend is not None else None,
        backend_path=tuple(strings(build.get("backend-path", []), label, "build-system.backend-path")),
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
    data = read_toml(text, shown)
    directory = path.parent.absolute()
    build_system = parse_build_system(data, label=shown)
    uv_sources = _uv_sources(data, shown)
    tool_uv = table(table(data, "tool", shown, "tool"), "uv", shown, "tool.uv")
    uv_dev = strings(tool_uv.get("dev-dependencies", []), shown, "tool.uv.dev-dependencies")

    if "project" in data:
        project = table(data, "project", shown, "project")
        name = project.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidSource(shown, f"project.name: expected the project's name, got {name!r}")
        dynamic = strings(project.get("dynamic", []), shown, "project.dynamic")
    else:
        project = {}
        poetry = table(table(data, "tool", shown, "tool"), "poetry", shown, "tool.poetry").get("name")
        name = poetry if isinstance(poetry, str) and poetry.strip() else fallback_name
        if name is None:
            raise InvalidSource(
                shown, "project: no [project] table and no name in setup.cfg or setup.py; add [project] with a name"
            )
        dynamic = ["dependencies", "optional-dependencies"]
    name = canonicalize_name(name.strip())

    requirements: list[RootRequirement] = []
    optional_dynamic = "optional-dependencies" in dynamic
    optional = table(project, "optional-dependencies", shown, "project.optional-dependencies")
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
        dependencies = strings(project.get("dependencies", []), shown, "project.dependencies")
        requirements += _requirements(dependencies, shown, "project.dependencies", uv_sources)
        for extra in dict.fromkeys(chosen_extras):
            written = known_extras[extra]
            key = f"project.optional-dependencies.{written}"
            items = strings(optional[written], shown, key)
            requirements += _requirements(items, shown, key, uv_sources)

    requirements += _dependency_groups(data, [canonicalize_name(g) for g in groups], name, shown, uv_sources, uv_dev)
    return Inputs(
        requirements=tuple(requirements),
        projects=(
            Project(name=name, path=directory, build_system=build_system, dynamic_dependencies=dynamic_dependencies),
        ),
        routes=_uv_index_routes(data, shown),
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
    raw = table(data, "dependency-groups", label, "dependency-groups")
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


def project_file(directory: Path, root: Path) -> tuple[str, str | None] | None:
    """(label, pyproject.toml text) of the project in ``directory``; text ``None`` for a legacy project (setup.py
    alone: no [project], no [build-system]); ``None`` when it is not a Python project."""
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        label = shown(pyproject, root)
        try:
            return label, pyproject.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSource(label, f"cannot read: {exc}") from None
    if (directory / "setup.py").is_file():
        return shown(directory / "setup.py", root), None
    return None


def project_build_system(directory: Path, root: Path) -> BuildSystem | None:
    """The build system of the project in ``directory`` (pip's legacy default for setup.py alone); ``None`` when
    it is not a Python project."""
    found = project_file(directory, root)
    if found is None:
        return None
    label, text = found
    return BuildSystem.legacy() if text is None else parse_build_system(read_toml(text, label), label=label)


def read_project(source: ProjectSource, *, root: Path) -> Inputs:
    """Read the project at ``source.path``: its pyproject.toml, or a legacy setup.py alone (:func:`parse_pyproject`)."""
    directory = source.path if source.path.is_absolute() else root / source.path
    pyproject = directory / "pyproject.toml"
    found = project_file(directory, root)
    if found is None:
        raise InvalidSource(shown(pyproject, root), "no such file (and no setup.py): not a Python project")
    label, text = found
    return parse_pyproject(
        text or "",
        path=pyproject,
        extras=source.extras,
        groups=source.groups,
        label=label,
        fallback_name=_legacy_name(directory),
    )


def project_beside(lock: Path, *, root: Path) -> tuple[Project, ...]:
    """The project in a lock file's directory, whose own build the lock's tool makes (``poetry install`` and ``pdm
    sync`` build the root project): its build system joins the build closure. None when there is no Python project
    there, or it says it is not a package (Poetry's ``package-mode = false``, PDM's ``distribution = false``)."""
    directory = lock.parent
    found = project_file(directory, root)
    if found is None:
        return ()
    label, text = found
    if text is not None:
        data = read_toml(text, label)
        tool = table(data, "tool", label, "tool")
        if table(tool, "poetry", label, "tool.poetry").get("package-mode") is False:
            return ()
        if table(tool, "pdm", label, "tool.pdm").get("distribution") is False:
            return ()
    return read_project(ProjectSource(path=directory), root=root).projects
