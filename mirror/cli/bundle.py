"""mirror bundle export, verify, import: carrying the mirror across the air gap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror._console import Reporter
from mirror.cli._base import (
    DIR,
    EXISTING_FILE,
    FILE,
    echo_lines,
    main,
    open_workspace,
    parse_target_option,
    spec_option,
)

if TYPE_CHECKING:  # imported lazily by the commands that use them: a fast start for every command
    pass


# -- mirror bundle ---------------------------------------------------------------------------------------------


@main.group()
def bundle() -> None:
    """Carry the mirror across the air gap: one hash-checked archive, full or incremental."""


@bundle.command("export")
@click.argument("out", type=FILE)
@spec_option
@click.option(
    "--since",
    type=EXISTING_FILE,
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
@click.option("--sign", type=EXISTING_FILE, default=None, metavar="KEY", help="Sign bundle.json with this SSH key.")
@click.option(
    "--osv",
    type=click.Path(path_type=Path),
    default=None,
    metavar="PATH",
    help="Carry this OSV export of PyPI (osv.dev's all.zip or a directory of its records) for mirror audit.",
)
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
    osv: Path | None,
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
        tool_targets=tuple(parse_target_option(v) for v in tool_targets),
        jobs=jobs,
        sign=sign,
        osv=osv,
    )
    with Reporter("quiet", "exporting") as progress:
        result = open_workspace(spec_path, progress).export_bundle(out, options)
    echo_lines(result.render())


_trust_option = click.option(
    "--trust", type=EXISTING_FILE, default=None, metavar="ALLOWED_SIGNERS", help="Require a signature by a key listed."
)


@bundle.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=FILE)
@_trust_option
def bundle_verify(bundle_path: Path, trust: Path | None) -> None:
    """Check every member of BUNDLE against its manifest, and that none is unsafe, without importing."""
    from mirror.bundle import read_bundle
    from mirror.bundle.signing import trusted_by

    with Reporter("quiet", "verifying") as progress:
        result = read_bundle(bundle_path, progress=progress, trust=trusted_by(trust) if trust else None)
    click.echo(result.render(bundle_path))


@bundle.command("import")
@click.argument("bundle_path", metavar="BUNDLE", type=FILE)
@click.option(
    "--into",
    type=DIR,
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
    echo_lines(result.render(bundle_path, into))
