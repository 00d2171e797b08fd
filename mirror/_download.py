"""Download one file, verified and resumable: nothing unverified ever appears under its final name.

The body streams into ``.<filename>.part`` next to the destination. A dropped connection or a timeout is
retried with backoff, resuming with an HTTP ``Range`` request where the server supports it (a server that
answers 200 instead of 206 simply sends the whole file again). Once complete, the sha256 is compared with the
locked one; only a match is fsynced and renamed into place. A mismatch removes the partial file and raises an
error naming the file, the URL, and both hashes. A process killed mid-download leaves only the ``.part`` file,
which the next run resumes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from mirror._http import DEFAULT_TIMEOUT, request_error_reason
from mirror._verified import sha256_file
from mirror.errors import MirrorError

CHUNK = 1 << 16
ATTEMPTS = 5
BACKOFF = 0.5
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DownloadError(MirrorError):
    """A file could not be downloaded."""


class HashMismatch(DownloadError):
    """The downloaded bytes do not have the expected sha256."""


class _Transient(Exception):
    pass


def partial_path(dest: Path) -> Path:
    """Where an unfinished download of ``dest`` lives (hidden, never a distribution filename)."""
    return dest.with_name(f".{dest.name}.part")


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable."""
    with contextlib.suppress(OSError):  # not every platform/filesystem can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def download(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    attempts: int = ATTEMPTS,
    on_bytes: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    sync_directory: bool = True,
) -> str:
    """Download ``url`` to ``dest``, verifying ``sha256`` (when given) before the file takes its name.

    Returns the content's sha256 (hashed while streaming). ``file://`` URLs are copied the same way. With
    ``sync_directory=False`` the caller fsyncs ``dest.parent`` itself (once for many files).
    """
    partial = partial_path(dest)
    try:
        actual = _download(
            session,
            url,
            dest,
            partial,
            size=size,
            timeout=timeout,
            attempts=attempts,
            advance=on_bytes or (lambda n: None),
            sleep=sleep,
        )
    except requests.RequestException as exc:  # not a transient one: a malformed URL, too many redirects, ...
        raise DownloadError(f"{dest.name}: cannot download {url}: {request_error_reason(exc)}") from None
    except OSError as exc:  # writing here failed (a full disk, a read-only directory): free what we took
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        hint = "; free some space and run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise DownloadError(f"{dest.name}: cannot write {partial}: {reason}{hint}") from None
    if sha256 is not None and actual != sha256.lower():
        partial.unlink(missing_ok=True)
        raise HashMismatch(f"{dest.name}: {url} has sha256 {actual}, expected {sha256.lower()}")
    try:
        os.replace(partial, dest)
    except OSError as exc:
        raise DownloadError(f"{dest.name}: cannot rename {partial} into place: {exc.strerror or exc}") from None
    if sync_directory:
        fsync_directory(dest.parent)
    return actual


def _download(
    session: requests.Session,
    url: str,
    dest: Path,
    partial: Path,
    *,
    size: int | None,
    timeout: tuple[float, float],
    attempts: int,
    advance: Callable[[int], None],
    sleep: Callable[[float], None],
) -> str:
    """The sha256 of the complete ``partial`` file, downloaded (with retries) or copied from a ``file:`` URL."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    actual = ""
    if urlsplit(url).scheme == "file":
        actual = _copy(Path(url2pathname(urlsplit(url).path)), partial, dest.name, url, advance)
    else:
        last_error = "no attempt made"
        for attempt in range(1, attempts + 1):
            try:
                actual = _attempt(session, url, partial, dest.name, size=size, timeout=timeout, advance=advance)
                break
            except _Transient as exc:
                last_error = str(exc)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                Urllib3Error,
            ) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                sleep(BACKOFF * 2 ** (attempt - 1))
        else:
            raise DownloadError(f"{dest.name}: cannot download {url} after {attempts} attempts: {last_error}")
    return actual


def _attempt(
    session: requests.Session,
    url: str,
    partial: Path,
    name: str,
    *,
    size: int | None,
    timeout: tuple[float, float],
    advance: Callable[[int], None],
) -> str:
    """One GET (resuming ``partial`` when it holds a prefix); the sha256 of the complete partial file."""
    offset = partial.stat().st_size if partial.exists() else 0
    if size is not None and offset > size:
        partial.unlink()
        offset = 0
    if size is not None and offset == size and offset > 0:
        return sha256_file(partial)  # complete already (killed before the rename): the hash check decides
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
        status = response.status_code
        if status == 416 and offset:
            partial.unlink()  # our partial file is not a prefix of theirs: start again
            raise _Transient(f"HTTP 416 for a resumed download of {name}")
        if status in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {status}")
        if status == 206 and offset:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                partial.unlink()
                raise _Transient(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
            mode = "ab"
            digest = _prefix_digest(partial)
            advance(offset)
        elif status == 200:
            mode = "wb"  # the server ignored Range (or there was nothing to resume)
            digest = hashlib.sha256()
        else:
            raise DownloadError(f"{name}: {url} answered HTTP {status}")
        announced = response.headers.get("Content-Length", "")
        if size is not None and announced.isdigit() and (0 if mode == "wb" else offset) + int(announced) > size:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{name}: {url} announces {int(announced)} bytes; the lock says {size}")
        # Count the bytes ourselves instead of letting urllib3 raise on a short body: it would drop what it had
        # already read, and those bytes are what a Range request resumes from.
        raw = response.raw
        if hasattr(raw, "enforce_content_length"):
            raw.enforce_content_length = False
        limit = None if size is None else size - (0 if mode == "wb" else offset)
        with partial.open(mode) as out:
            try:
                for chunk in response.iter_content(CHUNK):
                    if limit is not None:
                        limit -= len(chunk)
                        if limit < 0:  # an endless or oversized body: stop before it fills the disk
                            break
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
            finally:
                out.flush()
                os.fsync(out.fileno())
        if limit is not None and limit < 0:
            partial.unlink()
            raise DownloadError(f"{name}: {url} sent more than the {size} bytes the lock says")
        received = raw.tell() if hasattr(raw, "tell") else None
        if announced.isdigit() and received is not None and received < int(announced):
            raise _Transient(f"connection closed after {received} of {announced} bytes")
        if limit and not announced.isdigit():  # no length and short of the locked size: resume like a drop
            raise _Transient(f"connection closed {limit} bytes short of the {size} the lock says")
    # A complete response that is not the locked file is left to the hash check.
    return digest.hexdigest()


def _prefix_digest(partial: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with partial.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest


def _copy(source: Path, partial: Path, name: str, url: str, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    if source.exists() and not source.is_file():  # a device (/dev/zero), a FIFO or a directory
        raise DownloadError(f"{name}: {url} is not a regular file")
    try:
        with source.open("rb") as handle, partial.open("wb") as out:
            while chunk := handle.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{name}: cannot read {url}: no such file") from None
    return digest.hexdigest()


def download_verified(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> str:
    """:func:`download` with the defaults (kept for callers that need nothing else)."""
    return download(session, url, dest, sha256=sha256, timeout=timeout)


def copy_verified(source: Path, dest: Path, *, sha256: str) -> None:
    """Copy a local file into place, verified like a download."""
    partial = partial_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, partial)
    actual = sha256_file(partial)
    if actual != sha256:
        partial.unlink(missing_ok=True)
        raise HashMismatch(f"{dest.name}: {source} has sha256 {actual}, expected {sha256}")
    os.replace(partial, dest)
