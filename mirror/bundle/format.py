"""The bundle format: ``bundle.json`` (:class:`BundleManifest`), what a member may be, and reading an archive.

An archive (``.tar.zst`` when :mod:`zstandard` is importable, else ``.tar.gz``) whose first member is
``bundle.json``: the bundle's id, its base's id for a delta, the tool version, every member's path, size and
sha256, and the complete contents of the mirror the bundle brings up to date. :func:`read_bundle` reads every
member, refusing an unsafe one (tarfile's ``data`` filter, then our own checks) and any that does not match
``bundle.json``; it stages them for an import or only checks them (``mirror bundle verify``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

from mirror import selfinstall
from mirror._filenames import classify
from mirror._records import Fields, fields_dict
from mirror._units import human_size
from mirror.errors import MirrorError
from mirror.layout import ADVISORIES
from mirror.progress import NullProgress, Progress
from mirror.sbom import SbomSummary, is_sbom, summarize
from mirror.spec import Spec
from mirror.targets import Target

FORMAT = "offline-mirror-bundle"
FORMAT_VERSION = 1
MANIFEST_MEMBER = "bundle.json"
SPEC_MARKER = "# Written by 'mirror bundle import'"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_PATH = 1024
CHUNK = 1024 * 1024
Compression = Literal["zst", "gz"]
SUFFIXES: dict[str, Compression] = {".tar.zst": "zst", ".tar.gz": "gz", ".tgz": "gz"}

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


def offline_spec(spec: Spec, targets: Sequence[Target], *, trust: Path | None = None) -> str:
    """The spec as the offline side uses it: its upstream (for the record) and targets, the default layout, and
    the offline side's own ``trust`` file (every import must then be signed by a key it lists)."""
    lines = [
        f"{SPEC_MARKER} (offline-mirror {selfinstall.version()}): the offline side of a mirror.",
        "# It serves, checks and verifies what bundles bring; locking and fetching happen on the online side.",
        "",
        "[mirror]",
        f"upstream = {json.dumps(spec.upstream)}",
        'wheelhouse = "wheelhouse"',
        'lockfiles = "lockfiles"',
        *([f"trust = {json.dumps(str(trust))}"] if trust is not None else []),
    ]
    for target in targets:
        lines += ["", "[[target]]", *(f"{key} = {json.dumps(value)}" for key, value in target.to_dict().items())]
    lines += ["", "[policy]", "build-wheels = false", ""]
    return "\n".join(lines)


def default_compression() -> Compression:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return "gz"
    return "zst"


def bundle_path(out: Path, fmt: str) -> tuple[Path, Compression]:
    """The archive's path and compression for ``--format`` (auto, zst or gz): a known suffix of ``out`` decides;
    otherwise the format's suffix is appended (``auto``: zst when zstandard is installed, else gz)."""
    suffix = next((s for s in SUFFIXES if out.name.endswith(s)), None)
    if suffix is not None:
        named = SUFFIXES[suffix]
        if fmt != "auto" and fmt != named:
            raise BundleError(f"{out}: the name says .{named}, --format says {fmt}")
        return out, named
    compression: Compression = default_compression() if fmt == "auto" else ("zst" if fmt == "zst" else "gz")
    return out.with_name(f"{out.name}.tar.{compression}"), compression


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return fields_dict(self)


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

        fields = Fields(fail, shown="")
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
        tool_version = fields.string(tool.get("version") if isinstance(tool, dict) else None, "tool.version")
        compression = data.get("compression")
        if compression not in ("zst", "gz"):
            raise fail("compression", f"expected 'zst' or 'gz', got {compression!r}")

        def members(key: str) -> tuple[Member, ...]:
            out, seen = [], set()
            for i, value in enumerate(fields.array(data.get(key), key)):
                at = f"{key}[{i}]"
                item = fields.table(value, at, what="an object with path, size and sha256")
                path = fields.string(item.get("path"), at, "path")
                problem = unsafe_path(path) or misplaced(path)
                if problem:
                    raise fail(f"{at}.path", f"{path!r}: {problem}")
                if path in seen:
                    raise fail(f"{at}.path", f"{path!r} is listed twice")
                seen.add(path)
                size = fields.count(item.get("size"), at, "size", shown="repr")
                sha256 = item.get("sha256")
                if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
                    raise fail(f"{at}.sha256", f"expected a lowercase hex sha256, got {sha256!r}")
                out.append(Member(path=path, size=size, sha256=sha256))
            return tuple(out)

        created = data.get("created")
        manifest = cls(
            id=given_id,
            base=base,
            created=created if isinstance(created, str) else "",
            tool_version=tool_version,
            compression=compression,
            targets=tuple(fields.strings(data.get("targets"), "targets")),
            tool_targets=tuple(fields.strings(data.get("tool_targets"), "tool_targets")),
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
    " client-config/<file>, tool/targets.json, tool/<target>.txt, tool/wheels/<wheel> or advisories/osv-pypi.zip"
)


def misplaced(path: str) -> str | None:
    """Why a bundle may not write ``path`` (a safe path, see :func:`unsafe_path`); ``None`` when it is one of the
    places a bundle fills. Nothing else — not the index, not the verified-files record, no dotfile — is writable."""
    parts = path.split("/")
    if any(part.startswith(".") for part in parts):
        return "names a hidden file"
    if path in ("mirror.toml", "install.sh", "tool/targets.json", ADVISORIES):
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


def _read_manifest_member(tar: tarfile.TarFile, bundle: Path) -> tuple[BundleManifest, bytes]:
    first = tar.next()
    if first is None or first.name != MANIFEST_MEMBER or not first.isreg():
        raise BundleError(f"{bundle}: the first member is not {MANIFEST_MEMBER} (not an offline-mirror bundle)")
    if first.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{bundle}: {MANIFEST_MEMBER} is {first.size} bytes; more than {MAX_MANIFEST_BYTES}")
    handle = tar.extractfile(first)
    assert handle is not None
    raw = handle.read()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BundleError(f"{bundle}: {MANIFEST_MEMBER}: not valid JSON: {exc}") from None
    return BundleManifest.from_dict(data, f"{bundle}: {MANIFEST_MEMBER}"), raw


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
            return _read_manifest_member(tar, path)[0]
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
    signed: bool = False  # the bundle carries a signature
    signer: str | None = None  # who signed it, when the signature was checked against a trust file
    sboms: tuple[SbomSummary, ...] = ()  # what the SBOMs it carries list (lockfiles/<target>.cdx.json)

    def render(self, bundle: Path) -> str:
        manifest = self.manifest
        base = f" on {manifest.base}" if manifest.base else ""
        if self.signer is not None:
            signature = f"; signed by {self.signer}"
        else:
            signature = "; signed (not checked: give --trust ALLOWED_SIGNERS)" if self.signed else "; not signed"
        return (
            f"{bundle}: ok — {manifest.kind} bundle {manifest.id}{base}, {self.files} members"
            f" ({human_size(self.nbytes)}), every sha256 matches; offline-mirror {manifest.tool_version},"
            f" targets: {', '.join(manifest.targets) or '-'}{signature}"
        ) + "".join(f"\n  {summary.render()}" for summary in self.sboms)


def read_bundle(
    bundle: Path,
    *,
    staging: Path | None = None,
    progress: Progress | None = None,
    present: Callable[[Member], bool] | None = None,
    trust: Callable[[bytes, bytes | None], str] | None = None,
) -> VerifyResult:
    """Read every member, checking it is safe and matches ``bundle.json``; write members under ``staging``.

    With no ``staging`` nothing is written (``mirror bundle verify``); members for which ``present`` is true (already
    in place with this sha256) are checked but not staged. ``trust(bundle.json, signature or None)`` returns the
    signer or raises: it runs before any other member is read. Raises on the first problem.
    """
    from mirror.bundle.signing import MAX_SIGNATURE_BYTES, SIGNATURE_MEMBER

    progress = progress or NullProgress()
    with _open_archive(bundle) as tar:
        manifest, raw = _read_manifest_member(tar, bundle)
        expected = {m.path: m for m in manifest.members}
        progress.start(len(expected), manifest.nbytes)
        seen: set[str] = set()
        sboms: list[SbomSummary] = []
        where = staging or Path(tempfile.gettempdir()) / "bundle-verify"
        info = tar.next()
        signature = None
        if info is not None and info.name == SIGNATURE_MEMBER:
            _check_member(info, bundle, where)
            if info.size > MAX_SIGNATURE_BYTES:
                raise BundleError(f"{bundle}: {SIGNATURE_MEMBER} is {info.size} bytes; more than {MAX_SIGNATURE_BYTES}")
            handle = tar.extractfile(info)
            assert handle is not None
            signature = handle.read()
            info = tar.next()
        try:
            signer = trust(raw, signature) if trust is not None else None
        except BundleError as exc:
            raise type(exc)(f"{bundle}: {exc}") from None
        # tar.next() once more after the end would seek backwards in the stream: a delta may have no members at all
        members = itertools.chain([info], iter(tar.next, None)) if info is not None else iter(())
        for entry in members:
            if entry.isdir():
                problem = unsafe_path(entry.name.rstrip("/"))
                if problem:
                    raise UnsafeMember(f"{bundle}: member {entry.name!r}: {problem}; refusing the bundle")
                continue
            _check_member(entry, bundle, where)
            member = expected.get(entry.name)
            if member is None:
                raise BundleError(f"{bundle}: member {entry.name!r} is not listed in {MANIFEST_MEMBER}")
            if entry.name in seen:
                raise BundleError(f"{bundle}: member {entry.name!r} appears twice")
            seen.add(entry.name)
            if entry.size != member.size:
                raise BundleError(
                    f"{bundle}: member {entry.name!r} is {entry.size} bytes; {MANIFEST_MEMBER} says {member.size}"
                )
            source = tar.extractfile(entry)
            assert source is not None
            staged = staging / member.path if staging and not (present and present(member)) else None
            if is_sbom(member.path):  # small: read whole, summarized once its sha256 matched
                data = source.read()
                _copy_verified(io.BytesIO(data), member, staged, bundle, progress)
                sboms.append(summarize(data, f"{bundle}: {member.path}"))
            else:
                _copy_verified(source, member, staged, bundle, progress)
            progress.done(member.path)
        missing = sorted(set(expected) - seen)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise BundleError(f"{bundle}: {len(missing)} members listed in {MANIFEST_MEMBER} are missing: {shown}")
    return VerifyResult(
        manifest=manifest,
        files=len(seen),
        nbytes=manifest.nbytes,
        signed=signature is not None,
        signer=signer,
        sboms=tuple(sboms),
    )


def _copy_verified(
    source: IO[bytes], member: Member, destination: Path | None, bundle: Path, progress: Progress
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
