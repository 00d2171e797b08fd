"""The workspace: the one object a caller needs to run the pipeline.

A :class:`Workspace` is opened from a spec (:meth:`Workspace.open`, or :meth:`Workspace.at` for the directory a
bundle is imported into). It owns the layout (:attr:`Workspace.layout`: lockfiles, files, index, caches,
records), the current lock (:meth:`Workspace.manifest`, the one way to get it) and the stages, as methods that
return result objects and never print::

    lock ─▶ fetch (download, build wheels, compile report) ─▶ index          sync = all three
    check · export_bundle · import_bundle · verify · doctor · publish_devpi · relocate_uv_lock

Progress and messages go through the one injected :class:`~mirror.progress.Progress`; HTTP goes through an
injected session factory. The CLI (:mod:`mirror.cli`) parses options, builds a workspace, calls one method and
prints what it returns; so can any program or test::

    from mirror.workspace import Workspace
    result = Workspace.open(Path("mirror.toml")).sync()
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mirror import _atomic
from mirror.builtwheels import IncompleteBuildClosure, Registry, with_built_wheels
from mirror.errors import MirrorError
from mirror.layout import Layout
from mirror.manifest import Manifest, load_manifest
from mirror.progress import NullProgress, Progress
from mirror.spec import Spec, load_spec, parse_spec
from mirror.targets import host_target

if TYPE_CHECKING:  # each stage imports what it runs: `mirror index` starts without the HTTP stack or a resolver
    import requests

    from mirror.audit import AuditResult
    from mirror.builtwheels import BuildOutcome
    from mirror.bundle.export import ExportOptions, ExportResult, ToolPayload
    from mirror.bundle.importing import ImportResult
    from mirror.devpi import PublishResult
    from mirror.doctor import Report as DoctorReport
    from mirror.fetch import CheckResult, FetchResult
    from mirror.index import IndexResult
    from mirror.lock import LockOptions, LockResult
    from mirror.pages import BundleImport
    from mirror.sbom import SbomResult
    from mirror.sources.poetrylock import PoetryRelocation
    from mirror.sources.uvlock import Relocation
    from mirror.upload import UploadResult
    from mirror.verify import Report as VerifyReport

CompileReport = dict[str, list[dict[str, object]]]  # target name -> what still builds from an sdist there


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchOptions:
    """How to fetch."""

    targets: tuple[str, ...] = ()  # only these targets (all when empty)
    jobs: int = 8  # concurrent downloads
    offline: bool = False  # download nothing; report what is missing
    build: bool = True  # build wheels from sdists (with policy.build-wheels)


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchOutcome:
    """What ``fetch`` did: the download, the wheels built here, what still compiles on each target."""

    download: FetchResult
    files_dir: Path
    builds: tuple[BuildOutcome, ...] | None  # None: no build was attempted
    compile_report: CompileReport | None  # None: offline (nothing was reported)
    sbom: SbomResult | None = None  # None: offline (none was written)

    def render(self) -> list[str]:
        """Per target: files, size, new, reused; then what was downloaded (or, offline, what is missing) and what
        was built here."""
        from mirror._units import human_size

        result = self.download
        lines = [f"{'target':<28} {'files':>6} {'size':>10} {'new':>5} {'reused':>7}"]
        for stats in result.targets:
            size = human_size(stats.nbytes)
            lines.append(f"{stats.name:<28} {stats.files:>6} {size:>10} {stats.new:>5} {stats.reused:>7}")
        if self.compile_report is None:  # offline
            if result.missing:
                lines.append(f"{len(result.missing)} files missing (--offline downloads nothing):")
                return lines + [f"  {name}" for name in result.missing]
            return [*lines, "every locked file is here"]
        lines.append(
            f"downloaded {len(result.downloaded)} files ({human_size(result.nbytes)}), {len(result.reused)} already"
            f" here; verified by sha256 in {self.files_dir}"
        )
        if self.builds:
            count = Counter(o.status for o in self.builds)
            left = [
                (count["unfit"], "built here but would not load there"),
                (count["skipped"], "for targets this host cannot build for"),
                (count["failed"], "failed to build here"),
                (count["policy"], "by policy.no-binary"),
            ]
            why = ", ".join(f"{n} {what}" for n, what in left if n)
            lines.append(
                f"wheels from sdists (sdist x target): {count['built']} built here, {count['reused']} already built;"
                f" {sum(n for n, _ in left)} left to the targets" + (f" ({why})" if why else "")
            )
        return lines + (self.sbom.render() if self.sbom is not None else [])

    def warnings(self) -> list[str]:
        """Builds that failed for another reason than a missing build requirement, and wheels built here that do not
        load on their target (those packages compile on the target)."""
        return [f"warning: {o.detail}" for o in self.builds or () if o.status in ("failed", "unfit")]


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncResult:
    """``lock``, ``fetch`` and ``index``, in order."""

    lock: LockResult
    fetch: FetchOutcome
    index: IndexResult


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyOptions:
    """What ``mirror verify`` proves."""

    targets: tuple[str, ...] = ()
    projects: tuple[Path, ...] = ()
    inside: bool = False  # already inside the isolated network namespace (the re-run of itself)


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishOutcome:
    """A publication into devpi-server, and the runtime lock of each target (for the install commands shown)."""

    result: PublishResult
    lockfiles: tuple[Path, ...]


class Workspace:
    """One workspace: its spec, its layout, its current lock and the pipeline's stages."""

    def __init__(
        self,
        spec: Spec,
        *,
        progress: Progress | None = None,
        session: Callable[[], requests.Session] | None = None,
    ) -> None:
        self.spec = spec
        self.progress: Progress = progress or NullProgress()
        self._session = session

    @classmethod
    def open(cls, spec_path: Path, *, progress: Progress | None = None) -> Workspace:
        """The workspace of the spec at ``spec_path`` (read and checked: every file its sources name exists)."""
        return cls(load_spec(spec_path), progress=progress)

    @classmethod
    def at(cls, root: Path, *, progress: Progress | None = None) -> Workspace:
        """The workspace in directory ``root`` as a bundle import finds it: its mirror.toml if there is one, else
        the default layout with no targets yet (created when a bundle is imported)."""
        layout = Layout.default(root.absolute())
        if layout.spec.is_file():
            spec = parse_spec(layout.spec.read_text(encoding="utf-8"), layout.spec)
        else:
            spec = Spec(path=layout.spec, wheelhouse=layout.wheelhouse, lockfiles=layout.lockfiles, targets=())
        return cls(spec, progress=progress)

    # -- the layout and the current lock ------------------------------------------------------------------------

    @property
    def layout(self) -> Layout:
        return self.spec.layout

    def manifest(self, *, rebuilding: bool = False) -> Manifest:
        """The current lock: ``mirror.lock.json`` with every wheel built here that is still in the wheelhouse.

        ``rebuilding``: wheels built here only as the record of built wheels holds them, so that one whose file
        went missing is left out (and built again), never downloaded.
        """
        manifest = load_manifest(self.layout.lockfiles)
        if rebuilding:
            manifest = manifest.without_built_wheels()
        return with_built_wheels(manifest, self.registry(), self.layout.files, source_only=self.spec.policy.source_only)

    def registry(self) -> Registry:
        """The record of wheels built here from sdists."""
        return Registry(self.layout.built_wheels)

    def spec_is_generated(self) -> bool:
        """Whether mirror.toml is missing or was written by a bundle import (which may then rewrite it)."""
        from mirror.bundle.format import SPEC_MARKER

        path = self.spec.path
        return not path.is_file() or path.read_text(encoding="utf-8").startswith(SPEC_MARKER)

    def session(self) -> requests.Session:
        """A pooled HTTP session with retries (or the injected factory's)."""
        from mirror.credentials import index_auth

        if self._session is not None:
            session = self._session()
        else:
            from mirror._http import make_session

            session = make_session()
        auth = index_auth(self.spec.indexes)  # each index's credentials, for its own host only
        if auth:
            session.auth = auth
        return session

    # -- the stages ------------------------------------------------------------------------------------------

    def lock(self, options: LockOptions | None = None) -> LockResult:
        """Resolve every target, with the recursive build-requirement closure, and write the lockfiles.

        Every project page comes through one :class:`~mirror.router.Router` (each name from the one index it is
        routed to), served to the resolver on 127.0.0.1 for the run."""
        from mirror.buildreqs import BuildRequirementsFinder
        from mirror.findlinks import FindLinks
        from mirror.lock import Locker, LockOptions, LockResult
        from mirror.lockfile import read_previous, write_lock
        from mirror.resolve import make_resolver
        from mirror.router import Router, routing_for, serve_router
        from mirror.sources import collect_inputs

        options = options or LockOptions()
        session = self.session()
        previous = read_previous(self.layout.lockfiles, [t.name for t in self.spec.targets])
        inputs = {t.name: collect_inputs(self.spec.sources, t, root=self.spec.root) for t in self.spec.targets}
        find_links = FindLinks(self.spec.sources.find_links) if self.spec.sources.find_links else None
        routing = routing_for(self.spec.routing, inputs.values(), find_links)
        router = Router(routing, session, find_links=find_links)
        with serve_router(router) as index_url:
            locker = Locker(
                self.spec,
                resolver=make_resolver(options.resolver),
                router=router,
                index_url=index_url,
                finder=BuildRequirementsFinder(index_url=index_url, cache_dir=self.layout.build_requirements_cache),
                session=session,
                inputs=inputs,
                options=options,
                progress=self.progress,
            )
            locked = locker.lock(previous)
        # wheels built here earlier stay in the lock while their sdist is unchanged
        manifest = with_built_wheels(
            locked, self.registry(), self.layout.files, source_only=self.spec.policy.source_only
        )
        changed = write_lock(manifest, self.layout)
        return LockResult(manifest=manifest, changed=tuple(changed), lockfiles=self.layout.lockfiles)

    def fetch(self, options: FetchOptions | None = None) -> FetchOutcome:
        """Download every locked file (verified, resumable); then, with policy.build-wheels, build wheels from
        sdists for the targets this host can build for; then report what still compiles on each target."""
        from mirror.fetch import fetch

        options = options or FetchOptions()
        building = self.spec.policy.build_wheels
        download = fetch(
            self.manifest(rebuilding=building),
            self.layout.files,
            session=self.session(),
            targets=options.targets,
            jobs=options.jobs,
            offline=options.offline,
            progress=self.progress,
        )
        if options.offline:
            return FetchOutcome(download=download, files_dir=self.layout.files, builds=None, compile_report=None)
        builds = self.build_wheels(options.targets) if options.build and building else None
        return FetchOutcome(
            download=download,
            files_dir=self.layout.files,
            builds=builds,
            compile_report=self.compile_report(options.targets),
            sbom=self.sbom(options.targets),
        )

    def build_wheels(self, targets: Sequence[str] = ()) -> tuple[BuildOutcome, ...]:
        """Build a wheel from every locked sdist of the targets this host can build for, with isolation fed only
        from the wheelhouse; record them and rewrite the lockfiles. Raises :class:`IncompleteBuildClosure` when a
        build requirement is missing (the lock is incomplete); other failures are outcomes (``failed``)."""
        from mirror.builtwheels import build_missing, raise_if_incomplete
        from mirror.interpreters import discover
        from mirror.lockfile import write_lock
        from mirror.wheelbuild import zig_environment

        manifest, outcomes = build_missing(
            self.manifest(rebuilding=True),
            self.layout.files,
            self.registry(),
            interpreters=discover(),
            targets=targets,
            source_only=self.spec.policy.source_only,
            compiler=zig_environment if self.spec.policy.compiler == "zig" else None,
            progress=self.progress,
        )
        write_lock(manifest, self.layout)  # the wheels that were built stay recorded, even when one was not
        raise_if_incomplete(outcomes)
        return tuple(outcomes)

    def sbom(self, targets: Sequence[str] = ()) -> SbomResult:
        """Write ``lockfiles/<target>.cdx.json``, the CycloneDX SBOM of each target (all by default) whose files are
        all here; an SBOM that would change only in its timestamp is left as it is."""
        from mirror.sbom import LicenseCache, write_sboms

        layout = self.layout
        cache = LicenseCache(layout.license_cache)
        return write_sboms(self.manifest(), layout.files, layout.lockfiles, cache, targets=targets)

    def compile_report(self, targets: Sequence[str] = ()) -> CompileReport:
        """What still builds from an sdist on each target (all, or the named ones), written to
        ``compile-report.json`` in the wheelhouse."""
        import json

        from mirror.builtwheels import unfit_wheels
        from mirror.compilereport import compile_report

        manifest = self.manifest(rebuilding=self.spec.policy.build_wheels)
        report = compile_report(manifest, built={}, unfit=unfit_wheels(manifest, self.registry()))
        if targets:
            report = {name: entries for name, entries in report.items() if name in targets}
        _atomic.write_text(self.layout.compile_report, json.dumps(report, indent=2) + "\n")
        return report

    def index(self, manifest: Manifest | None = None, *, url: str | None = None) -> IndexResult:
        """Write the static index (PEP 503 + 691, PEP 658 metadata) of every verified file of the lock, and the pages
        for people. ``url``: the mirror's Simple API root that ``use.html`` names (kept for later runs)."""
        from mirror.index import write_index

        return write_index(
            manifest if manifest is not None else self.manifest(),
            self.layout.wheelhouse,
            url=url,
            bundles=self.imported_bundles(),
        )

    def imported_bundles(self) -> tuple[BundleImport, ...]:
        """The bundles imported here, in order (none unless one was: the bundle modules are not loaded then)."""
        from mirror.pages import BundleImport

        if not self.layout.imported_bundles.is_file():
            return ()
        from mirror.bundle.importing import ImportedRecord

        return tuple(BundleImport.from_entry(e) for e in ImportedRecord.load(self.layout.imported_bundles).entries)

    def sync(self, lock: LockOptions | None = None, fetch: FetchOptions | None = None) -> SyncResult:
        """``lock``, ``fetch``, ``index``: from mirror.toml to a verified, servable wheelhouse."""
        locked = self.lock(lock)
        fetched = self.fetch(fetch)
        return SyncResult(lock=locked, fetch=fetched, index=self.index())

    def check(self, targets: Sequence[str] = ()) -> CheckResult:
        """Re-hash every locked file of the targets; missing and corrupt ones, and unfinished downloads."""
        from mirror.fetch import check

        return check(self.manifest(), self.layout.files, targets=targets)

    # -- across the air gap -----------------------------------------------------------------------------------

    def export_bundle(self, out: Path, options: ExportOptions | None = None) -> ExportResult:
        """Write the mirror (files, lockfiles, spec, client configs, the tool itself) as one archive."""
        from mirror.bundle.export import ExportOptions, client_files, export_bundle
        from mirror.bundle.format import bundle_path, read_manifest

        options = options or ExportOptions()
        out, compression = bundle_path(out, options.format)
        previous = read_manifest(options.since) if options.since is not None else None
        clients = client_files(options.url) if options.url is not None else None
        manifest = self.manifest()
        self.sbom()  # the SBOM of every target whose files are here: the bundle carries them
        tool = self._tool_payload(options, compression) if options.tool else None
        return export_bundle(
            out,
            compression=compression,
            spec=self.spec,
            manifest=manifest,
            previous=previous,
            client_files=clients,
            tool=tool,
            sign=options.sign,
            progress=self.progress,
            osv=options.osv,
        )

    def _tool_payload(self, options: ExportOptions, compression: str) -> ToolPayload:
        """offline-mirror's own part of a bundle: its wheel, its dependencies locked and fetched (wheels only)
        for the tool targets in a workspace of their own."""
        from mirror import selfinstall
        from mirror.bundle.export import ToolPayload

        targets = selfinstall.tool_targets(list(options.tool_targets) or list(self.spec.targets))
        extra = ["zstandard"] if compression == "zst" else []
        spec = selfinstall.tool_spec(self.spec, targets, extra=extra)
        tool = Workspace(spec, progress=self.progress, session=self._session)
        try:
            locked = tool.lock()
            tool.fetch(FetchOptions(jobs=options.jobs, build=False))
        except MirrorError as exc:
            upstream = self.spec.upstream
            raise MirrorError(
                f"offline-mirror's own dependencies from {upstream}: {exc} (leave the tool out with --no-tool)"
            ) from None
        return ToolPayload(wheel=selfinstall.tool_wheel(), layout=tool.layout, lock=locked)

    def import_bundle(self, bundle: Path, *, trust: Path | None = None) -> ImportResult:
        """Verify ``bundle`` completely, then merge it into this workspace and regenerate its index. ``trust`` (else
        mirror.toml's ``trust``): an allowed_signers file the bundle must be signed by."""
        from mirror.bundle.importing import import_bundle

        indexed: list[Manifest] = []

        def index(manifest: Manifest) -> tuple[int, int]:
            result = self.index(manifest)
            indexed.append(manifest)
            return result.projects, result.files

        result = import_bundle(
            bundle,
            self.layout,
            spec_is_generated=self.spec_is_generated(),
            index=index,
            trust=trust or self.spec.trust,
            pinned_trust=self.spec.trust,
            progress=self.progress,
        )
        if indexed and not result.already_imported:
            # the record of imported bundles is saved after the import's index: the overview lists this bundle now
            # (only index.html changes: every other page is as the import's index wrote it)
            self.index(indexed[-1])
        return result

    def audit(
        self, osv: Path | None = None, targets: Sequence[str] = (), *, now: datetime | None = None
    ) -> AuditResult:
        """The locked packages of ``targets`` (all when empty) against an OSV export of PyPI: ``osv`` (osv.dev's
        all.zip or a directory of its records), else the one a bundle carried here (``layout.advisories``)."""
        from mirror.audit import AuditError, audit, load_osv, locked_names

        path = osv if osv is not None else self.layout.advisories
        if osv is None and not path.exists():
            raise AuditError(
                f"no OSV export to audit with: give --osv PATH (osv.dev's PyPI all.zip or a directory of its"
                f" records), or import a bundle exported with --osv (it goes to {path})"
            )
        manifest = self.manifest()
        export = load_osv(path, locked_names(manifest))
        return audit(manifest, export, targets=targets, now=now or datetime.now(timezone.utc))

    # -- proof, lint and hosting ------------------------------------------------------------------------------

    def verify(self, options: VerifyOptions | None = None) -> VerifyReport:
        """The proof: in a network namespace with only loopback, serve the wheelhouse and install, import and
        build from it (outside the namespace: re-run this command inside one and read its report)."""
        from mirror.verify import Report, enter_namespace, inner_argv, plan_verify, run_isolated, run_verify

        options = options or VerifyOptions()
        for name in options.targets:
            self.spec.target(name)
        if not options.inside:
            return run_isolated(inner_argv(spec=self.spec.path, targets=options.targets, projects=options.projects))
        manifest = self.manifest()
        with tempfile.TemporaryDirectory(prefix="mirror-ns-") as scratch:
            notes = enter_namespace(Path(scratch))
            plan = plan_verify(
                manifest,
                layout=self.layout,
                targets=[self.spec.target(n).name for n in options.targets],
                projects=[p.absolute() for p in options.projects],
            )
            report = run_verify(plan, progress=self.progress)
        return Report(targets=report.targets, steps=report.steps, notes=(*notes, *report.notes))

    def doctor(self, project: Path, target: str | None = None) -> DoctorReport:
        """Lint ``project`` for offline-deploy hazards against this mirror (no network)."""
        from mirror.doctor import choose_target, diagnose, mirror_view, read_project_files

        manifest = self.manifest()
        chosen = choose_target(manifest, target, host_target().name)
        return diagnose(
            read_project_files(project), mirror_view(manifest, chosen, self.layout.files), project=str(project)
        )

    def publish_devpi(self, url: str, index: str, *, user: str | None, password: str | None) -> PublishOutcome:
        """Upload every verified file that the devpi index does not have yet (the index has no bases)."""
        from mirror.devpi import IndexName, publish

        manifest = self.manifest()
        result = publish(
            manifest,
            self.layout.files,
            url=url,
            index=IndexName.parse(index),
            user=user,
            password=password,
            session=self.session(),
            progress=self.progress,
        )
        return PublishOutcome(
            result=result, lockfiles=tuple(self.layout.lockfiles / f"{t.name}.txt" for t in manifest.targets)
        )

    def publish_upload(
        self,
        url: str,
        *,
        simple_url: str | None = None,
        targets: Sequence[str] = (),
        jobs: int = 4,
        environ: Mapping[str, str] | None = None,
    ) -> UploadResult:
        """Upload every verified file (of ``targets``) that the repository at ``url`` does not serve yet, through
        the upload API twine speaks (Nexus, Artifactory, GitLab, pypiserver, devpi); credentials from
        ``environ`` (default: this process's), netrc or keyring."""
        from mirror.credentials import upload_credentials
        from mirror.upload import Repository, publish

        manifest = self.manifest()
        names = [t.name for t in manifest.select(targets)]  # an unknown target name: one line, before any request
        credentials = upload_credentials(url, environ=environ)
        repository = Repository(url, self.session(), simple_url=simple_url, credentials=credentials)
        return publish(manifest, self.layout.files, repository, targets=names, jobs=jobs, progress=self.progress)

    def relocate_poetry_lock(self, project: Path, *, url: str) -> PoetryRelocation:
        """Point the Poetry project in ``project`` at the mirror served at ``url`` (a primary source, every registry
        package of poetry.lock from it, the content-hash computed again); notes for groups the mirror lacks."""
        from mirror._verified import verified_files
        from mirror.sources.poetrylock import relocate_poetry_lock

        ready, _ = verified_files(self.manifest(), self.layout.files, purpose="relocated onto")
        return relocate_poetry_lock(
            project, url=url, held={file.filename: file for file in ready}, targets=self.spec.targets
        )

    def relocate_uv_lock(self, uv_lock: Path, *, url: str, out: Path) -> Relocation:
        """Point ``uv_lock``'s registry packages at the mirror served at ``url``; write ``out``."""
        from mirror._verified import verified_files
        from mirror.sources.uvlock import relocate_uv_lock

        ready, _ = verified_files(self.manifest(), self.layout.files, purpose="relocated onto")
        return relocate_uv_lock(
            uv_lock, url=url, held={file.filename: file for file in ready}, targets=self.spec.targets, out=out
        )


__all__ = [
    "FetchOptions",
    "FetchOutcome",
    "IncompleteBuildClosure",
    "PublishOutcome",
    "SyncResult",
    "VerifyOptions",
    "Workspace",
]
