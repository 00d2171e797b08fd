"""mirror bundle: carry a mirror across the air gap as one hash-checked archive, full or incremental.

An archive (``.tar.zst`` when :mod:`zstandard` is importable, else ``.tar.gz``) whose first member is
``bundle.json``: the bundle's id, its base's id for a delta, the tool version, every member's path, size and
sha256, and the complete contents of the mirror the bundle brings up to date. The other members::

    mirror.toml                      the spec, offline form (targets; no sources, which name online files)
    lockfiles/...                    mirror.lock.json and the per-target lockfiles
    wheelhouse/files/<p>/<file>      every locked, verified file
    client-config/...                pip.conf, uv.toml, ... for --url
    tool/wheels/*.whl, tool/*.txt    offline-mirror and its dependencies per tool target (mirror.selfinstall)
    install.sh                       installs the tool from tool/ with no network

A delta (``--since``) holds only the members whose path and sha256 the previous bundle's contents lack.
Import extracts into a staging directory beside the files, rejects unsafe members (tarfile's ``data`` filter,
then our own checks), verifies every member against ``bundle.json`` before anything becomes visible, then moves
files into place, merges the lock with the mirror already there, and regenerates the index. The ids of imported
bundles are kept in ``<wheelhouse>/.bundles.json``, so a delta whose base was never imported is refused.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, BinaryIO, Literal, Protocol

from mirror import _atomic, selfinstall
from mirror._filenames import classify
from mirror._verified import VerifiedRecord, sha256_file, verified_files
from mirror.errors import InvalidSpec, MirrorError
from mirror.manifest import MANIFEST, InvalidManifest, Manifest, load_manifest
from mirror.spec import Spec, parse_spec
from mirror.targets import Target

log = logging.getLogger(__name__)

FORMAT = "offline-mirror-bundle"
FORMAT_VERSION = 1
MANIFEST_MEMBER = "bundle.json"
IMPORTED = ".bundles.json"  # in the wheelhouse: the bundles imported into this mirror
SPEC_MARKER = "# Written by 'mirror bundle import'"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_PATH = 1024
CHUNK = 1024 * 1024
Compression = Literal["zst", "gz"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-f]{32}")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class BundleError(MirrorError):
    """A bundle cannot be written, read, verified or imported."""


class UnsafeMember(BundleError):
    """A member of the archive could write outside the destination or is not a plain file."""


class MissingBase(BundleError):
    """A delta bundle's base was never imported here."""

    def __init__(self, bundle: Path, base: str) -> None:
        self.base = base
        super().__init__(f"{bundle}: a delta of bundle {base}, which was never imported here; import that bundle first")


class BundleProgress(Protocol):
    """How export, verify and import report progress (the CLI draws a bar; the library never prints)."""

    def start(self, files: int, nbytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def done(self, path: str) -> None: ...


class NullProgress:
    def start(self, files: int, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def done(self, path: str) -> None:
        pass


# --- the manifest --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True, slots=True)
class BundleManifest:
    """``bundle.json``: what the archive holds (``members``) and what the mirror holds after it (``contents``)."""

    id: str
    base: str | None
    created: str
    tool_version: str
    compression: Compression
    targets: tuple[str, ...]
    tool_targets: tuple[str, ...]
    members: tuple[Member, ...]
    contents: tuple[Member, ...]

    @property
    def kind(self) -> str:
        return "full" if self.base is None else "delta"

    @property
    def nbytes(self) -> int:
        return sum(m.size for m in self.members)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "id": self.id,
            "base": self.base,
            "created": self.created,
            "tool": {"name": selfinstall.DISTRIBUTION, "version": self.tool_version},
            "compression": self.compression,
            "targets": list(self.targets),
            "tool_targets": list(self.tool_targets),
            "members": [m.to_dict() for m in self.members],
            "contents": [m.to_dict() for m in self.contents],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: object, where: str) -> BundleManifest:
        """Validate a parsed ``bundle.json``; errors name ``where`` and the key."""

        def fail(key: str, message: str) -> BundleError:
            return BundleError(f"{where}: {key}: {message}")

        if not isinstance(data, dict):
            raise BundleError(f"{where}: expected a JSON object")
        if data.get("format") != FORMAT:
            raise fail("format", f"expected {FORMAT!r}, got {data.get('format')!r} (not an offline-mirror bundle)")
        if data.get("version") != FORMAT_VERSION:
            raise fail("version", f"expected {FORMAT_VERSION}, got {data.get('version')!r}")
        given_id, base = data.get("id"), data.get("base")
        if not isinstance(given_id, str) or not _ID.fullmatch(given_id):
            raise fail("id", f"expected 32 lowercase hex digits, got {given_id!r}")
        if base is not None and (not isinstance(base, str) or not _ID.fullmatch(base)):
            raise fail("base", f"expected null or 32 lowercase hex digits, got {base!r}")
        tool = data.get("tool")
        tool_version = tool.get("version") if isinstance(tool, dict) else None
        if not isinstance(tool_version, str):
            raise fail("tool.version", "expected a string")
        compression = data.get("compression")
        if compression not in ("zst", "gz"):
            raise fail("compression", f"expected 'zst' or 'gz', got {compression!r}")

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(key, "expected an array of strings")
            return tuple(value)

        def members(key: str) -> tuple[Member, ...]:
            value = data.get(key)
            if not isinstance(value, list):
                raise fail(key, "expected an array")
            out, seen = [], set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise fail(f"{key}[{i}]", "expected an object with path, size and sha256")
                path, size, sha256 = item.get("path"), item.get("size"), item.get("sha256")
                if not isinstance(path, str):
                    raise fail(f"{key}[{i}].path", "expected a string")
                problem = unsafe_path(path) or misplaced(path)
                if problem:
                    raise fail(f"{key}[{i}].path", f"{path!r}: {problem}")
                if path in seen:
                    raise fail(f"{key}[{i}].path", f"{path!r} is listed twice")
                seen.add(path)
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    raise fail(f"{key}[{i}].size", f"expected a non-negative integer, got {size!r}")
                if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
                    raise fail(f"{key}[{i}].sha256", f"expected a lowercase hex sha256, got {sha256!r}")
                out.append(Member(path=path, size=size, sha256=sha256))
            return tuple(out)

        created = data.get("created")
        manifest = cls(
            id=given_id,
            base=base,
            created=created if isinstance(created, str) else "",
            tool_version=tool_version,
            compression=compression,
            targets=names("targets"),
            tool_targets=names("tool_targets"),
            members=members("members"),
            contents=members("contents"),
        )
        if bundle_id(manifest.contents, manifest.base) != manifest.id:
            raise fail("id", f"{manifest.id} is not the id of the contents listed (the manifest was altered)")
        contents = set(manifest.contents)
        for member in manifest.members:
            if member not in contents:
                raise fail("members", f"{member.path!r} is not in contents with the same size and sha256")
        return manifest


def unsafe_path(path: str) -> str | None:
    """Why ``path`` may not name a member (``None`` when it is a plain relative POSIX path inside the bundle)."""
    if not path:
        return "empty"
    if len(path) > MAX_PATH:
        return f"longer than {MAX_PATH} characters"
    if "\x00" in path or any(ord(c) < 32 for c in path):
        return "contains a control character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' component"
    if path == MANIFEST_MEMBER:
        return f"{MANIFEST_MEMBER} is the bundle's own manifest"
    return None


_LAYOUT = (
    "mirror.toml, install.sh, lockfiles/<file>, wheelhouse/files/<project>/<distribution file>,"
    " client-config/<file>, tool/targets.json, tool/<target>.txt or tool/wheels/<wheel>"
)


def misplaced(path: str) -> str | None:
    """Why a bundle may not write ``path`` (a safe path, see :func:`unsafe_path`); ``None`` when it is one of the
    places a bundle fills. Nothing else — not the index, not the verified-files record, no dotfile — is writable."""
    parts = path.split("/")
    if any(part.startswith(".") for part in parts):
        return "names a hidden file"
    if path in ("mirror.toml", "install.sh", "tool/targets.json"):
        return None
    if len(parts) == 2 and parts[0] in ("lockfiles", "client-config"):
        return None
    if len(parts) == 2 and parts[0] == "tool" and parts[1].endswith(".txt"):
        return None
    if len(parts) == 3 and parts[:2] == ["tool", "wheels"] and parts[2].endswith(".whl"):
        return None
    if len(parts) == 4 and parts[:2] == ["wheelhouse", "files"]:
        parsed = classify(parts[3], parts[2])
        if parsed is not None and parsed[0] == parts[2]:
            return None
        return f"is not a distribution file of project {parts[2]!r}"
    return f"is not a place a bundle fills ({_LAYOUT})"


def bundle_id(contents: Sequence[Member], base: str | None) -> str:
    """Derived from what the bundle brings (and its base): the same state exported twice has the same id."""
    text = json.dumps({"base": base, "contents": [m.to_dict() for m in sorted(contents, key=lambda m: m.path)]})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- export ----------------------------------------------------------------------------------------------------


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
    spec: Spec  # the tool workspace (mirror.selfinstall.tool_spec), locked and fetched
    manifest: Manifest


def offline_spec(spec: Spec, targets: Sequence[Target]) -> str:
    """The spec as the offline side uses it: its upstream (for the record) and targets, the default layout."""
    lines = [
        f"{SPEC_MARKER} (offline-mirror {selfinstall.version()}): the offline side of a mirror.",
        "# It serves, checks and verifies what bundles bring; locking and fetching happen on the online side.",
        "",
        "[mirror]",
        f"upstream = {json.dumps(spec.upstream)}",
        'wheelhouse = "wheelhouse"',
        'lockfiles = "lockfiles"',
    ]
    for target in targets:
        lines += ["", "[[target]]", *(f"{key} = {json.dumps(value)}" for key, value in target.to_dict().items())]
    lines += ["", "[policy]", "build-wheels = false", ""]
    return "\n".join(lines)


def plan(
    spec: Spec,
    manifest: Manifest,
    *,
    client_files: Mapping[str, str] | None = None,
    tool: ToolPayload | None = None,
) -> list[Payload]:
    """Every member of a full bundle of the workspace (paths sorted); refuses when locked files are missing."""
    files_dir = spec.wheelhouse / "files"
    ready, skipped = verified_files(manifest, files_dir, purpose="bundled")
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        raise BundleError(
            f"{files_dir}: {len(skipped)} locked files are missing or do not match the lock ({shown});"
            " run 'mirror fetch' (or 'mirror check') first"
        )
    payloads = [_from_bytes("mirror.toml", offline_spec(spec, [t.target for t in manifest.targets]).encode())]
    from mirror.lockfile import outputs

    for name, text in outputs(manifest).items():
        path = spec.lockfiles / name
        data = path.read_bytes() if path.is_file() else text.encode()
        payloads.append(_from_bytes(f"lockfiles/{name}", data))
    for file in ready:
        path = files_dir / file.relpath
        member = Member(path=f"wheelhouse/files/{file.relpath}", size=path.stat().st_size, sha256=file.sha256)
        payloads.append(Payload(member=member, source=path))
    for name, text in sorted((client_files or {}).items()):
        payloads.append(_from_bytes(f"client-config/{name}", text.encode()))
    if tool is not None:
        payloads += _tool_payloads(tool)
    payloads.sort(key=lambda p: p.member.path)
    return payloads


def _tool_payloads(tool: ToolPayload) -> list[Payload]:
    out = [
        _from_bytes(f"tool/wheels/{tool.wheel.filename}", tool.wheel.data),
        _from_bytes("tool/targets.json", selfinstall.targets_json([t.target for t in tool.manifest.targets]).encode()),
        _from_bytes("install.sh", selfinstall.INSTALL_SH.encode()),
    ]
    files_dir = tool.spec.wheelhouse / "files"
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
        locked = (tool.spec.lockfiles / f"{entry.name}.txt").read_text(encoding="utf-8")
        text = selfinstall.requirements_file(entry.target, locked, tool.wheel)
        out.append(_from_bytes(f"tool/{entry.name}.txt", text.encode()))
    return out


def delta(payloads: Sequence[Payload], previous: BundleManifest) -> list[Payload]:
    """The payloads the previous bundle's contents lack (by path and sha256)."""
    known = {(m.path, m.sha256) for m in previous.contents}
    return [p for p in payloads if (p.member.path, p.member.sha256) not in known]


def default_compression() -> Compression:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return "gz"
    return "zst"


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

    def __init__(self, handle: BinaryIO, progress: BundleProgress) -> None:
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
    progress: BundleProgress | None = None,
) -> None:
    """Write the archive to a temporary name beside ``out`` and rename it; nothing is left on failure."""
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
            for payload in payloads:
                _add(tar, payload, mtime, progress)
    except OSError as exc:
        raise BundleError(f"{out}: cannot write: {exc.strerror or exc}") from None


def _add(tar: tarfile.TarFile, payload: Payload, mtime: int, progress: BundleProgress) -> None:
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


# --- reading -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_archive(bundle: Path) -> Iterator[tarfile.TarFile]:
    try:
        handle = bundle.open("rb")
    except FileNotFoundError:
        raise BundleError(f"{bundle}: no such file") from None
    except OSError as exc:
        raise BundleError(f"{bundle}: cannot read: {exc.strerror or exc}") from None
    with handle:
        magic = handle.read(4)
        handle.seek(0)
        stream: BinaryIO
        if magic.startswith(_GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[assignment]
        elif magic == _ZSTD_MAGIC:
            try:
                import zstandard
            except ImportError:
                raise BundleError(
                    f"{bundle}: zstd-compressed, and the zstandard module is not installed"
                    " (pip install zstandard, or export with --format gz)"
                ) from None
            stream = zstandard.ZstdDecompressor().stream_reader(handle, closefd=False)
        else:
            raise BundleError(f"{bundle}: not a bundle (expected a .tar.zst or .tar.gz archive)")
        damaged: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, *zlib_errors())
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                yield tar
        except damaged as exc:
            raise BundleError(f"{bundle}: damaged or truncated archive: {exc}") from None


def zlib_errors() -> tuple[type[Exception], ...]:
    """The decompressors' own errors (a truncated or corrupt stream), as one tuple for ``except``."""
    import zlib

    errors: list[type[Exception]] = [zlib.error, gzip.BadGzipFile]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def _read_manifest_member(tar: tarfile.TarFile, bundle: Path) -> BundleManifest:
    first = tar.next()
    if first is None or first.name != MANIFEST_MEMBER or not first.isreg():
        raise BundleError(f"{bundle}: the first member is not {MANIFEST_MEMBER} (not an offline-mirror bundle)")
    if first.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{bundle}: {MANIFEST_MEMBER} is {first.size} bytes; more than {MAX_MANIFEST_BYTES}")
    handle = tar.extractfile(first)
    assert handle is not None
    try:
        data = json.loads(handle.read())
    except ValueError as exc:
        raise BundleError(f"{bundle}: {MANIFEST_MEMBER}: not valid JSON: {exc}") from None
    return BundleManifest.from_dict(data, f"{bundle}: {MANIFEST_MEMBER}")


def read_manifest(path: Path) -> BundleManifest:
    """A bundle's manifest: from the archive itself or from the ``.manifest.json`` written beside it."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if magic.startswith(_GZIP_MAGIC) or magic == _ZSTD_MAGIC:
        with _open_archive(path) as tar:
            return _read_manifest_member(tar, path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a bundle manifest (JSON): {exc}") from None
    return BundleManifest.from_dict(data, str(path))


def _check_member(info: tarfile.TarInfo, bundle: Path, staging: Path) -> None:
    problem = unsafe_path(info.name)
    if problem:
        raise UnsafeMember(f"{bundle}: member {info.name!r}: {problem}; refusing the bundle")
    if info.issym() or info.islnk():
        raise UnsafeMember(f"{bundle}: member {info.name!r} is a link (to {info.linkname!r}); refusing the bundle")
    if not info.isreg():
        raise UnsafeMember(f"{bundle}: member {info.name!r} is not a regular file; refusing the bundle")
    data_filter = getattr(tarfile, "data_filter", None)  # Python >= 3.10.12; our own checks stand without it
    if data_filter is not None:
        try:
            data_filter(info, str(staging))
        except tarfile.FilterError as exc:
            raise UnsafeMember(f"{bundle}: member {info.name!r}: {exc}; refusing the bundle") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyResult:
    manifest: BundleManifest
    files: int
    nbytes: int


def read_bundle(
    bundle: Path,
    *,
    staging: Path | None = None,
    progress: BundleProgress | None = None,
    present: Callable[[Member], bool] | None = None,
) -> VerifyResult:
    """Read every member, checking it is safe and matches ``bundle.json``; write members under ``staging``.

    With no ``staging`` nothing is written (``mirror bundle verify``); members for which ``present`` is true (already
    in place with this sha256) are checked but not staged. Raises on the first problem.
    """
    progress = progress or NullProgress()
    with _open_archive(bundle) as tar:
        manifest = _read_manifest_member(tar, bundle)
        expected = {m.path: m for m in manifest.members}
        progress.start(len(expected), manifest.nbytes)
        seen: set[str] = set()
        where = staging or Path(tempfile.gettempdir()) / "bundle-verify"
        while (info := tar.next()) is not None:
            if info.isdir():
                problem = unsafe_path(info.name.rstrip("/"))
                if problem:
                    raise UnsafeMember(f"{bundle}: member {info.name!r}: {problem}; refusing the bundle")
                continue
            _check_member(info, bundle, where)
            member = expected.get(info.name)
            if member is None:
                raise BundleError(f"{bundle}: member {info.name!r} is not listed in {MANIFEST_MEMBER}")
            if info.name in seen:
                raise BundleError(f"{bundle}: member {info.name!r} appears twice")
            seen.add(info.name)
            if info.size != member.size:
                raise BundleError(
                    f"{bundle}: member {info.name!r} is {info.size} bytes; {MANIFEST_MEMBER} says {member.size}"
                )
            source = tar.extractfile(info)
            assert source is not None
            staged = staging / member.path if staging and not (present and present(member)) else None
            _copy_verified(source, member, staged, bundle, progress)
            progress.done(member.path)
        missing = sorted(set(expected) - seen)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise BundleError(f"{bundle}: {len(missing)} members listed in {MANIFEST_MEMBER} are missing: {shown}")
    return VerifyResult(manifest=manifest, files=len(seen), nbytes=manifest.nbytes)


def _copy_verified(
    source: IO[bytes], member: Member, destination: Path | None, bundle: Path, progress: BundleProgress
) -> None:
    digest = hashlib.sha256()
    sink: BinaryIO
    try:
        if destination is not None:
            destination.parent.mkdir(parents=True, exist_ok=True)
            sink = destination.open("xb")  # staging is fresh: an existing name means a duplicate, never followed
        else:
            sink = open(os.devnull, "wb")  # noqa: SIM115
        with sink:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
                progress.advance(len(chunk))
    except OSError as exc:
        raise BundleError(f"{destination}: cannot write: {exc.strerror or exc}; nothing was imported") from None
    if digest.hexdigest() != member.sha256:
        raise BundleError(
            f"{bundle}: member {member.path!r} has sha256 {digest.hexdigest()}, {MANIFEST_MEMBER} says"
            f" {member.sha256}: the bundle is damaged or was tampered with; nothing was imported"
        )


# --- import ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Workspace:
    """Where an import lands: ``root`` (mirror.toml, tool/, client-config/), the wheelhouse and the lockfiles."""

    root: Path
    wheelhouse: Path
    lockfiles: Path
    spec_written_by_import: bool  # False: a user's own mirror.toml is there; it is left alone

    @classmethod
    def at(cls, root: Path) -> Workspace:
        root = root.absolute()
        spec_path = root / "mirror.toml"
        if spec_path.is_file():
            text = spec_path.read_text(encoding="utf-8")
            spec = parse_spec(text, spec_path)
            return cls(
                root=root,
                wheelhouse=spec.wheelhouse,
                lockfiles=spec.lockfiles,
                spec_written_by_import=text.startswith(SPEC_MARKER),
            )
        return cls(root=root, wheelhouse=root / "wheelhouse", lockfiles=root / "lockfiles", spec_written_by_import=True)

    def destination(self, member: str) -> Path:
        if member.startswith("wheelhouse/"):
            return self.wheelhouse / member.removeprefix("wheelhouse/")
        if member.startswith("lockfiles/"):
            return self.lockfiles / member.removeprefix("lockfiles/")
        return self.root / member


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportedRecord:
    """``<wheelhouse>/.bundles.json``: every bundle imported here, in order."""

    path: Path
    entries: tuple[Mapping[str, object], ...] = ()

    @classmethod
    def load(cls, wheelhouse: Path) -> ImportedRecord:
        path = wheelhouse / IMPORTED
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
        entry = {"id": manifest.id, "base": manifest.base, "created": manifest.created, "file": name}
        return replace(self, entries=(*self.entries, entry))

    def save(self) -> None:
        _atomic.write_text(self.path, json.dumps({"bundles": list(self.entries)}, indent=1) + "\n")


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

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)


def merge(existing: Manifest | None, incoming: Manifest) -> Manifest:
    """The lock after an import: the bundle's targets replace same-named ones, others stay; files are the union
    (older files stay served, so clients still pinned to them keep installing)."""
    if existing is None:
        return incoming
    names = {t.name for t in incoming.targets}
    targets = (*incoming.targets, *(t for t in existing.targets if t.name not in names))
    return replace(incoming, targets=targets, files={**existing.files, **incoming.files})


def _existing_manifest(lockfiles: Path) -> Manifest | None:
    if not (lockfiles / MANIFEST).is_file():
        return None
    return load_manifest(lockfiles)


def _sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def import_bundle(
    bundle: Path,
    into: Path,
    *,
    progress: BundleProgress | None = None,
    index: Callable[[Manifest, Path], tuple[int, int]] | None = None,
) -> ImportResult:
    """Verify ``bundle`` completely in a staging directory, then merge it into the workspace at ``into``.

    ``index(manifest, wheelhouse)`` regenerates the index and returns (projects, files); the default is
    :func:`mirror.index.write_index`. Nothing under ``into`` changes unless every member verified.
    """
    workspace = Workspace.at(into)
    workspace.wheelhouse.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-import-", dir=workspace.wheelhouse))
    record = VerifiedRecord(workspace.wheelhouse / "files")

    def present(member: Member) -> bool:  # a file verified here with this sha256 need not be staged again
        relpath = member.path.removeprefix("wheelhouse/files/")
        return relpath != member.path and record.matches(relpath, member.sha256)

    try:
        verified = read_bundle(bundle, staging=staging, progress=progress, present=present)
        return _merge_in(bundle, verified.manifest, staging, workspace, index or _write_index)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_index(manifest: Manifest, wheelhouse: Path) -> tuple[int, int]:
    from mirror.index import write_index

    result = write_index(manifest, wheelhouse)
    return result.projects, result.files


def _merge_in(
    bundle: Path,
    manifest: BundleManifest,
    staging: Path,
    workspace: Workspace,
    index: Callable[[Manifest, Path], tuple[int, int]],
) -> ImportResult:
    record = ImportedRecord.load(workspace.wheelhouse)
    if manifest.base is not None and manifest.base not in record.ids:
        raise MissingBase(bundle, manifest.base)
    members = {m.path for m in manifest.members}
    # what a delta leaves out must be here already: the files its base brought
    absent = [
        m.path
        for m in manifest.contents
        if m.path not in members
        and m.path.startswith("wheelhouse/")
        and not _same_size(workspace.destination(m.path), m.size)
    ]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise BundleError(
            f"{bundle}: {len(absent)} files from its base bundle {manifest.base} are missing under"
            f" {workspace.wheelhouse}: {shown}; run 'mirror check' and import a full bundle"
        )

    incoming_lock = _staged_lock(bundle, manifest, staging)
    existing_lock = _existing_manifest(workspace.lockfiles)
    merged = merge(existing_lock, incoming_lock) if incoming_lock is not None else existing_lock
    staged_spec = _staged_spec(bundle, staging, workspace)

    # decide every move before making one: a refusal leaves the mirror untouched
    files_dir = workspace.wheelhouse / "files"
    verified = VerifiedRecord(files_dir)
    checked: set[str] = set()  # files/ paths hashed in this import (moved in, or found identical)
    added: list[str] = []
    replaced: list[str] = []
    unchanged = 0
    moves: list[tuple[Path, Path]] = []
    for member in manifest.members:
        if member.path == "mirror.toml" or member.path.startswith("lockfiles/"):
            continue  # written below from the merged lock and spec
        destination = workspace.destination(member.path)
        if destination.exists() and not destination.is_file():
            raise BundleError(f"{destination}: exists and is not a file; the bundle's {member.path} cannot go there")
        relpath = member.path.removeprefix("wheelhouse/files/")
        if relpath != member.path and verified.matches(relpath, member.sha256):
            current: str | None = member.sha256
        else:
            current = _sha256(destination) if destination.exists() else None
        if relpath != member.path:
            checked.add(relpath)
        if current == member.sha256:
            unchanged += 1
            continue
        if current is not None and member.path.startswith("wheelhouse/files/"):
            existing_entry = existing_lock.files.get(destination.name) if existing_lock else None
            if existing_entry is not None and existing_entry.built_from is None:
                raise BundleError(
                    f"{destination}: already here with sha256 {current}; the bundle brings sha256 {member.sha256}"
                    " under the same name. A published file never changes: refusing to replace it"
                )
        (replaced if current is not None else added).append(member.path)
        moves.append((staging / member.path, destination))

    lock_texts = _changed_lockfiles(merged, existing_lock, workspace.lockfiles) if merged is not None else {}
    lock_changed = bool(lock_texts)
    spec_text = _merged_spec_text(staged_spec, merged, workspace) if staged_spec is not None else None
    spec_changed = spec_text is not None and _text_differs(workspace.root / "mirror.toml", spec_text)
    already = manifest.id in record.ids
    if not moves and not lock_changed and not spec_changed and already:
        return ImportResult(
            manifest=manifest, added=(), replaced=(), unchanged=unchanged, projects=None, indexed_files=None,
            already_imported=True,
        )  # fmt: skip

    for source, destination in moves:
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(source, 0o755 if destination.suffix == ".sh" else 0o644)
        os.replace(source, destination)
    if merged is not None:
        for entry in merged.files.values():
            if entry.relpath in checked:
                verified.add(entry)  # hashed just now; files a delta's base brought were recorded then
        if files_dir.is_dir():
            verified.save()
        for name, text in lock_texts.items():  # the manifest last, as mirror lock writes them
            _atomic.write_text(workspace.lockfiles / name, text)
    if spec_text is not None and spec_changed:
        _atomic.write_text(workspace.root / "mirror.toml", spec_text)
    projects, files = index(merged, workspace.wheelhouse) if merged is not None else (0, 0)
    if not already:
        record.with_bundle(manifest, bundle.name).save()
    notes = []
    if staged_spec is not None and not workspace.spec_written_by_import:
        notes.append(f"{workspace.root / 'mirror.toml'} is your own spec: left as it is")
    return ImportResult(
        manifest=manifest,
        added=tuple(added),
        replaced=tuple(replaced),
        unchanged=unchanged,
        projects=projects,
        indexed_files=files,
        already_imported=already,
        notes=tuple(notes),
    )


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


def _changed_lockfiles(merged: Manifest, existing: Manifest | None, lockfiles: Path) -> dict[str, str]:
    """The lockfiles (name -> text) whose text the merged lock changes; none when the lock is the one here."""
    from mirror.lockfile import outputs

    if merged == existing:
        names = [MANIFEST, *(f"{t.name}{suffix}" for t in merged.targets for suffix in (".txt", ".build.txt"))]
        if all((lockfiles / name).is_file() for name in names):
            return {}  # rendering every lockfile of a large lock takes seconds; nothing would change
    return {name: text for name, text in outputs(merged).items() if _text_differs(lockfiles / name, text)}


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


def _staged_spec(bundle: Path, staging: Path, workspace: Workspace) -> Spec | None:
    path = staging / "mirror.toml"
    if not path.is_file():
        return None
    try:
        return parse_spec(path.read_text(encoding="utf-8"), workspace.root / "mirror.toml")
    except InvalidSpec as exc:
        raise BundleError(f"{bundle}: mirror.toml: {exc.key + ': ' if exc.key else ''}{exc.detail}") from None


def _merged_spec_text(staged: Spec, merged: Manifest | None, workspace: Workspace) -> str | None:
    """The offline spec to write: the bundle's, with the targets of the merged lock. ``None``: a user's spec."""
    if not workspace.spec_written_by_import:
        return None
    targets = [t.target for t in merged.targets] if merged is not None else list(staged.targets)
    return offline_spec(staged, targets)
