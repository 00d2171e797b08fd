"""Sources: turn ``[sources]`` of mirror.toml into the root requirements of one target's lock.

Each kind of source is one module with a pure parser (text in, frozen dataclasses out) and a thin file-reading
edge, and all of them give the same :class:`Inputs`:

* **requirements files** (pip's format, :mod:`.requirements`), following ``-r`` and ``-c`` includes;
* **projects** (``pyproject.toml``, or a legacy ``setup.py``; :mod:`.pyproject`): ``[project]`` dependencies, the
  chosen extras and PEP 735 dependency groups, and the ``[build-system]`` the build closure starts from;
* **locks a team already has**, whose pins are kept exactly for each target (markers evaluated for the target,
  the chosen groups only, the project beside the lock built): ``uv.lock`` (:mod:`.uvlock`), ``poetry.lock``
  (:mod:`.poetrylock`), ``pdm.lock`` (:mod:`.pdmlock`), ``Pipfile.lock`` (:mod:`.pipfilelock`) and PEP 751
  ``pylock.toml`` (:mod:`.pylock`). Their files' sha256 come along (:class:`LockedFiles`): the lock stage
  checks each against the upstream;
* **packages**: the plain PEP 508 strings of ``sources.packages``.

:func:`collect_inputs` is the one call the lock stage makes per target. Every problem is an
:class:`InvalidSource` naming the file and the line or key, in one line::

    requirements.txt:4: '-e .' cannot be mirrored from an index; list the project under [sources] projects
    app/pyproject.toml: project.dependencies[2]: 'x>=>' is not a valid requirement: Expected ...
    app/poetry.lock: no dependency group 'docs' in the lock; known: dev, main
"""

from __future__ import annotations

from pathlib import Path

from mirror.sources.inputs import (
    LEGACY_BACKEND,
    LEGACY_BUILD_REQUIRES,
    BuildSystem,
    IndexRoute,
    Inputs,
    InvalidSource,
    LockedFiles,
    Project,
    RootRequirement,
    package_inputs,
    parse_requirement,
    read_text,
    requirement_line,
    shown,
)
from mirror.sources.pdmlock import PdmLock, parse_pdm_lock
from mirror.sources.pipfilelock import PipfileLock, parse_pipfile_lock
from mirror.sources.poetrylock import PoetryLock, parse_poetry_lock
from mirror.sources.pylock import locked as locked_pylock
from mirror.sources.pylock import parse_pylock
from mirror.sources.pyproject import parse_build_system, parse_pyproject, project_beside, read_project
from mirror.sources.requirements import parse_requirements, read_requirements
from mirror.sources.uvlock import UvLock, parse_uv_lock, read_uv_lock, uv_lock_inputs
from mirror.spec import LockSource, Sources
from mirror.targets import Target

__all__ = [
    "LEGACY_BACKEND",
    "LEGACY_BUILD_REQUIRES",
    "BuildSystem",
    "IndexRoute",
    "Inputs",
    "InvalidSource",
    "LockedFiles",
    "Project",
    "RootRequirement",
    "UvLock",
    "collect_inputs",
    "lock_inputs",
    "lock_inputs_of_text",
    "package_inputs",
    "parse_build_system",
    "parse_pdm_lock",
    "parse_pipfile_lock",
    "parse_poetry_lock",
    "parse_pylock",
    "parse_pyproject",
    "parse_requirement",
    "parse_requirements",
    "parse_uv_lock",
    "read_project",
    "read_requirements",
    "read_uv_lock",
    "requirement_line",
    "uv_lock_inputs",
]


def collect_inputs(sources: Sources, target: Target, *, root: Path) -> Inputs:
    """Everything ``sources`` asks to mirror on ``target``: requirements, constraints and local projects.

    ``root`` is the workspace directory (the one holding mirror.toml); origins show paths relative to it.
    Sources are read in the order requirements, projects, locks, packages.
    """
    parts = [read_requirements(path, root=root) for path in sources.requirements]
    parts += [read_project(project, root=root) for project in sources.projects]
    parts += [lock_inputs(lock, target, root=root) for lock in sources.locks]
    parts.append(package_inputs(sources.packages))
    return Inputs.combine(parts)


def lock_inputs(lock: LockSource, target: Target, *, root: Path) -> Inputs:
    """One lock's exact pins for ``target`` (its groups or categories chosen), and the project it builds."""
    if lock.format == "uv.lock":
        return uv_lock_inputs(read_uv_lock(lock.path, root=root), target, root=root)
    label = shown(lock.path, root)
    pins = lock_inputs_of_text(read_text(lock.path, label), lock, target, label=label)
    return Inputs.pinned(pins.locked_files, project_beside(lock.path, root=root))


def lock_inputs_of_text(text: str, lock: LockSource, target: Target, *, label: str) -> Inputs:
    """The pins of the lock ``text`` (the file ``lock`` names, shown as ``label``) for ``target``; pure: no file is
    read (a uv.lock's local projects are not looked up either)."""
    if lock.format == "uv.lock":
        parsed_uv = parse_uv_lock(text, path=lock.path, label=label)
        return Inputs.pinned(parsed_uv.locked_files(parsed_uv.reachable(target), target=target))
    if lock.format == "pylock.toml":
        pylock = parse_pylock(text, label=label)
        return Inputs.pinned(locked_pylock(pylock, target, label=label, groups=lock.groups, extras=lock.extras))
    parsed: PoetryLock | PdmLock | PipfileLock
    if lock.format == "poetry.lock":
        parsed = parse_poetry_lock(text, path=lock.path, label=label)
    elif lock.format == "pdm.lock":
        parsed = parse_pdm_lock(text, path=lock.path, label=label)
    else:
        parsed = parse_pipfile_lock(text, path=lock.path, label=label)
    return Inputs.pinned(parsed.locked(target, lock.groups))
