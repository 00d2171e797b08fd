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

from pathlib import Path

from mirror.sources.inputs import (
    LEGACY_BACKEND,
    LEGACY_BUILD_REQUIRES,
    BuildSystem,
    Inputs,
    InvalidSource,
    Project,
    RootRequirement,
    package_inputs,
    parse_requirement,
    requirement_line,
)
from mirror.sources.pyproject import parse_build_system, parse_pyproject, read_project
from mirror.sources.requirements import parse_requirements, read_requirements
from mirror.sources.uvlock import UvLock, parse_uv_lock, read_uv_lock, uv_lock_inputs
from mirror.spec import Sources
from mirror.targets import Target

__all__ = [
    "LEGACY_BACKEND",
    "LEGACY_BUILD_REQUIRES",
    "BuildSystem",
    "Inputs",
    "InvalidSource",
    "Project",
    "RootRequirement",
    "UvLock",
    "collect_inputs",
    "package_inputs",
    "parse_build_system",
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
    Sources are read in the order requirements, projects, uv-locks, packages.
    """
    parts = [read_requirements(path, root=root) for path in sources.requirements]
    parts += [read_project(project, root=root) for project in sources.projects]
    parts += [uv_lock_inputs(read_uv_lock(path, root=root), target, root=root) for path in sources.uv_locks]
    parts.append(package_inputs(sources.packages))
    return Inputs.combine(parts)
