"""The one way the library reports while it works: an injected :class:`Progress`.

The library never prints. A stage says what it is doing with :meth:`Progress.message` ("linux-amd64-cp311:
resolving") and reports a transfer of many files — a fetch, a bundle written, verified or imported — with
:meth:`~Progress.start`, :meth:`~Progress.advance` and :meth:`~Progress.done`. The CLI turns these into lines
on stderr or a progress bar on a terminal; tests and library users pass :class:`NullProgress` or their own.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What a stage reports while it runs."""

    def message(self, text: str) -> None:
        """One line about what is happening now."""

    def start(self, files: int, nbytes: int) -> None:
        """A transfer of ``files`` files, ``nbytes`` bytes in all (0 when unknown), begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the transfer went through."""

    def done(self, name: str) -> None:
        """One file of the transfer (a filename or a bundle member's path) is complete."""


class NullProgress:
    """Reports nothing."""

    def message(self, text: str) -> None:
        pass

    def start(self, files: int, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def done(self, name: str) -> None:
        pass
