"""Distribution filenames: what a wheel or sdist filename says (project, version, kind), and which names are safe.

Pure and dependency-light (only :mod:`packaging`): the lock reader, the index and the bundle check every filename,
thousands at a time, without loading an HTTP stack.
"""

from __future__ import annotations

import re
from typing import Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

FileKind = Literal["wheel", "sdist"]

_SPACE = re.compile(r"\s")  # the characters str.isspace() accepts
_SDIST_SUFFIXES = (".tar.gz", ".zip")


def classify(filename: str, project: str | None = None) -> tuple[str, Version, FileKind] | None:
    """(normalized project, version, kind) of a distribution filename, or ``None`` if it is not one.

    With ``project`` known, an sdist whose version holds a hyphen (``celery-3.1.26-1.tar.gz``, a post-release in
    legacy spelling) is read as pip reads it: the project's name first, the rest is the version.
    """
    if "/" in filename or "\\" in filename or filename.startswith("."):
        return None
    if not filename.isprintable() or _SPACE.search(filename):  # NUL, newlines, direction overrides, spaces
        return None
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return str(name), version, "wheel"
        try:
            name, version = parse_sdist_filename(filename)
        except InvalidSdistFilename:
            name = None  # type: ignore[assignment]
        if project is not None and (name is None or str(name) != project):
            stem = next((filename[: -len(s)] for s in _SDIST_SUFFIXES if filename.endswith(s)), None)
            if stem is not None and str(canonicalize_name(stem[: len(project)], validate=False)) == project:
                rest = stem[len(project) :]
                if rest.startswith("-"):
                    try:
                        return project, Version(rest[1:]), "sdist"
                    except InvalidVersion:
                        return None
        if name is None:
            return None
        return str(name), version, "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
