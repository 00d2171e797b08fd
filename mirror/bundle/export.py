"""Writing a bundle: plan its members, keep what a previous bundle lacks, write the archive and its manifest.

The members of a full bundle::

    mirror.toml                      the spec, offline form (targets; no sources, which name online files)
    lockfiles/...                    mirror.lock.json, the per-target lockfiles and SBOMs (<target>.cdx.json)
    wheelhouse/files/<p>/<file>      every locked, verified file
    client-config/...                pip.conf, uv.toml, ... for --url
    advisories/osv-pypi.zip          an OSV export of PyPI for --osv (mirror audit reads it offline)
    tool/wheels/*.whl, tool/*.txt    offline-mirror and its dependencies per tool target (mirror.selfinstall)
    install.sh                       installs the tool from tool/ with no network

A delta (``--since``) holds only the members whose path and sha256 the previous bundle's contents lack. The
archive is written to a temporary name and renamed; ``bundle.json`` is also written beside it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mirror import _atomic, selfinstall
from mirror._units import human_size
from mirror._verified import sha256_file, verified_files
from mirror.audit import OsvExport, load_osv, zip_records
from mirror.bundle.format import (
    MANIFEST_MEMBER,
    BundleError,
    BundleManifest,
    Compression,
    Member,
    bundle_id,
    offline_spec,
)
from mirror.layout import ADVISORIES, Layout
from mirror.lock import LockResult
from mirror.manifest import Manifest
from mirror.progress import NullProgress, Progress
from mirror.sbom import sbom_name
from mirror.spec import Spec
from mirror.targets import Target


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportOptions:
    """What ``mirror bundle export`` is asked for."""

    since: Path | None = None  # a previous bundle (or its .manifest.json): write a delta on it
    format: str = "auto"  # auto, zst or gz
    url: str | None = None  # add client configs for the mirror served there
    tool: bool = True  # carry offline-mirror itself
    tool_targets: tuple[Target, ...] = ()  # default: the spec's targets offline-mirror runs on
    jobs: int = 8  # concurrent downloads of the tool's dependencies
    sign: Path | None = None  # an SSH key: sign bundle.json (mirror.bundle.signing)
    osv: Path | None = None  # an OSV export of PyPI (all.zip or a directory of records): carried for mirror audit


@dataclass(frozen=True, kw_only=True, slots=True)
class Payload:
    """One member to write: from a file on disk (hashed as it is written and compared) or from bytes."""

    member: Member
    source: Path | bytes


def _from_bytes(path: str, data: bytes) -> Payload:
    return Payload(member=Member(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()), source=data)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolPayload:
    """offline-mirror's own part of a bundle: its wheel, and its dependencies locked and fetched per target."""

    wheel: selfinstall.ToolWheel
    layout: Layout  # the tool's workspace (mirror.selfinstall.tool_spec), locked and fetched
    lock: LockResult

    @property
    def manifest(self) -> Manifest:
        return self.lock.manifest


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportResult:
    """A bundle written."""

    path: Path
    sidecar: Path  # bundle.json beside the archive, for the next --since
    manifest: BundleManifest
    members: int  # in this archive
    contents: int  # in the mirror once it is imported
    size: int  # of the archive, compressed
    tool: ToolPayload | None
    signed_with: Path | None = None  # the key that signed it
    advisories: OsvExport | None = None  # the OSV export it carries

    def render(self) -> list[str]:
        """What was written, and what to do with it."""
        manifest = self.manifest
        lines = []
        if self.tool is not None:
            lines.append(
                f"offline-mirror {manifest.tool_version} and its dependencies for {', '.join(manifest.tool_targets)}"
            )
            lines += self.tool.lock.render()
        kind = f"delta on {manifest.base}" if manifest.base is not None else "full"
        lines.append(
            f"wrote {self.path} ({human_size(self.size)}): {kind} bundle {manifest.id},"
            f" {self.members} of {self.contents} members ({human_size(manifest.nbytes)} before compression)"
        )
        if self.advisories is not None:
            lines.append(f"advisories: {self.advisories.describe()} (offline: mirror audit)")
        if self.signed_with is not None:
            lines.append(f"signed with {self.signed_with} (bundle.json.sig; check with mirror bundle verify --trust)")
        lines.append(f"manifest: {self.sidecar}  (next delta: mirror bundle export NEW --since {self.sidecar})")
        if self.tool is not None:
            lines.append("offline host: extract it and run install.sh, then: mirror bundle import BUNDLE --into DIR")
        return lines


def client_files(url: str) -> dict[str, str]:
    """The client configs a bundle carries for the mirror at ``url`` (which must hold no credentials)."""
    from mirror.config import ClientConfig, render_files

    config = ClientConfig.for_url(url)
    if config.has_credentials:
        raise BundleError("--url: holds credentials; a bundle is read by many: give the URL without them")
    return render_files(config)


def export_bundle(
    out: Path,
    *,
    compression: Compression,
    spec: Spec,
    manifest: Manifest,
    previous: BundleManifest | None = None,
    client_files: Mapping[str, str] | None = None,
    tool: ToolPayload | None = None,
    sign: Path | None = None,
    signer: Callable[[bytes, Path], bytes] | None = None,
    progress: Progress | None = None,
    osv: Path | None = None,
) -> ExportResult:
    """Write the workspace's bundle to ``out`` (a delta on ``previous`` if given) and its manifest beside it;
    with ``sign`` (an SSH key), ``bundle.json.sig`` signs its manifest (``signer`` defaults to
    :func:`mirror.bundle.signing.sign`); ``osv``: an OSV export to carry (checked that it is one first)."""
    from mirror.bundle.signing import sign as ssh_sign

    advisories = advisories_payload(osv) if osv is not None else None
    contents = plan(
        spec, manifest, client_files=client_files, tool=tool, advisories=advisories[0] if advisories else None
    )
    members = delta(contents, previous) if previous is not None else contents
    bundle_manifest = build_manifest(
        members,
        contents,
        base=previous.id if previous is not None else None,
        compression=compression,
        targets=[t.name for t in manifest.targets],
        tool_targets=[t.name for t in tool.manifest.targets] if tool is not None else [],
    )
    signature = (signer or ssh_sign)(bundle_manifest.dumps().encode(), sign) if sign is not None else None
    write_bundle(out, bundle_manifest, members, signature=signature, progress=progress)
    sidecar = out.with_name(out.name + ".manifest.json")
    write_manifest(sidecar, bundle_manifest)
    return ExportResult(
        path=out,
        sidecar=sidecar,
        manifest=bundle_manifest,
        members=len(members),
        contents=len(contents),
        size=out.stat().st_size,
        tool=tool,
        signed_with=sign,
        advisories=advisories[1] if advisories else None,
    )


def advisories_payload(path: Path) -> tuple[Payload, OsvExport]:
    """The OSV export at ``path`` as the bundle's ``advisories/osv-pypi.zip``: a zip as it is, a directory zipped
    (records at the root, as osv.dev publishes them); read first, so that a wrong file is refused here."""
    export = load_osv(path, names=())
    if path.is_dir():
        return _from_bytes(ADVISORIES, zip_records(path)), export
    member = Member(path=ADVISORIES, size=path.stat().st_size, sha256=sha256_file(path))
    return Payload(member=member, source=path), export


def plan(
    spec: Spec,
    manifest: Manifest,
    *,
    client_files: Mapping[str, str] | None = None,
    tool: ToolPayload | None = None,
    advisories: Payload | None = None,
) -> list[Payload]:
    """Every member of a full bundle of the workspace (paths sorted); refuses when locked files are missing."""
    layout = spec.layout
    files_dir = layout.files
    ready, skipped = verified_files(manifest, files_dir, purpose="bundled")
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        raise BundleError(
            f"{files_dir}: {len(skipped)} locked files are missing or do not match the lock ({shown});"
            " run 'mirror fetch' (or 'mirror check') first"
        )
    payloads = [_from_bytes("mirror.toml", offline_spec(spec, [t.target for t in manifest.targets]).encode())]
    from mirror.lockfile import outputs

    for name, text in outputs(manifest, layout).items():
        path = layout.lockfiles / name
        data = path.read_bytes() if path.is_file() else text.encode()
        payloads.append(_from_bytes(f"lockfiles/{name}", data))
    for entry in manifest.targets:  # written by Workspace.export_bundle from the files verified here
        sbom = layout.lockfiles / sbom_name(entry.name)
        if sbom.is_file():
            payloads.append(_from_bytes(f"lockfiles/{sbom.name}", sbom.read_bytes()))
    for file in ready:
        path = files_dir / file.relpath
        member = Member(path=f"wheelhouse/files/{file.relpath}", size=path.stat().st_size, sha256=file.sha256)
        payloads.append(Payload(member=member, source=path))
    for name, text in sorted((client_files or {}).items()):
        payloads.append(_from_bytes(f"client-config/{name}", text.encode()))
    if tool is not None:
        payloads += _tool_payloads(tool)
    if advisories is not None:
        payloads.append(advisories)
    payloads.sort(key=lambda p: p.member.path)
    return payloads


def _tool_payloads(tool: ToolPayload) -> list[Payload]:
    out = [
        _from_bytes(f"tool/wheels/{tool.wheel.filename}", tool.wheel.data),
        _from_bytes("tool/targets.json", selfinstall.targets_json([t.target for t in tool.manifest.targets]).encode()),
        _from_bytes("install.sh", selfinstall.INSTALL_SH.encode()),
    ]
    files_dir = tool.layout.files
    ready, skipped = verified_files(tool.manifest, files_dir, purpose="bundled")
    if skipped:
        raise BundleError(f"{files_dir}: offline-mirror's dependencies are not all fetched: {', '.join(skipped)}")
    for file in ready:
        if file.kind != "wheel":
            continue
        path = files_dir / file.relpath
        member = Member(path=f"tool/wheels/{file.filename}", size=path.stat().st_size, sha256=file.sha256)
        out.append(Payload(member=member, source=path))
    for entry in tool.manifest.targets:
        locked = (tool.layout.lockfiles / f"{entry.name}.txt").read_text(encoding="utf-8")
        text = selfinstall.requirements_file(entry.target, locked, tool.wheel)
        out.append(_from_bytes(f"tool/{entry.name}.txt", text.encode()))
    return out


def delta(payloads: Sequence[Payload], previous: BundleManifest) -> list[Payload]:
    """The payloads the previous bundle's contents lack (by path and sha256)."""
    known = {(m.path, m.sha256) for m in previous.contents}
    return [p for p in payloads if (p.member.path, p.member.sha256) not in known]


def build_manifest(
    payloads: Sequence[Payload],
    contents: Sequence[Payload],
    *,
    base: str | None,
    compression: Compression,
    targets: Sequence[str],
    tool_targets: Sequence[str],
    created: str | None = None,
) -> BundleManifest:
    everything = tuple(p.member for p in contents)
    return BundleManifest(
        id=bundle_id(everything, base),
        base=base,
        created=created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        tool_version=selfinstall.version(),
        compression=compression,
        targets=tuple(targets),
        tool_targets=tuple(tool_targets),
        members=tuple(p.member for p in payloads),
        contents=everything,
    )


class _HashingReader(io.RawIOBase):
    """Reads a file for tarfile while hashing it and reporting progress."""

    def __init__(self, handle: BinaryIO, progress: Progress) -> None:
        self._handle = handle
        self._progress = progress
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        self.count += len(data)
        self._progress.advance(len(data))
        return len(data)


def _tarinfo(member: Member, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.path)
    info.size = member.size
    info.mtime = mtime
    info.mode = 0o755 if member.path.endswith(".sh") else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@contextlib.contextmanager
def _compressed_writer(handle: BinaryIO, compression: Compression) -> Iterator[BinaryIO]:
    if compression == "zst":
        try:
            import zstandard
        except ImportError:
            raise BundleError("--format zst needs the zstandard module (pip install zstandard)") from None
        with zstandard.ZstdCompressor(level=3).stream_writer(handle, closefd=False) as writer:
            yield writer
    else:
        # wheels are compressed already: level 1 costs little and saves nearly as much as 9
        with gzip.GzipFile(filename="", fileobj=handle, mode="wb", compresslevel=1, mtime=0) as writer:
            yield writer  # type: ignore[misc]


def write_bundle(
    out: Path,
    manifest: BundleManifest,
    payloads: Sequence[Payload],
    *,
    signature: bytes | None = None,
    progress: Progress | None = None,
) -> None:
    """Write the archive to a temporary name beside ``out`` and rename it; nothing is left on failure. A
    ``signature`` of bundle.json is the second member."""
    from mirror.bundle.signing import SIGNATURE_MEMBER

    progress = progress or NullProgress()
    progress.start(len(payloads), manifest.nbytes)
    mtime = int(time.time())
    manifest_bytes = manifest.dumps().encode()
    try:
        with (
            _atomic.atomic_writer(out) as handle,
            _compressed_writer(handle, manifest.compression) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            info = _tarinfo(Member(path=MANIFEST_MEMBER, size=len(manifest_bytes), sha256=""), mtime)
            tar.addfile(info, io.BytesIO(manifest_bytes))
            if signature is not None:
                info = _tarinfo(Member(path=SIGNATURE_MEMBER, size=len(signature), sha256=""), mtime)
                tar.addfile(info, io.BytesIO(signature))
            for payload in payloads:
                _add(tar, payload, mtime, progress)
    except OSError as exc:
        raise BundleError(f"{out}: cannot write: {exc.strerror or exc}") from None


def _add(tar: tarfile.TarFile, payload: Payload, mtime: int, progress: Progress) -> None:
    member = payload.member
    info = _tarinfo(member, mtime)
    if isinstance(payload.source, bytes):
        tar.addfile(info, io.BytesIO(payload.source))
        progress.advance(member.size)
    else:
        try:
            handle = payload.source.open("rb")
        except OSError as exc:
            raise BundleError(f"{payload.source}: cannot read: {exc.strerror or exc}") from None
        with handle:
            reader = _HashingReader(handle, progress)
            try:
                tar.addfile(info, reader)
            except OSError as exc:  # tarfile: "unexpected end of data" when the file shrank
                raise BundleError(f"{payload.source}: changed while it was written: {exc}") from None
            if reader.count != member.size or reader.digest.hexdigest() != member.sha256:
                raise BundleError(
                    f"{payload.source}: its content is not the locked one (sha256 {reader.digest.hexdigest()},"
                    f" expected {member.sha256}); run 'mirror check'"
                )
    progress.done(member.path)


def write_manifest(path: Path, manifest: BundleManifest) -> None:
    _atomic.write_text(path, manifest.dumps())
