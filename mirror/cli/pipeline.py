"""mirror init, targets, lock, fetch, check, index, sync: the pipeline's stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror._console import Reporter
from mirror.cli._base import (
    DIR,
    F,
    echo_lines,
    main,
    open_workspace,
    parse_target_option,
    spec_option,
)
from mirror.spec import SPEC_FILENAME, init_spec, load_spec

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    from mirror.index import IndexResult
    from mirror.lock import LockOptions
    from mirror.workspace import FetchOutcome


# -- mirror init ----------------------------------------------------------------------------------------------


@main.command()
@click.argument("directory", type=DIR, default=".")
@click.option(
    "-t",
    "--target",
    "target_values",
    multiple=True,
    metavar="PLATFORM[:PYTHON]",
    help="Add a target, e.g. linux/arm64:3.12 (the host is always the first target).",
)
@click.option("-p", "--package", "packages", multiple=True, metavar="REQ", help="Add a requirement to mirror.")
@click.option("--upstream", default="https://pypi.org/simple", show_default=True, help="The index to mirror from.")
@click.option("--force", is_flag=True, help="Overwrite an existing mirror.toml.")
def init(
    directory: Path, target_values: tuple[str, ...], packages: tuple[str, ...], upstream: str, force: bool
) -> None:
    """Write a commented starter mirror.toml into DIRECTORY.

    The host is the first target. requirements.txt, pyproject.toml and uv.lock found in DIRECTORY become
    sources.
    """
    started = init_spec(
        directory,
        targets=[parse_target_option(v) for v in target_values],
        packages=packages,
        upstream=upstream,
        force=force,
    )
    path = started.path
    click.echo(f"wrote {path}")
    click.echo(f"  targets: {', '.join(t.name for t in started.targets)}")
    click.echo(f"  sources: {', '.join(started.sources) if started.sources else 'none yet: edit [sources]'}")
    spec_arg = "" if path == Path(SPEC_FILENAME) else f" --spec {path}"
    click.echo(f"next: mirror targets{spec_arg}")


# -- mirror targets -------------------------------------------------------------------------------------------


@main.command()
@spec_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--tags",
    "tag_limit",
    type=click.IntRange(min=0),
    default=None,
    help="Tags to show (0: all) [default: 8; --json: all].",
)
def targets(spec_path: Path, as_json: bool, tag_limit: int | None) -> None:
    """Show each target: uv platform, marker environment and the wheel tags it accepts, best first."""
    spec = load_spec(spec_path)
    reports = [t.report((0 if as_json else 8) if tag_limit is None else tag_limit) for t in spec.targets]
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for target, report in zip(spec.targets, reports, strict=True):
        click.echo(f"{click.style(target.name, bold=True)}  {target.describe()}")
        uv_env = " ".join(f"{k}={v}" for k, v in target.uv_environment().items())
        click.echo(
            f"  uv:      {uv_env + ' ' if uv_env else ''}--python-platform {target.uv_python_platform}"
            f" --python-version {target.python}"
        )
        markers = target.marker_environment()
        shown = ("sys_platform", "platform_machine", "platform_system", "os_name", "python_full_version")
        click.echo("  markers: " + "  ".join(f"{k}={markers[k]}" for k in shown))
        tags = report["tags"]
        assert isinstance(tags, list)
        more = f", … ({report['tag_count']} in all)" if len(tags) < len(target.tags()) else ""
        click.echo(f"  tags:    {', '.join(tags)}{more}")


# -- mirror lock ----------------------------------------------------------------------------------------------


def _lock_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "--resolver",
                type=click.Choice(["uv", "pip-tools"]),
                default="uv",
                show_default=True,
                help="uv resolves for any target; pip-tools (pip-compile) only for this host's platform and Python.",
            ),
            click.option("-U", "--upgrade", is_flag=True, help="Move every pin to the newest allowed version."),
            click.option(
                "-P", "--upgrade-package", "upgrade_packages", multiple=True, metavar="NAME", help="Move this pin."
            ),
        ]
    ):
        func = option(func)
    return func


def _lock_options_value(resolver: str, upgrade: bool, upgrade_packages: tuple[str, ...], jobs: int = 4) -> LockOptions:
    from mirror.lock import LockOptions

    return LockOptions(resolver=resolver, upgrade=upgrade, upgrade_packages=upgrade_packages, jobs=jobs)


@main.command()
@spec_option
@_lock_options
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=4, show_default=True, help="Targets in parallel.")
def lock(spec_path: Path, resolver: str, upgrade: bool, upgrade_packages: tuple[str, ...], jobs: int) -> None:
    """Resolve every target, with the recursive build-requirement closure, into lockfiles/."""
    with Reporter() as progress:
        result = open_workspace(spec_path, progress).lock(
            _lock_options_value(resolver, upgrade, upgrade_packages, jobs)
        )
    echo_lines(result.render())


# -- mirror fetch / check / sync ------------------------------------------------------------------------------


def _print_fetch(outcome: FetchOutcome) -> bool:
    """Print what fetch did; ``False`` when ``--offline`` found files missing."""
    from mirror.compilereport import render_compile_report

    echo_lines(outcome.render())
    echo_lines(outcome.warnings(), err=True)
    echo_lines(render_compile_report(outcome.compile_report or {}))
    return not outcome.download.missing


def _fetch_options(func: F) -> F:
    func = click.option(
        "-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable)."
    )(func)
    func = click.option(
        "-j", "--jobs", type=click.IntRange(min=1), default=8, show_default=True, help="Concurrent downloads."
    )(func)
    return func


@main.command()
@spec_option
@_fetch_options
@click.option("--offline", is_flag=True, help="Download nothing; list what is missing (exit 1 if anything is).")
@click.option("--no-build", is_flag=True, help="Do not build wheels from sdists (policy.build-wheels).")
def fetch(spec_path: Path, targets: tuple[str, ...], jobs: int, offline: bool, no_build: bool) -> None:
    """Download every locked file into wheelhouse/files, verified by sha256, resumably.

    With policy.build-wheels, sdists are then built into wheels for the targets this host can build for, with
    build isolation fed only from the wheelhouse; the report lists what will still compile on each target.
    """
    from mirror.workspace import FetchOptions

    options = FetchOptions(targets=targets, jobs=jobs, offline=offline, build=not no_build)
    with Reporter("lines", "fetching", bar=not offline) as progress:
        outcome = open_workspace(spec_path, progress).fetch(options)
    if not _print_fetch(outcome):
        raise SystemExit(1)


@main.command()
@spec_option
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable).")
def check(spec_path: Path, targets: tuple[str, ...]) -> None:
    """Re-hash every locked file in the wheelhouse; report missing or corrupt ones (exit 1 if any)."""
    result = open_workspace(spec_path, Reporter()).check(targets)
    echo_lines(result.render())
    if result.missing or result.corrupt:
        raise SystemExit(1)


def _print_index(result: IndexResult, simple: Path) -> None:
    echo_lines(result.warnings(), err=True)
    echo_lines(result.render(simple))


@main.command()
@spec_option
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="The mirror's Simple API root (e.g. http://pypi.internal:3141/simple/) for the page use.html; kept for"
    " later runs. Default: the address the page is loaded from.",
)
def index(spec_path: Path, url: str | None) -> None:
    """Write wheelhouse/simple: a static PEP 503 + PEP 691 index (with PEP 658 metadata) of the fetched files, and
    the pages for people (index.html with search, projects/<project>.html, use.html)."""
    workspace = open_workspace(spec_path, Reporter())
    _print_index(workspace.index(url=url), workspace.layout.simple)


@main.command()
@spec_option
@_lock_options
@_fetch_options
def sync(
    spec_path: Path,
    resolver: str,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    targets: tuple[str, ...],
    jobs: int,
) -> None:
    """lock, fetch, index: one command from mirror.toml to a verified, servable wheelhouse."""
    from mirror.workspace import FetchOptions

    with Reporter("lines", "fetching") as progress:
        workspace = open_workspace(spec_path, progress)
        result = workspace.sync(
            _lock_options_value(resolver, upgrade, upgrade_packages), FetchOptions(targets=targets, jobs=jobs)
        )
    echo_lines(result.lock.render())
    _print_fetch(result.fetch)
    _print_index(result.index, workspace.layout.simple)
