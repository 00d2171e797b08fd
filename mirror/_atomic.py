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
from concurrent.futures import ThreadPoolExecutor
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


class Batch:
    """Many files written as one step, for the index's thousands of small files.

    Each file goes to a temporary file beside its destination at once; :meth:`commit` fsyncs them all together
    (a thread pool: the device sees one wave of flushes, not one flush after another) and then renames them into
    place in the order they were written. The guarantee is :func:`atomic_writer`'s -- nothing half-written under a
    final name -- and nothing is visible before the commit. Any error, or leaving the ``with`` block by an
    exception, removes every temporary file not yet renamed and raises :class:`WriteError` naming the file.

    A process killed between the first write and the commit leaves its temporary files (``.<name>.*.part``) behind;
    ``marker`` (created before the first one, removed once none is left) tells the next run to look for them.
    """

    def __init__(self, *, marker: Path | None = None, jobs: int = 16) -> None:
        self._marker = marker
        self._jobs = jobs
        self._staged: list[tuple[Path, Path, int]] = []  # (temporary, final, mode)
        self._dirs: set[Path] = set()  # directories known to exist (a mkdir per file costs a syscall each)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def write_bytes(self, path: Path, data: bytes, *, mode: int = 0o644) -> os.stat_result:
        """Stage ``data`` for ``path``; the staged file's stat (its size and mtime are the final file's)."""
        try:
            if self._marker is not None and not self._staged:
                self._marker.parent.mkdir(parents=True, exist_ok=True)
                self._marker.touch()
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            self._staged.append((Path(tmp_name), path, mode))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                return os.fstat(handle.fileno())
        except OSError as exc:
            self.discard()
            raise WriteError(path, exc) from None

    def write_text(self, path: Path, text: str, *, mode: int = 0o644) -> os.stat_result:
        return self.write_bytes(path, text.encode("utf-8"), mode=mode)

    def commit(self) -> None:
        """fsync every staged file, then rename each into place; :class:`WriteError` (and nothing left) if not."""
        staged = self._staged
        with ThreadPoolExecutor(max_workers=self._jobs) as pool:
            errors = list(pool.map(_fsync, [tmp for tmp, _, _ in staged]))
        for (_, final, _), error in zip(staged, errors, strict=True):
            if error is not None:
                self.discard()
                raise WriteError(final, error)
        for done, (tmp, final, mode) in enumerate(staged):
            try:
                os.chmod(tmp, mode)
                os.replace(tmp, final)
            except OSError as exc:
                self._staged = staged[done:]
                self.discard()
                raise WriteError(final, exc) from None
        self._staged = []
        self._unmark()

    def discard(self) -> None:
        """Remove every temporary file not yet renamed."""
        for tmp, _, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged = []
        self._unmark()

    def _unmark(self) -> None:
        if self._marker is not None:
            with contextlib.suppress(OSError):
                self._marker.unlink()


def _fsync(path: Path) -> OSError | None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc
    return None
