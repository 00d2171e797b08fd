"""Wheels built here from sdists: build them for the targets this host can build for, and remember them.

For each sdist a target uses, when this host has a CPython of the target's platform and version
(:mod:`mirror.interpreters`), the wheel is built with isolation fed **only from the wheelhouse**
(:mod:`mirror.wheelbuild`) — the first proof that the lock's build closure is complete. A wheel that fits the
target is stored next to the sdist and recorded in ``wheelhouse/built-wheels.json``; the lockfiles then list it
(``mirror lock`` applies the same record, so re-locking keeps it), and ``--require-hashes`` accepts it.

A build that fails because a build requirement is not in the wheelhouse is an error: the lock is incomplete.
Any other failure (a missing compiler or system library) is reported: that package compiles on the target.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mirror import _atomic
from mirror._filenames import classify
from mirror._records import fields_dict
from mirror._verified import sha256_file
from mirror.errors import MirrorError
from mirror.manifest import FileEntry, Manifest, TargetEntry
from mirror.progress import NullProgress, Progress

if TYPE_CHECKING:  # building is imported when a build happens: mirror index reads the registry only
    from mirror.interpreters import Interpreter
    from mirror.wheelbuild import BuildResult

log = logging.getLogger(__name__)

REGISTRY_VERSION = 1

Builder = Callable[..., "BuildResult"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BuiltWheel:
    """One wheel built here: from which sdist (by content), for which target."""

    target: str
    sdist: str
    sdist_sha256: str
    wheel: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, object]:
        return fields_dict(self)


class IncompleteBuildClosure(MirrorError):
    """A wheel could not be built here because one of its build requirements is not in the wheelhouse: the
    lock's build closure is incomplete."""


def raise_if_incomplete(outcomes: Sequence[BuildOutcome]) -> None:
    """:class:`IncompleteBuildClosure` naming the first build that missed a requirement (and how many more)."""
    incomplete = [o for o in outcomes if o.status == "incomplete"]
    if incomplete:
        more = f" (and {len(incomplete) - 1} more)" if len(incomplete) > 1 else ""
        raise IncompleteBuildClosure(f"the lock's build closure is incomplete: {incomplete[0].detail}{more}")


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOutcome:
    """What happened to one sdist for one target."""

    target: str
    sdist: str
    status: str  # "built", "reused", "failed", "incomplete" (a build requirement is missing), "skipped"
    detail: str = ""


class Registry:
    """The record of wheels built here (``built-wheels.json`` in the wheelhouse: :attr:`Layout.built_wheels`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wheels: list[BuiltWheel] = []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == REGISTRY_VERSION:
                self.wheels = [BuiltWheel(**item) for item in data["wheels"]]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            log.warning("%s is damaged; wheels built here will be built again", self.path)

    def for_target(self, target: str, sdist: str, sdist_sha256: str) -> BuiltWheel | None:
        for wheel in self.wheels:
            if (wheel.target, wheel.sdist, wheel.sdist_sha256) == (target, sdist, sdist_sha256):
                return wheel
        return None

    def from_sdist(self, sdist_sha256: str) -> list[BuiltWheel]:
        return [w for w in self.wheels if w.sdist_sha256 == sdist_sha256]

    def add(self, wheel: BuiltWheel) -> None:
        self.wheels = [w for w in self.wheels if (w.target, w.sdist) != (wheel.target, wheel.sdist)] + [wheel]

    def save(self) -> None:
        wheels = sorted(self.wheels, key=lambda w: (w.target, w.sdist))
        payload = {"version": REGISTRY_VERSION, "wheels": [w.to_dict() for w in wheels]}
        _atomic.write_text(self.path, json.dumps(payload, indent=1) + "\n")


def _entry_for(wheel: BuiltWheel, sdist: FileEntry) -> FileEntry:
    parsed = classify(wheel.wheel)
    assert parsed is not None
    return FileEntry(
        filename=wheel.wheel,
        project=parsed[0],
        version=str(parsed[1]),
        kind="wheel",
        url=None,
        sha256=wheel.sha256,
        size=wheel.size,
        requires_python=sdist.requires_python,
        built_from=wheel.sdist,
    )


def with_built_wheels(manifest: Manifest, registry: Registry, files_dir: Path) -> Manifest:
    """The manifest with every recorded wheel that is still in the wheelhouse, for the targets it was built for."""
    for entry in manifest.targets:
        for name in entry.filenames():
            sdist = manifest.files[name]
            if sdist.kind != "sdist":
                continue
            wheel = registry.for_target(entry.name, name, sdist.sha256)
            if wheel is not None and _intact(files_dir / sdist.project / wheel.wheel, wheel):
                manifest = manifest.with_built_wheel(entry.name, name, _entry_for(wheel, sdist))
    return manifest


def _intact(path: Path, wheel: BuiltWheel) -> bool:
    try:
        return path.stat().st_size == wheel.size
    except FileNotFoundError:
        return False


def _sdists(entry: TargetEntry, manifest: Manifest) -> list[FileEntry]:
    return [manifest.files[n] for n in entry.filenames() if manifest.files[n].kind == "sdist"]


def build_missing(
    manifest: Manifest,
    files_dir: Path,
    registry: Registry,
    *,
    interpreters: Sequence[Interpreter],
    targets: Sequence[str] = (),
    builder: Builder | None = None,
    progress: Progress | None = None,
) -> tuple[Manifest, list[BuildOutcome]]:
    """Build a wheel for every sdist of the chosen targets that this host can build for and has not yet built.

    ``builder`` defaults to :func:`mirror.wheelbuild.build_wheel`.
    """
    from mirror.interpreters import interpreter_for
    from mirror.wheelbuild import build_wheel

    builder = builder or build_wheel
    progress = progress or NullProgress()
    outcomes: list[BuildOutcome] = []
    with tempfile.TemporaryDirectory(prefix="mirror-findlinks-") as tmp:
        flat = Path(tmp)
        _link_all(files_dir, flat)
        chosen = manifest.select(targets)
        # targets this host can build for go first, so a pure wheel built for one also serves the others
        ordered = sorted(chosen, key=lambda e: interpreter_for(e.target, interpreters) is None)
        for entry in ordered:
            interpreter = interpreter_for(entry.target, interpreters)
            for sdist in _sdists(entry, manifest):
                reused = _reuse(entry, sdist, files_dir, registry)
                if reused is not None:
                    outcomes.append(reused)
                elif interpreter is None:
                    reason = f"no local CPython {entry.target.python} for {entry.target.platform}"
                    outcomes.append(
                        BuildOutcome(target=entry.name, sdist=sdist.filename, status="skipped", detail=reason)
                    )
                else:
                    outcomes.append(_build_one(entry, sdist, files_dir, flat, registry, interpreter, builder, progress))
    registry.save()
    return with_built_wheels(manifest, registry, files_dir), outcomes


def _reuse(entry: TargetEntry, sdist: FileEntry, files_dir: Path, registry: Registry) -> BuildOutcome | None:
    known = registry.for_target(entry.name, sdist.filename, sdist.sha256)
    if known is not None and _intact(files_dir / sdist.project / known.wheel, known):
        return BuildOutcome(target=entry.name, sdist=sdist.filename, status="reused", detail=known.wheel)
    # a wheel already built from the same sdist for another target serves this one too if its tags fit
    for other in registry.from_sdist(sdist.sha256):
        if entry.target.accepts(other.wheel) and _intact(files_dir / sdist.project / other.wheel, other):
            registry.add(replace(other, target=entry.name))
            return BuildOutcome(target=entry.name, sdist=sdist.filename, status="reused", detail=other.wheel)
    return None


def _build_one(
    entry: TargetEntry,
    sdist: FileEntry,
    files_dir: Path,
    flat: Path,
    registry: Registry,
    interpreter: Interpreter,
    builder: Builder,
    progress: Progress,
) -> BuildOutcome:
    from mirror.wheelbuild import WheelBuildError

    progress.message(f"{entry.name}: building a wheel from {sdist.filename} with {interpreter.path}")
    try:
        result = builder(
            files_dir / sdist.relpath,
            python=interpreter.path,
            find_links=flat,
            out_dir=files_dir / sdist.project,
            label=entry.name,
        )
    except WheelBuildError as exc:
        status = "incomplete" if exc.missing else "failed"
        return BuildOutcome(target=entry.name, sdist=sdist.filename, status=status, detail=str(exc))
    if not entry.target.accepts(result.wheel.name):
        result.wheel.unlink(missing_ok=True)
        detail = f"{result.wheel.name} does not fit {entry.target.describe()}"
        return BuildOutcome(target=entry.name, sdist=sdist.filename, status="failed", detail=detail)
    registry.add(
        BuiltWheel(
            target=entry.name,
            sdist=sdist.filename,
            sdist_sha256=sdist.sha256,
            wheel=result.wheel.name,
            sha256=result.sha256 or sha256_file(result.wheel),
            size=result.wheel.stat().st_size,
        )
    )
    _link(result.wheel, flat)
    return BuildOutcome(target=entry.name, sdist=sdist.filename, status="built", detail=result.wheel.name)


def _link_all(files_dir: Path, flat: Path) -> None:
    if files_dir.is_dir():
        for path in files_dir.glob("*/*"):
            if path.is_file() and not path.name.startswith(".") and classify(path.name) is not None:
                _link(path, flat)


def _link(path: Path, flat: Path) -> None:
    link = flat / path.name
    if not link.exists():
        os.symlink(path.resolve(), link)
