"""mirror nginx-config, publish devpi, devpi-serve, serve: where the mirror is served."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror._console import Reporter
from mirror.cli._base import (
    DIR,
    FILE,
    echo_lines,
    main,
    open_workspace,
    spec_option,
)
from mirror.errors import MirrorError
from mirror.spec import load_spec

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    from mirror.workspace import PublishOutcome, Workspace


# -- mirror nginx-config ---------------------------------------------------------------------------------------


@main.command("nginx-config")
@spec_option
@click.option(
    "--root",
    type=DIR,
    default=None,
    help="The wheelhouse nginx serves (default: the spec's wheelhouse), made absolute.",
)
@click.option("--listen", default=None, metavar="[HOST:]PORT", help="nginx `listen` [default: 127.0.0.1:8080].")
@click.option("--server-name", default=None, metavar="NAME", help="nginx `server_name` [default: _].")
@click.option("-o", "--output", type=FILE, default=None, help="Write here (atomically).")
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
        outcome = _devpi_publish(open_workspace(spec_path, progress), url, index_name, user, password)
    click.echo(f"index: {outcome.result.simple_url}")


@publish.command("upload")
@spec_option
@click.option("--repository-url", "url", required=True, metavar="URL", help="Where twine would upload to.")
@click.option("--simple-url", default=None, metavar="URL", help="Its simple index [default: URL/simple/ or +simple/].")
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME", help="Only this target's files (repeatable).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=4, show_default=True, help="Uploads in parallel.")
def publish_upload(spec_path: Path, url: str, simple_url: str | None, targets: tuple[str, ...], jobs: int) -> None:
    """Upload the wheelhouse into a repository the intranet already runs (Nexus, Artifactory, GitLab, pypiserver,
    devpi), through the upload API twine speaks.

    Files the repository serves with the same sha256 are not uploaded again; the same name with other bytes is an
    error. Credentials: MIRROR_UPLOAD_USERNAME and MIRROR_UPLOAD_PASSWORD (or _TOKEN), TWINE_USERNAME and
    TWINE_PASSWORD, ~/.netrc or keyring; never printed or written.
    """
    with Reporter("quiet", "uploading") as progress:
        result = open_workspace(spec_path, progress).publish_upload(
            url, simple_url=simple_url, targets=targets, jobs=jobs
        )
    echo_lines(result.render())
    if not result.ok:
        raise SystemExit(1)


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@main.command("devpi-serve")
@spec_option
@click.option(
    "--serverdir", type=DIR, required=True, help="devpi-server's data; initialised (without a PyPI mirror) if new."
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
    workspace = open_workspace(spec_path, progress)
    password, notes = prepare_serverdir(serverdir, user=user, password=password)
    echo_lines(notes)
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
    type=DIR,
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
