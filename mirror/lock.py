"""mirror lock: one exact resolution per target, with the recursive build-requirement closure.

For each target:

1. the spec's sources become root requirements and constraints (:mod:`mirror.sources`);
2. a resolver backend pins them for the target (:mod:`mirror.resolve`; uv by default);
3. for every pin, the target's files are chosen from the upstream's project page: the best-ranked wheel for the
   target's tags, the sdist when no wheel fits (or always / never, by ``policy.sdists``);
4. **build closure**: every chosen sdist and every project's own build system has its build requirements found
   (:mod:`mirror.buildreqs`), resolved for the target, and their files chosen the same way; a build requirement
   that is itself an sdist is followed in turn, until nothing new appears. Different sdists may need different
   versions of the same build requirement: all are kept, and the lock says which sdist needs which.

The result is a :class:`~mirror.manifest.Manifest`, the one lock model every later stage reads, written by
:mod:`mirror.lockfile`. Nothing is written unless every target locked.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from mirror import __version__, cooldown
from mirror._download import download_verified
from mirror._records import fields_dict
from mirror.buildreqs import BuildRequirements, BuildRequirementsFinder
from mirror.errors import MirrorError
from mirror.layout import files_dir
from mirror.lockfile import Previous
from mirror.manifest import BuildEntry, FileEntry, Manifest, PackageEntry, Role, TargetEntry
from mirror.progress import NullProgress, Progress
from mirror.resolve import Pin, ResolutionError, Resolver, ResolveRequest
from mirror.router import Router
from mirror.simple import DistFile
from mirror.sources import Inputs, LockedFiles, Project, collect_inputs
from mirror.spec import Policy, Spec
from mirror.targets import Target

log = logging.getLogger(__name__)


class LockError(MirrorError):
    """A target cannot be locked."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LockOptions:
    """How to lock."""

    resolver: str = "uv"  # "uv" or "pip-tools" (mirror.resolve.make_resolver)
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    jobs: int = 4  # targets locked in parallel
    now: datetime | None = None  # the moment a relative policy.exclude-newer counts back from (default: now)


@dataclass(frozen=True, kw_only=True, slots=True)
class LockResult:
    """A lock written: the manifest (with the wheels built here that are still in the wheelhouse) and the
    lockfiles whose text changed."""

    manifest: Manifest
    changed: tuple[Path, ...]
    lockfiles: Path

    def render(self) -> list[str]:
        """Per target: packages, sdists, build packages and builds; then what changed in the lockfiles."""
        lines = []
        for entry in self.manifest.targets:
            runtime, build = entry.runtime(), entry.build()
            sdists = sum(1 for p in runtime for f in p.files if self.manifest.files[f].kind == "sdist")
            names = [p.name for p in build]
            conflicts = sorted({n for n in names if names.count(n) > 1})
            kept = f"; conflicting build versions kept: {', '.join(conflicts)}" if conflicts else ""
            lines.append(
                f"{entry.name}: {len(runtime)} packages ({sdists} sdists),"
                f" {len(build)} build packages for {len(entry.builds)} builds{kept}"
            )
        sources = Counter(f.index for f in self.manifest.files.values() if f.index is not None)
        if len(sources) > 1:
            lines.append("files by index: " + ", ".join(f"{name} {count}" for name, count in sorted(sources.items())))
        where, changed = self.lockfiles, self.changed
        lines.append(f"{len(changed)} files changed in {where}" if changed else f"lockfiles in {where} are up to date")
        return lines


def requires_python_allows(file: DistFile, target: Target) -> bool:
    if not file.requires_python:
        return True
    try:
        return SpecifierSet(file.requires_python).contains(target.python_full_version, prereleases=True)
    except InvalidSpecifier:
        return True  # an unparsable Requires-Python is ignored by pip and uv as well


def choose_files(
    files: Iterable[DistFile],
    *,
    name: str,
    version: str,
    target: Target,
    policy: Policy,
    before: datetime | None = None,
) -> tuple[DistFile, ...]:
    """The files of ``name==version`` that ``target`` uses: its best wheel and/or the sdist, by policy
    (``sdists``; ``no-binary`` takes the sdist alone, ``only-binary`` never an sdist), none uploaded after
    ``before`` (policy.exclude-newer)."""
    wanted = Version(version)
    candidates = [f for f in files if f.version == wanted]
    if not candidates:
        raise LockError(f"{name} {version} for {target.name}: the upstream lists no files for this version")
    if before is not None:
        kept = [f for f in candidates if not cooldown.too_new(f.upload_time, before)]
        if not kept:
            raise LockError(
                f"{name} {version} for {target.name}: every file was uploaded after policy.exclude-newer"
                f" ({cooldown.stamp(before)}), or says no upload time"
            )
        candidates = kept
    live = [f for f in candidates if not f.yanked] or candidates  # an exact pin may use a yanked release
    usable = [f for f in live if requires_python_allows(f, target)]
    source_only, binary_only = policy.source_only(name), policy.binary_only(name)
    wheels = [f for f in usable if f.kind == "wheel" and target.accepts(f.filename) and not source_only]
    best = min(wheels, key=lambda f: (target.wheel_rank(f.filename), f.filename)) if wheels else None
    sdists = sorted(
        (f for f in usable if f.kind == "sdist" and not binary_only),
        key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename),
    )
    chosen: list[DistFile] = [best] if best else []
    if sdists and (source_only or policy.sdists == "always" or (best is None and policy.sdists == "when-needed")):
        chosen.append(sdists[0])
    if chosen:
        return tuple(chosen)
    existing = ", ".join(sorted(f.filename for f in candidates))
    if source_only:
        raise LockError(
            f"{name} {version} for {target.name}: policy.no-binary names it, but it has no sdist; files: {existing}"
        )
    if binary_only:
        raise LockError(
            f"{name} {version} for {target.name}: policy.only-binary names it, but no wheel fits"
            f" {target.describe()}; files: {existing}"
        )
    if sdists and policy.sdists == "never":
        raise LockError(
            f"{name} {version} for {target.name}: no wheel fits the target and policy.sdists is 'never';"
            f" files: {existing}"
        )
    raise LockError(f"{name} {version} for {target.name}: no file fits {target.describe()}; files: {existing}")


@dataclass
class _BuildState:
    """Per-target bookkeeping of the build closure."""

    needs: dict[str, BuildEntry] = field(default_factory=dict)
    packages: dict[tuple[str, str], tuple[tuple[DistFile, ...], set[str]]] = field(default_factory=dict)


def file_entry(file: DistFile) -> FileEntry:
    """The manifest's record of an upstream file (its sha256 known)."""
    assert file.sha256 is not None
    shared = fields_dict(
        file, "filename", "project", "kind", "url", "sha256", "size", "requires_python", "upload_time", "index"
    )
    return FileEntry(**shared, version=str(file.version), yanked=(file.yanked_reason or True) if file.yanked else False)


def _package(name: str, version: str, role: Role, files: Iterable[DistFile], via: tuple[str, ...]) -> PackageEntry:
    return PackageEntry(name=name, version=version, role=role, files=tuple(f.filename for f in files), via=via)


class Locker:
    """Locks every target of a spec. I/O comes in through the injected resolver, router, finder and session.

    ``router`` reads every project page from the index that project is routed to, and ``index_url`` is where it
    serves them to the resolver (:func:`mirror.router.serve_router`); ``inputs`` are the targets' parsed sources
    (read here when not given).
    """

    def __init__(
        self,
        spec: Spec,
        *,
        resolver: Resolver,
        router: Router,
        index_url: str,
        finder: BuildRequirementsFinder,
        session: requests.Session,
        inputs: Mapping[str, Inputs] | None = None,
        options: LockOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.spec = spec
        self.resolver = resolver
        self.router = router
        self.index_url = index_url
        self.inputs = inputs or {}
        self.finder = finder
        self.session = session
        self.options = options or LockOptions()
        self.progress = progress or NullProgress()
        raw = spec.policy.exclude_newer
        self.cutoff = cooldown.cutoff(raw, self.options.now or datetime.now(timezone.utc)) if raw else None
        self._exclude_newer = cooldown.stamp(self.cutoff) if self.cutoff is not None else None
        self._download_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._build_cache: dict[tuple[str, tuple[str, ...]], list[Pin]] = {}
        self._requirements_cache: dict[str, BuildRequirements] = {}
        self._sdist_locks: dict[str, threading.Lock] = {}
        # one pool of page fetchers for every target (pages are fetched once; parsing is CPU-bound)
        self._pages = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mirror-pages")

    # -- entry point -----------------------------------------------------------------------------------------

    def lock(self, previous: dict[str, Previous] | None = None) -> Manifest:
        """The lock of every target of the spec, as the manifest (no wheel built here in it yet)."""
        previous = previous or {}
        targets = self.spec.targets
        self.router.check()
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(self.options.jobs, len(targets)))) as pool:
                futures = [pool.submit(self.lock_target, t, previous.get(t.name, Previous())) for t in targets]
                locked = [f.result() for f in futures]
        finally:
            self._pages.shutdown(wait=False, cancel_futures=True)
        files: dict[str, FileEntry] = {}
        for _, target_files in locked:
            for file in target_files:
                files.setdefault(file.filename, file)
        return Manifest(
            upstream=self.spec.upstream,
            indexes={index.name: index.url for index in self.router.routing.indexes},
            exclude_newer=self._exclude_newer,
            resolver=self.resolver.name,
            created_by=f"offline-mirror {__version__}",
            targets=tuple(entry for entry, _ in locked),
            files=dict(sorted(files.items())),
        )

    def lock_target(self, target: Target, previous: Previous) -> tuple[TargetEntry, list[FileEntry]]:
        """Everything ``target`` installs and builds, and the files it uses."""
        inputs = self.inputs.get(target.name) or collect_inputs(self.spec.sources, target, root=self.spec.root)
        if not inputs.requirements and not inputs.projects:
            raise LockError(f"{self.spec.path}: [sources] names nothing to lock")
        self._check_cooldown(inputs.locked_files)
        self.progress.message(f"{target.name}: resolving")
        excluded = tuple(p.name for p in inputs.projects)
        pins = self._resolve(
            ResolveRequest(
                label=target.name,
                target=target,
                index_url=self.index_url,
                requirements=inputs.requirements_txt(),
                constraints=inputs.constraints_txt(),
                preferences=previous.runtime,
                upgrade=self.options.upgrade,
                upgrade_packages=self.options.upgrade_packages,
                exclude=excluded,
                no_binary=self.spec.policy.no_binary,
                only_binary=self.spec.policy.only_binary,
                exclude_newer=self._exclude_newer,
            )
        )
        origins = _origins(inputs)
        chosen = self._choose_all(pins, target)
        self._check_locked_files(inputs.locked_files, chosen)
        used = {f.filename: f for files in chosen for f in files}
        runtime = [
            _package(pin.name, pin.version, "runtime", files, _via(pin, origins))
            for pin, files in zip(pins, chosen, strict=True)
        ]
        self.progress.message(f"{target.name}: {len(runtime)} packages pinned; finding build requirements")
        state = _BuildState()
        queue: list[tuple[str, BuildRequirements]] = []
        for project in inputs.projects:
            queue.append((f"project {project.name}", self._project_requirements(project)))
        for files in chosen:
            queue.extend(self._sdist_needs(files))
        while queue:
            requirer, requirements = queue.pop(0)
            if requirer in state.needs:
                continue
            build_pins = self._resolve_build(target, requirer, requirements, previous.build)
            state.needs[requirer] = BuildEntry(
                requirer=requirer,
                requires=requirements.requires,
                static=requirements.static,
                dynamic=requirements.dynamic,
                backend=requirements.backend,
                error=requirements.error,
                pins=tuple(sorted(f"{p.name}=={p.version}" for p in build_pins)),
            )
            for pin, files in zip(build_pins, self._choose_all(build_pins, target), strict=True):
                key = (pin.name, pin.version)
                if key not in state.packages:
                    state.packages[key] = (files, set())
                    queue.extend(item for item in self._sdist_needs(files) if item[0] not in state.needs)
                state.packages[key][1].add(requirer)
        build = []
        for (name, version), (files, requirers) in sorted(
            state.packages.items(), key=lambda item: (item[0][0], Version(item[0][1]))
        ):
            used.update((f.filename, f) for f in files)
            build.append(_package(name, version, "build", files, tuple(sorted(requirers))))
        self.progress.message(f"{target.name}: {len(build)} build packages for {len(state.needs)} builds")
        entry = TargetEntry(
            target=target,
            packages=(*sorted(runtime, key=lambda p: p.name), *build),
            builds=tuple(state.needs[k] for k in sorted(state.needs)),
        )
        return entry, [file_entry(used[name]) for name in sorted(used)]

    # -- pieces ----------------------------------------------------------------------------------------------

    def _resolve(self, request: ResolveRequest) -> list[Pin]:
        """The resolver's pins; its failure told in the words of the index behind it, when one failed."""
        try:
            return self.resolver.resolve(request)
        except ResolutionError as exc:
            raise self.router.explain(exc) from None

    def _choose_all(self, pins: list[Pin], target: Target) -> list[tuple[DistFile, ...]]:
        pages = list(self._pages.map(lambda pin: self.router.project(pin.name), pins))
        chosen = []
        for pin, page in zip(pins, pages, strict=True):
            files = choose_files(
                page.files,
                name=pin.name,
                version=pin.version,
                target=target,
                policy=self.spec.policy,
                before=self.cutoff,
            )
            chosen.append(tuple(self._with_hash(f) for f in files))
        return chosen

    def _check_cooldown(self, locked: Iterable[LockedFiles]) -> None:
        """A team's lock pinning a version uploaded after the cooldown's cutoff is reported, never moved."""
        if self.cutoff is None:
            return
        for package in locked:
            files = self.router.project(package.name).for_version(Version(package.version))
            if files and all(cooldown.too_new(f.upload_time, self.cutoff) for f in files):
                times = sorted(f.upload_time for f in files if f.upload_time)
                when = f"was uploaded {times[-1]}" if times else "has no upload time"
                raise LockError(
                    f"{package.origin}: {package.name} {package.version} {when}, after policy.exclude-newer"
                    f" ({self._exclude_newer}, {self.spec.policy.exclude_newer!r}); lock it again under the cooldown,"
                    " or wait"
                )

    def _check_locked_files(self, locked: Iterable[LockedFiles], chosen: Iterable[tuple[DistFile, ...]]) -> None:
        """Every file a team's lock pins must be one the upstream serves, with the same sha256."""
        hashed = {f.filename: f.sha256 for files in chosen for f in files}  # hashless upstreams: computed by now
        for package in locked:
            if not package.files:
                continue
            page = self.router.project(package.name).for_version(Version(package.version))
            served = {f.filename: f.sha256 or hashed.get(f.filename) for f in page}
            for filename, sha256 in package.files:
                problem = _locked_file_problem(filename, sha256, served)
                if problem:
                    where = f"{package.origin}: {package.name} {package.version}"
                    raise LockError(f"{where}: {problem} ({self.router.where(package.name)})")

    def _with_hash(self, file: DistFile) -> DistFile:
        """Upstreams without hashes: download the file once to learn its sha256."""
        if file.sha256 is not None:
            return file
        path = self._local_path(file)
        sha256 = download_verified(self.session, file.url, path, sha256=None)
        return dataclasses.replace(file, sha256=sha256)

    def _local_path(self, file: DistFile) -> Path:
        return files_dir(self.spec.wheelhouse) / file.project / file.filename

    def _download(self, file: DistFile) -> Path:
        path = self._local_path(file)
        with self._guard:
            file_lock = self._download_locks.setdefault(file.filename, threading.Lock())
        with file_lock:
            if not path.is_file():
                self.progress.message(f"downloading {file.filename} to read its build system")
                download_verified(self.session, file.url, path, sha256=file.sha256)
        return path

    def _sdist_needs(self, files: Iterable[DistFile]) -> list[tuple[str, BuildRequirements]]:
        needs = []
        for file in files:
            if file.kind != "sdist":
                continue
            with self._guard:
                sdist_lock = self._sdist_locks.setdefault(file.filename, threading.Lock())
            with sdist_lock:  # one backend query per sdist, however many targets use it
                with self._guard:
                    cached = self._requirements_cache.get(file.filename)
                if cached is None:
                    assert file.sha256 is not None
                    cached = self.finder.for_sdist(self._download(file), sha256=file.sha256)
                    with self._guard:
                        self._requirements_cache[file.filename] = cached
            needs.append((file.filename, cached))
        return needs

    def _project_requirements(self, project: Project) -> BuildRequirements:
        key = f"project:{project.path}"
        with self._guard:
            cached = self._requirements_cache.get(key)
        if cached is None:
            cached = self.finder.for_project(project.path, project.build_system)
            with self._guard:
                self._requirements_cache[key] = cached
        return cached

    def _resolve_build(
        self, target: Target, requirer: str, requirements: BuildRequirements, preferences: str | None
    ) -> list[Pin]:
        requires = tuple(sorted(set(requirements.requires)))
        if not requires:
            return []
        key = (target.name, requires)
        with self._guard:
            cached = self._build_cache.get(key)
        if cached is not None:
            return cached
        pins = self._resolve(
            ResolveRequest(
                label=f"{target.name}: build requirements of {requirer}",
                target=target,
                index_url=self.index_url,
                requirements="".join(f"{r}\n" for r in requires),
                preferences=preferences,
                upgrade=self.options.upgrade,
                upgrade_packages=self.options.upgrade_packages,
                no_binary=self.spec.policy.no_binary,
                only_binary=self.spec.policy.only_binary,
                exclude_newer=self._exclude_newer,
            )
        )
        with self._guard:
            self._build_cache[key] = pins
        return pins


def _locked_file_problem(filename: str | None, sha256: str, served: dict[str, str | None]) -> str | None:
    """What is wrong with one locked file against the files the upstream serves for its version (name -> sha256;
    None where the upstream gives no hash and the file was not downloaded)."""
    if filename is None:  # the lock names hashes only (Pipfile.lock)
        if sha256 in served.values() or None in served.values():
            return None
        return f"the lock's sha256 {sha256} is not the hash of any file the upstream serves for this version"
    if filename not in served:
        return f"{filename} is locked (sha256 {sha256}) but the upstream does not serve it"
    actual = served[filename]
    if actual is not None and actual != sha256:
        return f"{filename} has sha256 {sha256} in the lock, {actual} on the upstream"
    return None


def _origins(inputs: Inputs) -> dict[str, list[str]]:
    origins: dict[str, list[str]] = {}
    for root in (*inputs.requirements, *inputs.constraints):
        name = str(canonicalize_name(root.requirement.name))
        if root.origin not in origins.setdefault(name, []):
            origins[name].append(root.origin)
    return origins


def _via(pin: Pin, origins: dict[str, list[str]]) -> tuple[str, ...]:
    """The resolver's annotations, with its temporary input files replaced by the real sources."""
    kept = [v for v in pin.via if not v.startswith(("-r ", "-c "))]
    return tuple(origins.get(pin.name, [])) + tuple(v for v in kept if v not in origins.get(pin.name, []))
