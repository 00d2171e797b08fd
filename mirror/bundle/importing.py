"""Importing a bundle: verify everything in a staging directory, decide every change, then make them.

:func:`import_bundle` reads the archive into a staging directory beside the files (every member checked, see
:func:`mirror.bundle.format.read_bundle`); :func:`plan_import` then decides, writing nothing, what the import
changes — which files move in, which are already here, the merged lock and the offline spec — and refuses
a delta whose base was never imported, a base's file gone missing, or a published file arriving with other
bytes; :func:`apply_import` makes the changes: files renamed into place, the lockfiles rewritten (the manifest
last), the index regenerated and the bundle recorded in ``<wheelhouse>/.bundles.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from mirror import _atomic
from mirror._verified import VerifiedRecord, sha256_file
from mirror.bundle.format import BundleError, BundleManifest, Member, MissingBase, offline_spec, read_bundle
from mirror.errors import InvalidSpec
from mirror.layout import ADVISORIES, Layout
from mirror.manifest import MANIFEST, InvalidManifest, Manifest, load_manifest
from mirror.progress import Progress
from mirror.sbom import is_sbom
from mirror.spec import Spec, parse_spec

FILES_MEMBER = "wheelhouse/files/"
Indexer = Callable[[Manifest], tuple[int, int]]  # regenerates the index of a lock: (projects, files)


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportedRecord:
    """``<wheelhouse>/.bundles.json``: every bundle imported here, in order."""

    path: Path
    entries: tuple[Mapping[str, object], ...] = ()

    @classmethod
    def load(cls, path: Path) -> ImportedRecord:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path}: cannot read the record of imported bundles: {exc}") from None
        bundles = data.get("bundles") if isinstance(data, dict) else None
        if not isinstance(bundles, list) or not all(isinstance(b, dict) and "id" in b for b in bundles):
            raise BundleError(f"{path}: expected {{'bundles': [{{'id': ...}}, ...]}}")
        return cls(path=path, entries=tuple(bundles))

    @property
    def ids(self) -> set[str]:
        return {str(entry["id"]) for entry in self.entries}

    def with_bundle(self, manifest: BundleManifest, name: str) -> ImportedRecord:
        imported = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = {
            "id": manifest.id,
            "base": manifest.base,
            "created": manifest.created,
            "file": name,
            "imported": imported,
        }
        return replace(self, entries=(*self.entries, entry))

    def save(self) -> None:
        _atomic.write_text(self.path, json.dumps({"bundles": list(self.entries)}, indent=1) + "\n")


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportPlan:
    """Every change an import makes, decided before the first one is made."""

    bundle: Path
    manifest: BundleManifest
    layout: Layout
    record: ImportedRecord
    moves: tuple[tuple[Path, Path], ...]  # (staged file, its place)
    added: tuple[str, ...]  # member paths that are new here
    replaced: tuple[str, ...]  # member paths whose content changes here
    unchanged: int
    checked: frozenset[str]  # files/ paths hashed in this import (moved in, or found identical)
    merged: Manifest | None  # the lock after the import
    lock_texts: Mapping[str, str]  # lockfiles whose text changes
    spec_text: str | None  # the offline spec to write; None: it stays as it is
    notes: tuple[str, ...] = ()
    signer: str | None = None  # who signed the bundle, checked against the trust file

    @property
    def already_imported(self) -> bool:
        return self.manifest.id in self.record.ids

    @property
    def changes_nothing(self) -> bool:
        return not self.moves and not self.lock_texts and self.spec_text is None and self.already_imported


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportResult:
    manifest: BundleManifest
    added: tuple[str, ...]  # member paths that are new here
    replaced: tuple[str, ...]  # member paths whose content changed here
    unchanged: int
    projects: int | None  # in the regenerated index; None when nothing changed and it was not rebuilt
    indexed_files: int | None
    already_imported: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    signer: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)

    @property
    def changes(self) -> set[str]:
        return {*self.added, *self.replaced}

    def render(self, bundle: Path, into: Path) -> list[str]:
        """What the import of ``bundle`` into the workspace at ``into`` did."""
        manifest = self.manifest
        if self.already_imported and not self.changed:
            return [f"{bundle}: bundle {manifest.id} is already imported into {into}; nothing changed"]
        signed = f" signed by {self.signer}" if self.signer is not None else ""
        advisories = [f"advisories: {into / ADVISORIES} (mirror audit reads it)"] if ADVISORIES in self.changes else []
        return [
            f"imported {manifest.kind} bundle {manifest.id}{signed}: {len(self.added)} new, {len(self.replaced)}"
            f" replaced, {self.unchanged} already here; index: {self.projects} projects, {self.indexed_files} files",
            *(f"note: {note}" for note in self.notes),
            *advisories,
            f"serve it: mirror serve --spec {into / 'mirror.toml'}",
        ]


def merge(existing: Manifest | None, incoming: Manifest) -> Manifest:
    """The lock after an import: the bundle's targets replace same-named ones, others stay; files are the union
    (older files stay served, so clients still pinned to them keep installing)."""
    if existing is None:
        return incoming
    names = {t.name for t in incoming.targets}
    targets = (*incoming.targets, *(t for t in existing.targets if t.name not in names))
    return replace(incoming, targets=targets, files={**existing.files, **incoming.files})


def destination(layout: Layout, member: str) -> Path:
    """Where a member lands: ``wheelhouse/…`` and ``lockfiles/…`` where the workspace keeps them, the rest (the
    spec, tool/, client-config/, install.sh) beside mirror.toml."""
    if member.startswith("wheelhouse/"):
        return layout.wheelhouse / member.removeprefix("wheelhouse/")
    if member.startswith("lockfiles/"):
        return layout.lockfiles / member.removeprefix("lockfiles/")
    return layout.root / member


def import_bundle(
    bundle: Path,
    layout: Layout,
    *,
    spec_is_generated: bool,
    index: Indexer,
    trust: Path | None = None,
    pinned_trust: Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Verify ``bundle`` completely in a staging directory, then merge it into the workspace at ``layout``.

    ``spec_is_generated``: the workspace's mirror.toml is missing or was written by an import, so the import
    may rewrite it. ``index(manifest)`` regenerates the index. ``trust``: an allowed_signers file the bundle must be
    signed by (checked before any member is read); ``pinned_trust``: the one mirror.toml names, kept when the import
    rewrites it. Nothing changes unless every member verified.
    """
    from mirror.bundle.signing import trusted_by

    layout.wheelhouse.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-import-", dir=layout.wheelhouse))
    record = VerifiedRecord(layout.files)

    def present(member: Member) -> bool:  # a file verified here with this sha256 need not be staged again
        relpath = member.path.removeprefix(FILES_MEMBER)
        return relpath != member.path and record.matches(relpath, member.sha256)

    try:
        check = trusted_by(trust) if trust is not None else None
        verified = read_bundle(bundle, staging=staging, progress=progress, present=present, trust=check)
        plan = plan_import(
            bundle, verified.manifest, staging, layout, spec_is_generated=spec_is_generated, trust=pinned_trust
        )
        plan = replace(plan, signer=verified.signer)
        return apply_import(plan, index)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def plan_import(
    bundle: Path,
    manifest: BundleManifest,
    staging: Path,
    layout: Layout,
    *,
    spec_is_generated: bool,
    trust: Path | None = None,
) -> ImportPlan:
    """Decide every change the staged, verified ``bundle`` makes to the workspace; write nothing."""
    record = ImportedRecord.load(layout.imported_bundles)
    if manifest.base is not None and manifest.base not in record.ids:
        raise MissingBase(bundle, manifest.base)
    _check_base_files(bundle, manifest, layout)
    incoming_lock = _staged_lock(bundle, manifest, staging)
    existing_lock = load_manifest(layout.lockfiles) if (layout.lockfiles / MANIFEST).is_file() else None
    merged = merge(existing_lock, incoming_lock) if incoming_lock is not None else existing_lock
    staged_spec = _staged_spec(bundle, staging, layout)

    verified = VerifiedRecord(layout.files)
    checked: set[str] = set()
    added: list[str] = []
    replaced: list[str] = []
    unchanged = 0
    moves: list[tuple[Path, Path]] = []
    for member in manifest.members:
        if member.path == "mirror.toml" or (member.path.startswith("lockfiles/") and not is_sbom(member.path)):
            continue  # written from the merged lock and spec; a target's SBOM is taken as the online side wrote it
        place = destination(layout, member.path)
        current = _current_sha256(member, place, verified)
        relpath = member.path.removeprefix(FILES_MEMBER)
        if relpath != member.path:
            checked.add(relpath)
        if current == member.sha256:
            unchanged += 1
            continue
        if current is not None and relpath != member.path:
            existing_entry = existing_lock.files.get(place.name) if existing_lock else None
            if existing_entry is not None and existing_entry.built_from is None:
                raise BundleError(
                    f"{place}: already here with sha256 {current}; the bundle brings sha256 {member.sha256}"
                    " under the same name. A published file never changes: refusing to replace it"
                )
        (replaced if current is not None else added).append(member.path)
        moves.append((staging / member.path, place))

    spec_text = None
    if staged_spec is not None and spec_is_generated:
        targets = [t.target for t in merged.targets] if merged is not None else list(staged_spec.targets)
        text = offline_spec(staged_spec, targets, trust=trust)
        spec_text = text if _text_differs(layout.spec, text) else None
    notes = []
    if staged_spec is not None and not spec_is_generated:
        notes.append(f"{layout.spec} is your own spec: left as it is")
    return ImportPlan(
        bundle=bundle,
        manifest=manifest,
        layout=layout,
        record=record,
        moves=tuple(moves),
        added=tuple(added),
        replaced=tuple(replaced),
        unchanged=unchanged,
        checked=frozenset(checked),
        merged=merged,
        lock_texts=_changed_lockfiles(merged, existing_lock, layout) if merged is not None else {},
        spec_text=spec_text,
        notes=tuple(notes),
    )


def apply_import(plan: ImportPlan, index: Indexer) -> ImportResult:
    """Make the changes of ``plan``: files into place, lockfiles (the manifest last), spec, index, record."""
    already = plan.already_imported
    if plan.changes_nothing:
        return ImportResult(
            manifest=plan.manifest, added=(), replaced=(), unchanged=plan.unchanged, projects=None,
            indexed_files=None, already_imported=True, signer=plan.signer,
        )  # fmt: skip
    for source, place in plan.moves:
        place.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(source, 0o755 if place.suffix == ".sh" else 0o644)
        os.replace(source, place)
    layout = plan.layout
    if plan.merged is not None:
        verified = VerifiedRecord(layout.files)
        for entry in plan.merged.files.values():
            if entry.relpath in plan.checked:
                verified.add(entry)  # hashed just now; files a delta's base brought were recorded then
        if layout.files.is_dir():
            verified.save()
        for name, text in plan.lock_texts.items():  # the manifest last, as mirror lock writes them
            _atomic.write_text(layout.lockfiles / name, text)
    if plan.spec_text is not None:
        _atomic.write_text(layout.spec, plan.spec_text)
    projects, files = index(plan.merged) if plan.merged is not None else (0, 0)
    if not already:
        plan.record.with_bundle(plan.manifest, plan.bundle.name).save()
    return ImportResult(
        manifest=plan.manifest,
        added=plan.added,
        replaced=plan.replaced,
        unchanged=plan.unchanged,
        projects=projects,
        indexed_files=files,
        already_imported=already,
        notes=plan.notes,
        signer=plan.signer,
    )


def _check_base_files(bundle: Path, manifest: BundleManifest, layout: Layout) -> None:
    """What a delta leaves out must be here already: the files its base brought."""
    members = {m.path for m in manifest.members}
    absent = [
        m.path
        for m in manifest.contents
        if m.path not in members
        and m.path.startswith("wheelhouse/")
        and not _same_size(destination(layout, m.path), m.size)
    ]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise BundleError(
            f"{bundle}: {len(absent)} files from its base bundle {manifest.base} are missing under"
            f" {layout.wheelhouse}: {shown}; run 'mirror check' and import a full bundle"
        )


def _current_sha256(member: Member, place: Path, verified: VerifiedRecord) -> str | None:
    """The sha256 of what is at a member's place now (``None``: nothing), trusting the verified-files record."""
    if place.exists() and not place.is_file():
        raise BundleError(f"{place}: exists and is not a file; the bundle's {member.path} cannot go there")
    relpath = member.path.removeprefix(FILES_MEMBER)
    if relpath != member.path and verified.matches(relpath, member.sha256):
        return member.sha256
    try:
        return sha256_file(place)
    except FileNotFoundError:
        return None


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


def _text_differs(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except FileNotFoundError:
        return True


def _changed_lockfiles(merged: Manifest, existing: Manifest | None, layout: Layout) -> dict[str, str]:
    """The lockfiles (name -> text) whose text the merged lock changes; none when the lock is the one here."""
    from mirror.lockfile import outputs

    lockfiles = layout.lockfiles
    if merged == existing:
        names = [MANIFEST, *(f"{t.name}{suffix}" for t in merged.targets for suffix in (".txt", ".build.txt"))]
        if all((lockfiles / name).is_file() for name in names):
            return {}  # rendering every lockfile of a large lock takes seconds; nothing would change
    return {name: text for name, text in outputs(merged, layout).items() if _text_differs(lockfiles / name, text)}


def _staged_lock(bundle: Path, manifest: BundleManifest, staging: Path) -> Manifest | None:
    """The bundle's lock (validated), and a check that every file it names is in the bundle's contents."""
    path = staging / "lockfiles" / MANIFEST
    if not path.is_file():
        return None  # a delta whose lock did not change
    try:
        lock = load_manifest(path.parent)
    except InvalidManifest as exc:
        raise BundleError(f"{bundle}: lockfiles/{MANIFEST}: {exc}") from None
    contents = {m.path for m in manifest.contents}
    unlisted = sorted(f for f, e in lock.files.items() if f"wheelhouse/files/{e.relpath}" not in contents)
    if unlisted:
        raise BundleError(f"{bundle}: lockfiles/{MANIFEST} names files the bundle does not carry: {unlisted[:5]}")
    return lock


def _staged_spec(bundle: Path, staging: Path, layout: Layout) -> Spec | None:
    path = staging / "mirror.toml"
    if not path.is_file():
        return None
    try:
        return parse_spec(path.read_text(encoding="utf-8"), layout.spec)
    except InvalidSpec as exc:
        raise BundleError(f"{bundle}: mirror.toml: {exc.key + ': ' if exc.key else ''}{exc.detail}") from None
