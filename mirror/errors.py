"""The one error root of offline-mirror.

Every failure the library reports is a :class:`MirrorError`; the CLI turns it into a one-line message and a
non-zero exit in one place. Foreign exceptions (OSError, tomllib, requests, subprocess) are wrapped at the
boundary where they happen, with the file, key or package they concern.
"""

from __future__ import annotations


class MirrorError(Exception):
    """Root of every error offline-mirror reports to the user."""


class InvalidSpec(MirrorError):
    """mirror.toml (or a value given on the command line in its place) is wrong.

    The message starts with the key path, e.g. ``target[1].platform: 'linux/amd65' is not a known platform``.
    """

    def __init__(self, key: str, message: str, *, file: str | None = None) -> None:
        self.key = key
        self.file = file
        self.detail = message
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{key}: {message}" if key else f"{where}{message}")


class InvalidTarget(InvalidSpec):
    """A target platform / Python description is not one offline-mirror knows."""
