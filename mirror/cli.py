"""The ``mirror`` command: parse options, build a :class:`~mirror.workspace.Workspace`, call one method, print.

This is the only module that prints. Every :class:`~mirror.errors.MirrorError` (and an ``OSError`` the library did
not turn into one) becomes a one-line ``error: …`` on stderr and exit status 1, here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mirror import __version__
from mirror._console import Reporter
from mirror.errors import InvalidSpec, MirrorError
from mirror.spec import SPEC_FILENAME, init_spec, load_spec
from mirror.targets import Target

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    from mirror.index import IndexResult
    from mirror.lock import LockOptions
    from mirror.workspace import FetchOutcome, PublishOutcome, Workspace

F = TypeVar("F", bound=Callable[..., Any])
_DIR = click.Path(path_type=Path, file_okay=False)
_FILE = click.Path(path_type=Path, dir_okay=False)
_EXISTING_DIR = click.Path(path_type=Path, file_okay=False, exists=True)
_EXISTING_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


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
        type=_FILE,
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


# -- mirror init ----------------------------------------------------------------------------------------------


def _echo(lines: Iterable[str], *, err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


def _open(spec_path: Path, progress: Reporter) -> Workspace:
    from mirror.workspace import Workspace

    return Workspace.open(spec_path, progress=progress)


def _parse_target_option(value: str) -> Target:
    """``PLATFORM[:PYTHON]``, e.g. ``linux/arm64:3.12`` or ``manylinux_2_28_aarch64:3.11``."""
    platform, _, python = value.partition(":")
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        return Target.create(platform, python)
    except InvalidSpec as exc:
        raise InvalidSpec("--target", f"{value!r}: {exc.detail}") from None


@main.command()
@click.argument("directory", type=_DIR, default=".")
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
        targets=[_parse_target_option(v) for v in target_values],
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
        result = _open(spec_path, progress).lock(_lock_options_value(resolver, upgrade, upgrade_packages, jobs))
    _echo(result.render())


# -- mirror fetch / check / sync ------------------------------------------------------------------------------


def _print_fetch(outcome: FetchOutcome) -> bool:
    """Print what fetch did; ``False`` when ``--offline`` found files missing."""
    from mirror.compilereport import render_compile_report

    _echo(outcome.render())
    _echo(outcome.warnings(), err=True)
    _echo(render_compile_report(outcome.compile_report or {}))
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
        outcome = _open(spec_path, progress).fetch(options)
    if not _print_fetch(outcome):
        raise SystemExit(1)


@main.command()
@spec_option
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable).")
def check(spec_path: Path, targets: tuple[str, ...]) -> None:
    """Re-hash every locked file in the wheelhouse; report missing or corrupt ones (exit 1 if any)."""
    result = _open(spec_path, Reporter()).check(targets)
    _echo(result.render())
    if result.missing or result.corrupt:
        raise SystemExit(1)


def _print_index(result: IndexResult, simple: Path) -> None:
    _echo(result.warnings(), err=True)
    _echo(result.render(simple))


@main.command()
@spec_option
def index(spec_path: Path) -> None:
    """Write wheelhouse/simple: a static PEP 503 + PEP 691 index (with PEP 658 metadata) of the fetched files."""
    workspace = _open(spec_path, Reporter())
    _print_index(workspace.index(), workspace.layout.simple)


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
        workspace = _open(spec_path, progress)
        result = workspace.sync(
            _lock_options_value(resolver, upgrade, upgrade_packages), FetchOptions(targets=targets, jobs=jobs)
        )
    _echo(result.lock.render())
    _print_fetch(result.fetch)
    _print_index(result.index, workspace.layout.simple)


# -- mirror nginx-config ---------------------------------------------------------------------------------------


@main.command("nginx-config")
@spec_option
@click.option(
    "--root",
    type=_DIR,
    default=None,
    help="The wheelhouse nginx serves (default: the spec's wheelhouse), made absolute.",
)
@click.option("--listen", default=None, metavar="[HOST:]PORT", help="nginx `listen` [default: 127.0.0.1:8080].")
@click.option("--server-name", default=None, metavar="NAME", help="nginx `server_name` [default: _].")
@click.option("-o", "--output", type=_FILE, default=None, help="Write here (atomically).")
def nginx_config(
    spec_path: Path, root: Path | None, listen: str | None, server_name: str | None, output: Path | None
) -> None:
    """Print (or write) an nginx drop-in for conf.d/ serving the wheelhouse: maps + one server block.

    Accept-negotiated PEP 691 JSON / PEP 503 HTML, long-cached files, 404 for everything internal, GET/HEAD only.
    Without --root the spec is read for its wheelhouse; with --root no spec is needed.
    """
    from mirror.layout import HOME_PAGE, simple_dir
    from mirror.nginx import DEFAULT_LISTEN, DEFAULT_SERVER_NAME, render_nginx_config, write_nginx_config

    wheelhouse = (root if root is not None else load_spec(spec_path).wheelhouse).resolve()
    text = render_nginx_config(
        wheelhouse, listen=listen or DEFAULT_LISTEN, server_name=server_name or DEFAULT_SERVER_NAME
    )
    root_page = simple_dir(wheelhouse) / HOME_PAGE
    if not root_page.is_file():
        click.echo(f"warning: {root_page} does not exist yet (run mirror index)", err=True)
    if output is None:
        click.echo(text, nl=False)
        return
    write_nginx_config(output, text)
    click.echo(f"wrote {output}")


# -- devpi ----------------------------------------------------------------------------------------------------


def _devpi_publish(
    workspace: Workspace, url: str, index_name: str, user: str | None, password: str | None
) -> PublishOutcome:
    """Publish the workspace's wheelhouse and print the counts."""
    outcome = workspace.publish_devpi(url, index_name, user=user, password=password)
    result = outcome.result
    if result.created_user:
        click.echo(f"created devpi user {user or index_name.partition('/')[0]}")
    if result.created_index:
        click.echo(f"created index {index_name}: no bases (never proxies PyPI), non-volatile")
    if result.bases:
        click.echo(
            f"warning: {result.index_url} inherits from {', '.join(result.bases)}:"
            " clients may get packages that are not in the mirror",
            err=True,
        )
    for name in result.skipped:
        click.echo(f"not published (missing or unverified; run mirror fetch): {name}", err=True)
    counts = f"uploaded {len(result.uploaded)}, already there {len(result.present)}, skipped {len(result.skipped)}"
    click.echo(counts)
    return outcome


@main.group()
def publish() -> None:
    """Publish the wheelhouse into another index server."""


@publish.command("devpi")
@spec_option
@click.option("--url", required=True, help="The devpi-server, e.g. http://devpi.internal:3141")
@click.option("--index", "index_name", required=True, metavar="USER/INDEX", help="Created if missing (no bases).")
@click.option("--user", default=None, help="Log in as this user (default: the index's user), created if missing.")
@click.option("--password", default=None, envvar="MIRROR_DEVPI_PASSWORD", help="Or $MIRROR_DEVPI_PASSWORD.")
def publish_devpi(spec_path: Path, url: str, index_name: str, user: str | None, password: str | None) -> None:
    """Upload every verified file of the wheelhouse that the devpi index does not have yet.

    The index is created if missing as a non-volatile stage with no bases: it never falls back to PyPI, and a
    published file never changes. Files already there (same name and sha256) are not uploaded again.
    """
    with Reporter() as progress:
        outcome = _devpi_publish(_open(spec_path, progress), url, index_name, user, password)
    click.echo(f"index: {outcome.result.simple_url}")


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@main.command("devpi-serve")
@spec_option
@click.option(
    "--serverdir", type=_DIR, required=True, help="devpi-server's data; initialised (without a PyPI mirror) if new."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=3141, show_default=True)
@click.option("--user", default="mirror", show_default=True, help="The devpi user owning the index.")
@click.option(
    "--password",
    default=None,
    envvar="MIRROR_DEVPI_PASSWORD",
    help="Or $MIRROR_DEVPI_PASSWORD; default: generated and kept in SERVERDIR/.mirror-credentials (0600).",
)
@click.option("--index", "index_name", default=None, metavar="USER/INDEX", help="Default: USER/mirror.")
def devpi_serve(
    spec_path: Path, serverdir: Path, host: str, port: int, user: str, password: str | None, index_name: str | None
) -> None:
    """Run devpi-server over SERVERDIR with the wheelhouse published into an index, until SIGINT or SIGTERM."""
    import signal

    from mirror._http import make_session
    from mirror.devpi import DevpiServer, prepare_serverdir

    progress = Reporter()
    workspace = _open(spec_path, progress)
    password, notes = prepare_serverdir(serverdir, user=user, password=password)
    _echo(notes)
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job may inherit it ignored
        signal.signal(signum, _stop_on_signal)
    server = DevpiServer(serverdir, host=host, port=port)
    try:
        with server:
            server.wait_ready(make_session(retries=0))
            outcome = _devpi_publish(workspace, server.url, index_name or f"{user}/mirror", user, password)
            simple_url = outcome.result.simple_url
            lock = outcome.lockfiles[0] if outcome.lockfiles else "requirements.txt"
            # pip ignores a plain-HTTP index off this machine unless it is trusted
            trusted = "" if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::") else f" --trusted-host {host}"
            click.echo(f"devpi-server {server.url} (log: {server.log_path}); Ctrl-C stops it")
            click.echo(f"index: {simple_url}")
            click.echo(f"  pip install --index-url {simple_url}{trusted} -r {lock}")
            click.echo(f"  uv pip install --default-index {simple_url} -r {lock}")
            code = server.wait()
            raise MirrorError(f"devpi-server exited with status {code}; see {server.log_path}")
    except KeyboardInterrupt:
        click.echo("devpi-server stopped", err=True)


# -- mirror serve ---------------------------------------------------------------------------------------------


def _client_commands(index_url: str, host: str) -> list[str]:
    """One-line pip and uv commands for an index URL (pip wants --trusted-host for plain HTTP off loopback)."""
    trusted = "" if host in ("127.0.0.1", "localhost", "[::1]") else f" --trusted-host {host}"
    return [
        f"pip install --index-url {index_url}{trusted} PACKAGE",
        f"uv pip install --default-index {index_url} PACKAGE   (or: export UV_DEFAULT_INDEX={index_url})",
    ]


@main.command()
@spec_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=3141, show_default=True, help="0: any free port.")
@click.option(
    "--root",
    type=_DIR,
    default=None,
    help="Serve this index tree instead of the spec's wheelhouse (the spec is then not read).",
)
@click.option("-q", "--quiet", is_flag=True, help="No access log lines.")
def serve(spec_path: Path, host: str, port: int, root: Path | None, quiet: bool) -> None:
    """Serve the wheelhouse read-only over HTTP: PEP 503/691 index pages, files with Range and ETag.

    Prints the index URL and the pip and uv commands that use it, then one line per request; stops cleanly on
    Ctrl+C or SIGTERM.
    """
    import contextlib

    from mirror.serve import AccessRecord, Server, run

    tree = root if root is not None else load_spec(spec_path).wheelhouse

    def ready(server: Server) -> None:
        click.echo(f"serving {tree} at {server.url}")
        click.echo(f"index URL: {server.index_url}")
        for line in _client_commands(server.index_url, server.url_host):
            click.echo(f"  {line}")
        click.echo("Ctrl+C stops the server")

    def access(record: AccessRecord) -> None:
        click.echo(record.format())

    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C while responses under way finish
        run(tree, host=host, port=port, access_log=None if quiet else access, ready=ready)
    click.echo("stopped")


# -- mirror relocate-uv-lock ---------------------------------------------------------------------------------


@main.command("relocate-uv-lock")
@spec_option
@click.argument("uv_lock", type=_FILE)
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
    type=_FILE,
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
    result = _open(spec_path, Reporter()).relocate_uv_lock(uv_lock, url=mirror_url, out=out)
    _echo(result.render(out))


@main.command("relocate-poetry-lock")
@click.argument("project", type=_EXISTING_DIR)
@click.option("--url", "mirror_url", required=True, metavar="URL", help="The mirror as the deploy reaches it.")
@click.option("--spec", "spec_path", type=_FILE, default=None, help="Check the lock against this workspace's mirror.")
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
        _echo(relocate(project, url=mirror_url).render(project))
    else:
        _echo(_open(spec_path, Reporter()).relocate_poetry_lock(project, url=mirror_url).render(project))


# -- mirror config ---------------------------------------------------------------------------------------------


@main.command("config")
@spec_option
@click.option("--url", default=None, metavar="URL", help="The mirror's index URL, e.g. http://mirror:3141/simple/")
@click.option(
    "--find-links", metavar="PATH", help="No server: the wheelhouse tree (simple/, files/) as clients mount it."
)
@click.option("-o", "--out", type=_DIR, default="client-config", show_default=True, help="Write the files here.")
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
        _echo(f"note: {note}" for note in notes)
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
    _echo(summary(client_config, files, out=out, clients=clients, targets=locks.targets))


# -- mirror doctor ---------------------------------------------------------------------------------------------


@main.command()
@click.argument("project_dir", type=_EXISTING_DIR)
@spec_option
@click.option("-t", "--target", "target_name", default=None, metavar="NAME", help="The target to check against.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(project_dir: Path, spec_path: Path, target_name: str | None, as_json: bool) -> None:
    """Lint PROJECT_DIR for offline-deploy hazards against the mirror (no network); exit 1 on errors.

    Imports no locked distribution provides, `uv run` builds without build requirements, setup_requires,
    unpinned requirements, sdists compiling on the target, a uv.lock pointing at PyPI, venvs kept across deploys.
    """
    report = _open(spec_path, Reporter()).doctor(project_dir, target_name)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _echo(report.render())
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
    type=_EXISTING_DIR,
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
        report = _open(spec_path, progress).verify(options)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from mirror.verify import render_table

        click.echo(render_table(report), nl=False)
    if not report.ok:
        raise SystemExit(1)


# -- mirror bundle ---------------------------------------------------------------------------------------------


@main.group()
def bundle() -> None:
    """Carry the mirror across the air gap: one hash-checked archive, full or incremental."""


@bundle.command("export")
@click.argument("out", type=_FILE)
@spec_option
@click.option(
    "--since",
    type=_EXISTING_FILE,
    default=None,
    metavar="PREVIOUS",
    help="A delta: only what this earlier bundle (or its .manifest.json) lacks.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "zst", "gz"]),
    default="auto",
    show_default=True,
    help="auto: zst when the zstandard module is installed, else gz (or as OUT's suffix says).",
)
@click.option("--url", default=None, metavar="URL", help="Add client configs for the mirror served at URL.")
@click.option(
    "--tool-target",
    "tool_targets",
    multiple=True,
    metavar="PLATFORM[:PYTHON]",
    help="Carry offline-mirror for this platform (default: the spec's Linux/macOS targets with Python >= 3.10).",
)
@click.option("--no-tool", is_flag=True, help="Leave out offline-mirror's own wheels and install.sh.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=8, show_default=True, help="Concurrent downloads.")
@click.option("--sign", type=_EXISTING_FILE, default=None, metavar="KEY", help="Sign bundle.json with this SSH key.")
def bundle_export(
    out: Path,
    spec_path: Path,
    since: Path | None,
    fmt: str,
    url: str | None,
    tool_targets: tuple[str, ...],
    no_tool: bool,
    jobs: int,
    sign: Path | None,
) -> None:
    """Write the mirror (files, lockfiles, spec, client configs, the tool itself) as one archive OUT.

    Every member's path, size and sha256 are in its first member, bundle.json, and in OUT.manifest.json beside
    it: keep that file to export the next delta with --since.
    """
    from mirror.bundle.export import ExportOptions

    options = ExportOptions(
        since=since,
        format=fmt,
        url=url,
        tool=not no_tool,
        tool_targets=tuple(_parse_target_option(v) for v in tool_targets),
        jobs=jobs,
        sign=sign,
    )
    with Reporter("quiet", "exporting") as progress:
        result = _open(spec_path, progress).export_bundle(out, options)
    _echo(result.render())


_trust_option = click.option(
    "--trust", type=_EXISTING_FILE, default=None, metavar="ALLOWED_SIGNERS", help="Require a signature by a key listed."
)


@bundle.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=_FILE)
@_trust_option
def bundle_verify(bundle_path: Path, trust: Path | None) -> None:
    """Check every member of BUNDLE against its manifest, and that none is unsafe, without importing."""
    from mirror.bundle import read_bundle
    from mirror.bundle.signing import trusted_by

    with Reporter("quiet", "verifying") as progress:
        result = read_bundle(bundle_path, progress=progress, trust=trusted_by(trust) if trust else None)
    click.echo(result.render(bundle_path))


@bundle.command("import")
@click.argument("bundle_path", metavar="BUNDLE", type=_FILE)
@click.option(
    "--into",
    type=_DIR,
    default=".",
    show_default=True,
    help="The offline workspace (created if missing; an existing mirror is merged with).",
)
@_trust_option
def bundle_import(bundle_path: Path, into: Path, trust: Path | None) -> None:
    """Verify BUNDLE completely, then merge it into the mirror at --into and regenerate its index."""
    from mirror.workspace import Workspace

    with Reporter("quiet", "importing") as progress:
        result = Workspace.at(into, progress=progress).import_bundle(bundle_path, trust=trust)
    _echo(result.render(bundle_path, into))
