"""Wheels built here from sdists: build them where a target has no wheel, and offer only those that load there.

A wheel is built for a target only where the lock chose the sdist because no upstream wheel fits that target
(``policy.sdists = "always"`` keeps sdists, it builds nothing more), and not for a package ``policy.no-binary``
leaves to the target. When this host has a CPython of the target's platform and version
(:mod:`mirror.interpreters`), the wheel is built with isolation fed **only from the wheelhouse**
(:mod:`mirror.wheelbuild`) — the first proof that the lock's build closure is complete. A Linux wheel then goes
through auditwheel (:mod:`mirror.wheelaudit`): it gets the manylinux tag it truly satisfies, with the libraries it
links copied in. It is stored next to the sdist and recorded in ``wheelhouse/built-wheels.json``.

A recorded wheel is **offered** to a target — listed in its lock, hashed, in its view of the index — only when its
tag is one the target accepts and says what it needs (:func:`unfit_reason`): a wheel needing glibc 2.34 is never
offered to a glibc 2.28 target, and a ``linux_<arch>`` wheel auditwheel could not retag is offered to none. Where
it is not offered, the sdist stays and the compile report names the package for that target to build.

A build that fails because a build requirement is not in the wheelhouse is an error: the lock is incomplete.
Any other failure (a missing compiler or system library) is reported: that package compiles on the target.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import parse_wheel_filename

from mirror import _atomic
from mirror._filenames import classify
from mirror._records import fields_dict
from mirror._verified import sha256_file
from mirror.errors import MirrorError
from mirror.manifest import FileEntry, Manifest, TargetEntry
from mirror.progress import NullProgress, Progress
from mirror.targets import Target
from mirror.wheelaudit import needs_audit

if TYPE_CHECKING:  # building is imported when a build happens: mirror index reads the registry only
    from mirror.interpreters import Interpreter
    from mirror.wheelaudit import Audit
    from mirror.wheelbuild import BuildResult

log = logging.getLogger(__name__)

REGISTRY_VERSION = 2  # 2: every Linux wheel audited (version 1 recorded linux_<arch> wheels: built again)

Builder = Callable[..., "BuildResult"]
Auditor = Callable[[Path], "Audit"]


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
    # "built" and "reused": offered to the target; left to the target: "unfit" (built, but it does not load there),
    # "skipped" (no local CPython for it), "failed", "policy" (policy.no-binary); "incomplete": a build requirement
    # is missing from the lock
    status: str
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


def unfit_reason(wheel: str, target: Target) -> str | None:
    """Why a wheel built here is not offered to ``target`` (None: it is). Its tag must be one the target accepts,
    and a Linux wheel's must be the manylinux/musllinux tag auditwheel found, never a bare ``linux_<arch>``."""
    if needs_audit(wheel):
        return f"{wheel} has no manylinux tag: what it needs from the target's glibc is unknown"
    if target.accepts(wheel):
        return None
    glibc = [tag.platform for tag in parse_wheel_filename(wheel)[3] if tag.platform.startswith("manylinux_")]
    needs = min((int(p.split("_")[1]), int(p.split("_")[2])) for p in glibc) if glibc else None
    if needs is not None and target.glibc is not None and needs > target.glibc:
        floor = ".".join(map(str, target.glibc))
        return f"{wheel} needs glibc {needs[0]}.{needs[1]}; {target.name} runs glibc {floor}"
    return f"{wheel} does not fit {target.describe()}"


def unfit_wheels(manifest: Manifest, registry: Registry) -> dict[str, dict[str, str]]:
    """Per target, the sdists whose wheel built here is not offered to it, and why (for the compile report)."""
    out: dict[str, dict[str, str]] = {}
    for entry in manifest.targets:
        for name in entry.filenames():
            sdist = manifest.files[name]
            wheel = registry.for_target(entry.name, name, sdist.sha256) if sdist.kind == "sdist" else None
            reason = unfit_reason(wheel.wheel, entry.target) if wheel is not None else None
            if reason is not None:
                out.setdefault(entry.name, {})[name] = reason
    return out


def with_built_wheels(
    manifest: Manifest,
    registry: Registry,
    files_dir: Path,
    *,
    source_only: Callable[[str], bool] = lambda project: False,
) -> Manifest:
    """The manifest with every recorded wheel that is still in the wheelhouse, for the targets it was built for
    and loads on (:func:`unfit_reason`), but for the projects ``source_only`` (policy.no-binary) leaves to them."""
    for entry in manifest.targets:
        for name in entry.filenames():
            sdist = manifest.files[name]
            if sdist.kind != "sdist" or source_only(sdist.project):
                continue
            wheel = registry.for_target(entry.name, name, sdist.sha256)
            if (
                wheel is not None
                and unfit_reason(wheel.wheel, entry.target) is None
                and _intact(files_dir / sdist.project / wheel.wheel, wheel)
            ):
                manifest = manifest.with_built_wheel(entry.name, name, _entry_for(wheel, sdist))
    return manifest


def _intact(path: Path, wheel: BuiltWheel) -> bool:
    try:
        return path.stat().st_size == wheel.size
    except FileNotFoundError:
        return False


def to_build(entry: TargetEntry, manifest: Manifest) -> list[FileEntry]:
    """The sdists ``entry``'s target has no upstream wheel for: the ones a wheel is built from here."""
    found: dict[str, FileEntry] = {}
    for package in entry.packages:
        files = [manifest.files[f] for f in package.files]
        if any(f.kind == "wheel" and f.built_from is None for f in files):
            continue  # an upstream wheel fits: nothing to build (policy.sdists = "always" keeps the sdist only)
        found.update((f.filename, f) for f in files if f.kind == "sdist")
    return [found[name] for name in sorted(found)]


def build_missing(
    manifest: Manifest,
    files_dir: Path,
    registry: Registry,
    *,
    interpreters: Sequence[Interpreter],
    targets: Sequence[str] = (),
    builder: Builder | None = None,
    auditor: Auditor | None = None,
    source_only: Callable[[str], bool] = lambda project: False,
    compiler: Callable[[Target], Mapping[str, str]] | None = None,
    progress: Progress | None = None,
) -> tuple[Manifest, list[BuildOutcome]]:
    """Build a wheel for every sdist a chosen target has no upstream wheel for, where this host can build for that
    target and has not built it yet; ``source_only(project)`` (policy.no-binary) leaves a project to the targets;
    ``compiler(target)`` gives the C/C++ toolchain's settings for a target (policy.compiler = "zig").

    ``builder`` defaults to :func:`mirror.wheelbuild.build_wheel`, ``auditor`` to
    :func:`mirror.wheelaudit.audit_wheel`.
    """
    from mirror.interpreters import interpreter_for
    from mirror.wheelaudit import audit_wheel
    from mirror.wheelbuild import build_wheel

    builder = builder or build_wheel
    auditor = auditor or audit_wheel
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
            for sdist in to_build(entry, manifest):
                if source_only(sdist.project):
                    detail = f"policy.no-binary: {entry.name} builds {sdist.filename} itself"
                    outcome = BuildOutcome(target=entry.name, sdist=sdist.filename, status="policy", detail=detail)
                    outcomes.append(outcome)
                elif (reused := _reuse(entry, sdist, files_dir, registry)) is not None:
                    outcomes.append(reused)
                elif interpreter is None:
                    reason = f"no local CPython {entry.target.python} for {entry.target.platform}"
                    outcomes.append(
                        BuildOutcome(target=entry.name, sdist=sdist.filename, status="skipped", detail=reason)
                    )
                else:
                    build = _Build(
                        builder=builder,
                        auditor=auditor,
                        flat=flat,
                        files_dir=files_dir,
                        progress=progress,
                        compiler=compiler,
                    )
                    outcomes.append(build.one(entry, sdist, registry, interpreter))
    registry.save()
    return with_built_wheels(manifest, registry, files_dir, source_only=source_only), outcomes


def _reuse(entry: TargetEntry, sdist: FileEntry, files_dir: Path, registry: Registry) -> BuildOutcome | None:
    known = registry.for_target(entry.name, sdist.filename, sdist.sha256)
    if known is not None and _intact(files_dir / sdist.project / known.wheel, known):
        return _offered(entry, sdist, known.wheel, "reused")
    # a wheel already built from the same sdist for another target serves this one too if it loads there
    for other in registry.from_sdist(sdist.sha256):
        if unfit_reason(other.wheel, entry.target) is None and _intact(files_dir / sdist.project / other.wheel, other):
            registry.add(replace(other, target=entry.name))
            return BuildOutcome(target=entry.name, sdist=sdist.filename, status="reused", detail=other.wheel)
    return None


def _offered(entry: TargetEntry, sdist: FileEntry, wheel: str, status: str) -> BuildOutcome:
    """``status`` when ``wheel`` loads on the target; "unfit", saying why, when it does not."""
    reason = unfit_reason(wheel, entry.target)
    if reason is None:
        return BuildOutcome(target=entry.name, sdist=sdist.filename, status=status, detail=wheel)
    detail = f"{reason}: {entry.name} builds {sdist.filename} itself"
    return BuildOutcome(target=entry.name, sdist=sdist.filename, status="unfit", detail=detail)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Build:
    """How one wheel is built here: the builder, the auditor, the flat directory of local files, the wheelhouse."""

    builder: Builder
    auditor: Auditor
    flat: Path
    files_dir: Path
    progress: Progress
    compiler: Callable[[Target], Mapping[str, str]] | None = None  # the toolchain's settings for a target

    def one(self, entry: TargetEntry, sdist: FileEntry, registry: Registry, interpreter: Interpreter) -> BuildOutcome:
        from mirror.wheelbuild import WheelBuildError

        self.progress.message(f"{entry.name}: building a wheel from {sdist.filename} with {interpreter.path}")
        toolchain = self.compiler(entry.target) if self.compiler is not None else {}
        try:
            result = self.builder(
                self.files_dir / sdist.relpath,
                python=interpreter.path,
                find_links=self.flat,
                out_dir=self.files_dir / sdist.project,
                label=entry.name,
                **({"compiler": toolchain} if toolchain else {}),
            )
        except WheelBuildError as exc:
            status = "incomplete" if exc.missing else "failed"
            return BuildOutcome(target=entry.name, sdist=sdist.filename, status=status, detail=str(exc))
        audit = self.auditor(result.wheel)
        if audit.problem is not None:
            log.warning("%s: %s", audit.wheel.name, audit.problem)
        wheel = audit.wheel
        registry.add(
            BuiltWheel(
                target=entry.name,
                sdist=sdist.filename,
                sdist_sha256=sdist.sha256,
                wheel=wheel.name,
                sha256=sha256_file(wheel) if wheel != result.wheel or not result.sha256 else result.sha256,
                size=wheel.stat().st_size,
            )
        )
        outcome = _offered(entry, sdist, wheel.name, "built")
        if outcome.status == "built":
            _link(wheel, self.flat)  # a build requirement built here serves the builds after it
        elif audit.problem is not None:
            outcome = replace(outcome, detail=f"{outcome.detail} ({audit.problem})")
        return outcome


def _link_all(files_dir: Path, flat: Path) -> None:
    if files_dir.is_dir():
        for path in files_dir.glob("*/*"):
            if path.is_file() and not path.name.startswith(".") and classify(path.name) is not None:
                _link(path, flat)


def _link(path: Path, flat: Path) -> None:
    link = flat / path.name
    if not link.exists():
        os.symlink(path.resolve(), link)
