"""Download one file, verified: nothing unverified ever appears under its final name.

The body streams into a temporary file in the destination directory while it is hashed; only when the sha256
matches is the file fsynced and renamed into place. A mismatch removes the temporary file and raises an error
naming the file, the URL, and both hashes.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests

from mirror import atomic
from mirror.errors import MirrorError
from mirror.http import DEFAULT_TIMEOUT

CHUNK = 1 << 16


class DownloadError(MirrorError):
    """A file could not be downloaded, or its bytes are not the locked ones."""


class HashMismatch(DownloadError):
    """The downloaded bytes do not have the expected sha256."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> str:
    """Download ``url`` to ``dest``; verify ``sha256`` (when given) before the file takes its name.

    Returns the sha256 of the content. ``file://`` URLs are copied.
    """
    digest = hashlib.sha256()
    try:
        with atomic.atomic_writer(dest) as out:
            if urlsplit(url).scheme == "file":
                with Path(url2pathname(urlsplit(url).path)).open("rb") as source:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            else:
                with session.get(url, stream=True, timeout=timeout) as response:
                    if response.status_code != 200:
                        raise DownloadError(f"{dest.name}: {url} answered HTTP {response.status_code}")
                    for chunk in response.iter_content(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            actual = digest.hexdigest()
            if sha256 is not None and actual != sha256.lower():
                raise HashMismatch(f"{dest.name}: {url} has sha256 {actual}, expected {sha256.lower()}")
    except requests.RequestException as exc:
        raise DownloadError(f"{dest.name}: cannot download {url}: {exc}") from None
    except FileNotFoundError as exc:
        raise DownloadError(f"{dest.name}: cannot read {url}: {exc.strerror}") from None
    return digest.hexdigest()


def copy_verified(source: Path, dest: Path, *, sha256: str) -> None:
    """Copy a local file into place, verified like a download."""
    digest = hashlib.sha256()
    with atomic.atomic_writer(dest) as out, source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != sha256:
            raise HashMismatch(f"{dest.name}: {source} has sha256 {digest.hexdigest()}, expected {sha256}")
    shutil.copystat(source, dest)
