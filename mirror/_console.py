"""The CLI's terminal: how the library's :class:`~mirror.progress.Progress` is shown.

Only :mod:`mirror.cli` uses it; together they are the only code that prints.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal

import click

from mirror._units import human_size

if TYPE_CHECKING:
    from rich.progress import Progress as Bar


class Reporter:
    """The CLI's :class:`~mirror.progress.Progress`: messages on stderr; a transfer of many files as a bar on a
    terminal, and otherwise as one line per file (``lines``, for fetch in CI logs) or not at all (``quiet``: a
    bundle holds thousands of members)."""

    def __init__(self, transfers: Literal["lines", "quiet"] = "quiet", description: str = "", *, bar: bool = True):
        self._lines = transfers == "lines"
        self._description = description
        self._use_bar = bar and sys.stderr.isatty()
        self._bar: Bar | None = None
        self._task: Any = None
        self._files = 0
        self._done = 0

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def message(self, text: str) -> None:
        self._stop()
        click.echo(text, err=True)

    def start(self, files: int, nbytes: int) -> None:
        self._files, self._done = files, 0
        if self._use_bar:
            self._stop()
            self._bar, self._task = new_bar(self._description)
            self._bar.start()
            self._bar.update(self._task, total=nbytes or None, description=f"0/{files} files")
        elif self._lines and files:
            click.echo(f"fetching {files} files ({human_size(nbytes)})", err=True)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, nbytes)

    def done(self, name: str) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self._done}/{self._files} files")
        elif self._lines:
            click.echo(f"  fetched {name}", err=True)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def new_bar(description: str) -> tuple[Bar, Any]:
    """A transient progress bar (files, bytes, rate, ETA) on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    return bar, bar.add_task(description, total=None)
