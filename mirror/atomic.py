"""Write files so that nothing half-written ever appears under its final name.

Content goes to a temporary file in the destination directory, is flushed and fsynced, then renamed over the
final name (``os.replace`` is atomic on POSIX and Windows within one filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mirror.errors import MirrorError


class WriteError(MirrorError, OSError):
    """A file could not be written (a full disk, a read-only directory): one line naming it.

    Also an OSError, so callers that already handle OSError keep working.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.filename = str(path)
        hint = "; free some space and run again" if cause.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        self.message = f"cannot write {path}: {cause.strerror or cause}{hint}"

    def __str__(self) -> str:
        return self.message


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file object; on success it replaces ``path``, on any error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Atomically write ``data`` to ``path``; :class:`WriteError` if it cannot be (nothing is left behind)."""
    try:
        with atomic_writer(path, mode=mode) as handle:
            handle.write(data)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from None


def write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"), mode=mode)
