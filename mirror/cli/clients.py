"""mirror relocate-uv-lock, relocate-poetry-lock, config, doctor, verify: the clients of the mirror."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror._console import Reporter
from mirror.cli._base import (
    DIR,
    EXISTING_DIR,
    FILE,
    echo_lines,
    main,
    open_workspace,
    spec_option,
)
from mirror.errors import MirrorError
from mirror.spec import SPEC_FILENAME

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    pass


# -- mirror relocate-uv-lock ---------------------------------------------------------------------------------


@main.command("relocate-uv-lock")
@spec_option
@click.argument("uv_lock", type=FILE)
@click.option(
    "--url",
    "mirror_url",
    required=True,
    metavar="URL",
    help="The mirror as the deploy reaches it, e.g. http://mirror.internal:3141/ (its …/simple/ URL works too).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=FILE,
    default=None,
    help="Write the relocated lock here [default: replace UV_LOCK].",
)
def relocate_uv_lock(spec_path: Path, uv_lock: Path, mirror_url: str, output: Path | None) -> None:
    """Point UV_LOCK's registry packages at the mirror, keeping versions and hashes.

    `uv sync --frozen` downloads from the lock's URLs whatever the index settings say. Registry sources become
    the mirror's /simple, file URLs its /files/<project>/<file>; locked files the wheelhouse does not hold are
    dropped, so uv chooses among the files the mirror serves. Refuses, listing them, when a package one of the
    spec's targets installs has no locked file in the wheelhouse.
    """
    out = output if output is not None else uv_lock
    result = open_workspace(spec_path, Reporter()).relocate_uv_lock(uv_lock, url=mirror_url, out=out)
    echo_lines(result.render(out))


@main.command("relocate-poetry-lock")
@click.argument("project", type=EXISTING_DIR)
@click.option("--url", "mirror_url", required=True, metavar="URL", help="The mirror as the deploy reaches it.")
@click.option("--spec", "spec_path", type=FILE, default=None, help="Check the lock against this workspace's mirror.")
def relocate_poetry_lock(project: Path, mirror_url: str, spec_path: Path | None) -> None:
    """Point the Poetry project in PROJECT at the mirror, keeping every locked version and hash.

    Poetry has no PyPI-mirror setting and refuses a lock whose content-hash no longer matches pyproject.toml: the
    project gets a primary source "mirror", every registry package of poetry.lock is installed from it, and the
    content-hash is computed again, so `poetry install` deploys offline. Both files are rewritten, or neither.
    With --spec (or a ./mirror.toml) the main group must be in that mirror.
    """
    from mirror.sources.poetrylock import relocate_poetry_lock as relocate

    if spec_path is None and Path(SPEC_FILENAME).is_file():
        spec_path = Path(SPEC_FILENAME)
    if spec_path is None:
        echo_lines(relocate(project, url=mirror_url).render(project))
    else:
        echo_lines(open_workspace(spec_path, Reporter()).relocate_poetry_lock(project, url=mirror_url).render(project))


# -- mirror config ---------------------------------------------------------------------------------------------


@main.command("config")
@spec_option
@click.option("--url", default=None, metavar="URL", help="The mirror's index URL, e.g. http://mirror:3141/simple/")
@click.option(
    "--find-links", metavar="PATH", help="No server: the wheelhouse tree (simple/, files/) as clients mount it."
)
@click.option("-o", "--out", type=DIR, default="client-config", show_default=True, help="Write the files here.")
@click.option(
    "--for",
    "for_clients",
    default="all",
    show_default=True,
    metavar="LIST|all",
    help="pip, uv, setuptools, env, docker, k8s, poetry, pdm, pipenv (comma-separated).",
)
@click.option("--cert", default=None, metavar="PATH", help="The mirror's CA bundle (path on clients).")
@click.option("-t", "--target", "target_name", default=None, metavar="NAME", help="Pin builds to this target's lock.")
@click.option("--install", "do_install", is_flag=True, help="Write into this host's standard locations instead.")
@click.option("--scope", default=None, metavar="system|user|venv[=PATH]", help="Where --install writes.")
def config_command(
    spec_path: Path,
    url: str | None,
    find_links: str | None,
    out: Path,
    for_clients: str,
    cert: str | None,
    target_name: str | None,
    do_install: bool,
    scope: str | None,
) -> None:
    """Write client configuration that sends pip, uv, setuptools (and Poetry, PDM, Pipenv) to the mirror only.

    pip.conf, uv.toml, pydistutils.cfg, mirror.env, a Dockerfile snippet, a Kubernetes ConfigMap and pod
    template, and Poetry/PDM/Pipenv snippets go into --out. With --target the target's build lock pins every
    isolated build, and pylock.TARGET.toml (its runtime lock, every URL on the mirror) is written for pip and uv.
    --install --scope writes pip.conf, uv.toml and pydistutils.cfg into this host's locations, keeping a .bak of
    each file it replaces.
    """
    import os

    from mirror.config import ClientConfig, TargetLocks, install_here, parse_clients, render_files, summary, write_files

    if (url is None) == (find_links is None):
        raise MirrorError("give either --url (a served mirror) or --find-links (a wheelhouse with no server)")
    if scope is not None and not do_install:
        raise MirrorError("--scope: only with --install")
    if do_install and scope is None:
        raise MirrorError("--install: needs --scope system, user or venv[=PATH]")
    clients = parse_clients(for_clients)
    locks = TargetLocks.load(spec_path, target_name, runtime=not do_install)
    client_config = ClientConfig.for_mirror(
        url=url, find_links=find_links, cert=cert, build_lock=locks.build, runtime_lock=locks.runtime
    )
    if do_install:
        assert scope is not None
        changes, notes = install_here(client_config, scope, clients=clients, environ=os.environ, home=Path.home())
        for change in changes:
            kept = f" (previous: {change.backup})" if change.backup is not None else ""
            click.echo(f"{change.action:<9} {change.path}{kept}")
        echo_lines(f"note: {note}" for note in notes)
        return

    out_dir = out.absolute()
    files = render_files(
        client_config,
        clients=clients,
        build_constraint=str(out_dir / "build-constraints.txt"),
        docker_context=out.as_posix() if not out.is_absolute() else out.name,
    )
    for path in write_files(out_dir, files, client_config):
        click.echo(f"wrote {path}")
    echo_lines(summary(client_config, files, out=out, clients=clients, targets=locks.targets))


# -- mirror doctor ---------------------------------------------------------------------------------------------


@main.command()
@click.argument("project_dir", type=EXISTING_DIR)
@spec_option
@click.option("-t", "--target", "target_name", default=None, metavar="NAME", help="The target to check against.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(project_dir: Path, spec_path: Path, target_name: str | None, as_json: bool) -> None:
    """Lint PROJECT_DIR for offline-deploy hazards against the mirror (no network); exit 1 on errors.

    Imports no locked distribution provides, `uv run` builds without build requirements, setup_requires,
    unpinned requirements, sdists compiling on the target, a uv.lock pointing at PyPI, venvs kept across deploys.
    """
    report = open_workspace(spec_path, Reporter()).doctor(project_dir, target_name)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        echo_lines(report.render())
    if report.errors:
        raise SystemExit(1)


# -- mirror verify ---------------------------------------------------------------------------------------------


@main.command("verify")
@spec_option
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@click.option(
    "--project",
    "projects",
    multiple=True,
    type=EXISTING_DIR,
    help="Also install this project from the mirror: pip install; with a uv.lock, uv sync --frozen + uv run.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--inside", is_flag=True, hidden=True, help="Internal: already in the isolated namespace.")
def verify_command(
    spec_path: Path, targets: tuple[str, ...], projects: tuple[Path, ...], as_json: bool, inside: bool
) -> None:
    """Prove the mirror works offline: in a new network namespace with only loopback (unshare), serve the
    wheelhouse and install every target's lock with pip and uv into fresh venvs, import what was installed,
    build every sdist, and install each --project; foreign targets get static checks (hashes, tags, build
    closure). Prints a step-by-target table; exit 1 if any step failed.
    """
    from mirror.workspace import VerifyOptions

    options = VerifyOptions(targets=targets, projects=projects, inside=inside)
    with Reporter() as progress:
        report = open_workspace(spec_path, progress).verify(options)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from mirror.verify import render_table

        click.echo(render_table(report), nl=False)
    if not report.ok:
        raise SystemExit(1)
