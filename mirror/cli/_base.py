"""What every ``mirror`` command shares: the click group that turns a MirrorError into one line, ``--spec``,
opening the workspace, printing lines."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mirror import __version__
from mirror._console import Reporter
from mirror.errors import InvalidSpec, MirrorError
from mirror.spec import SPEC_FILENAME
from mirror.targets import Target

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    from mirror.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])
DIR = click.Path(path_type=Path, file_okay=False)
FILE = click.Path(path_type=Path, dir_okay=False)
EXISTING_DIR = click.Path(path_type=Path, file_okay=False, exists=True)
EXISTING_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


class _Group(click.Group):
    """Turns the library's one error root into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MirrorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:  # the machine said no where the library did not expect it: still one line
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)


def spec_option(func: F) -> F:
    """``--spec PATH``: the workspace's mirror.toml (relative paths in it are relative to its directory)."""
    return click.option(
        "--spec",
        "spec_path",
        type=FILE,
        default=SPEC_FILENAME,
        show_default=True,
        envvar="MIRROR_SPEC",
        help="The workspace spec; relative paths in it resolve against its directory.",
    )(func)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="offline-mirror")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Mirror Python packages for networks with no route to PyPI.

    Lock for every target platform (build requirements included), fetch, index, serve, configure clients,
    and prove that installs and builds work offline.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:  # urllib3 announces every retry; the final error says what failed
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def echo_lines(lines: Iterable[str], *, err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


def open_workspace(spec_path: Path, progress: Reporter) -> Workspace:
    from mirror.workspace import Workspace

    return Workspace.open(spec_path, progress=progress)


def parse_target_option(value: str) -> Target:
    """``PLATFORM[:PYTHON]``, e.g. ``linux/arm64:3.12`` or ``manylinux_2_28_aarch64:3.11``."""
    platform, _, python = value.partition(":")
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        return Target.create(platform, python)
    except InvalidSpec as exc:
        raise InvalidSpec("--target", f"{value!r}: {exc.detail}") from None
