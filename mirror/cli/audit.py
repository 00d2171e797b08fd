"""mirror audit: the lock against an OSV export of PyPI, offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mirror._console import Reporter
from mirror.cli._base import echo_lines, main, open_workspace, spec_option


@main.command()
@spec_option
@click.option(
    "--osv",
    type=click.Path(path_type=Path),  # not exists=True: a missing export is a one-line error too
    default=None,
    metavar="PATH",
    help="osv.dev's PyPI all.zip or a directory of its records (default: the one a bundle carried here).",
)
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit(spec_path: Path, osv: Path | None, targets: tuple[str, ...], as_json: bool) -> None:
    """Check every locked package against known advisories in an OSV export (no network); exit 1 if any is affected.

    Shows each advisory affecting a locked version: its id and aliases (CVEs), the smallest fixed version above
    the locked one, whether the package is installed (runtime) or only needed to build, and the targets; and the
    export's date (its newest record): advisories published after it are not known to this audit.
    """
    result = open_workspace(spec_path, Reporter()).audit(osv, targets)
    echo_lines(result.warnings(), err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        echo_lines(result.render())
    if result.affected:
        raise SystemExit(1)
