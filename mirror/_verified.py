"""What is verified in a wheelhouse: sha256 of files, and the record that spares re-hashing unchanged ones.

``files/.verified.json`` remembers each file verified against its locked sha256 with the size and mtime it had
then; while those are unchanged the file is trusted without reading it (``mirror check`` re-hashes everything on
demand). Used by fetch, index, publish, verify and bundle import; it needs no HTTP stack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from mirror import _atomic
from mirror.manifest import FileEntry, Manifest

log = logging.getLogger(__name__)

RECORD = ".verified.json"
RECORD_VERSION = 1


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class VerifiedRecord:
    """``files/.verified.json``: files already verified, trusted while their size and mtime are unchanged."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.path = files_dir / RECORD
        self._root = f"{files_dir}{os.sep}"
        self._entries: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == RECORD_VERSION and isinstance(data.get("files"), dict):
                self._entries = data["files"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError):
            log.warning("%s is damaged; files will be re-hashed", self.path)

    def fresh(self, file: FileEntry) -> bool:
        """Whether the file is present and was verified with this sha256 since it last changed."""
        return self.matches(file.relpath, file.sha256)

    def matches(self, relpath: str, sha256: str) -> bool:
        """Whether ``files/<relpath>`` is present and was verified with ``sha256`` since it last changed."""
        return self.fresh_stat(relpath, sha256) is not None

    def fresh_stat(self, relpath: str, sha256: str) -> os.stat_result | None:
        """The file's stat when it was verified with ``sha256`` since it last changed; else ``None``."""
        try:
            stat = os.stat(f"{self._root}{relpath}")  # a str: pathlib would cost as much as the stat
        except FileNotFoundError:
            return None
        with self._lock:
            entry = self._entries.get(relpath)
        if entry == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
            return stat
        return None

    def add(self, file: FileEntry) -> None:
        stat = (self.files_dir / file.relpath).stat()
        with self._lock:
            self._entries[file.relpath] = {"sha256": file.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def forget(self, file: FileEntry) -> None:
        with self._lock:
            self._entries.pop(file.relpath, None)

    def save(self) -> None:
        with self._lock:
            payload = {"version": RECORD_VERSION, "files": dict(sorted(self._entries.items()))}
        try:
            _atomic.write_text(self.path, json.dumps(payload, separators=(",", ":")) + "\n")  # the C encoder
        except OSError as exc:  # a full disk: the record is a cache, files are re-hashed next time
            log.warning("cannot write %s (%s); files will be re-hashed", self.path, exc.strerror or exc)


def verified_files(manifest: Manifest, files_dir: Path, *, purpose: str) -> tuple[list[FileEntry], list[str]]:
    """The locked files present and verified under ``files_dir`` (sorted), and the names of the others.

    Verification uses the record (re-hashing only files that changed since); ``purpose`` words the warning for a
    file whose content is not the locked one ("indexed", "published").
    """
    ready, skipped = verified_stats(manifest, files_dir, purpose=purpose)
    return [file for file, _ in ready], skipped


def verified_stats(
    manifest: Manifest, files_dir: Path, *, purpose: str
) -> tuple[list[tuple[FileEntry, os.stat_result]], list[str]]:
    """:func:`verified_files` with each file's ``os.stat`` (so that a caller needing sizes does not stat again)."""
    record = VerifiedRecord(files_dir)
    ready: list[tuple[FileEntry, os.stat_result]] = []
    skipped: list[str] = []
    changed = False
    for name in sorted(manifest.files):
        file = manifest.files[name]
        stat = record.fresh_stat(file.relpath, file.sha256)  # one stat (10,000 files: the index's no-change time)
        if stat is None:
            path = files_dir / file.relpath
            if not path.is_file():
                skipped.append(name)
                continue
            if sha256_file(path) != file.sha256:
                log.warning("%s does not match its locked sha256; not %s (run mirror check)", name, purpose)
                skipped.append(name)
                continue
            record.add(file)
            changed = True
            stat = path.stat()
        ready.append((file, stat))
    if changed:
        record.save()
    return ready, skipped
