"""Shared fixtures: a local upstream index (see tests/fixtures/)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.fixtures.dists import DEFAULT_RELEASES, Catalog, Release, build_dists
from tests.fixtures.env import Cli, MakeWorkspace, invoke, write_workspace
from tests.fixtures.server import Upstream, serve_dir


def pytest_configure(config: pytest.Config) -> None:
    # the mirror asks `keyring` for private indexes' credentials: never this machine's own keyring in a test
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    # Also declared in pyproject.toml; registering twice is harmless and keeps this file
    # usable on its own.
    config.addinivalue_line("markers", "network: needs the real PyPI (deselect with -m 'not network')")


@pytest.fixture(scope="session")
def upstream_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The default fixture distributions (DEFAULT_RELEASES + repacked setuptools/wheel/packaging)."""
    return build_dists(tmp_path_factory.mktemp("upstream") / "files")


@pytest.fixture(scope="session")
def upstream(upstream_catalog: Catalog) -> Iterator[Upstream]:
    """One index server for the whole session. Tests that inject faults or read the request log
    should use ``clean_upstream`` (or call ``upstream.reset()`` themselves)."""
    with serve_dir(upstream_catalog.files_dir, yanked=upstream_catalog.yanked) as server:
        yield server


@pytest.fixture
def clean_upstream(upstream: Upstream) -> Iterator[Upstream]:
    """The session server with an empty request log and no faults, reset again afterwards."""
    upstream.reset()
    yield upstream
    upstream.reset()


MakeUpstream = Callable[..., Upstream]


@pytest.fixture
def make_upstream(tmp_path: Path) -> Iterator[MakeUpstream]:
    """A factory for private index servers: ``make_upstream(releases, repack=(), absolute_urls=False)``.

    Each call builds the releases into its own directory and serves it until the test ends.
    """
    with ExitStack() as stack:
        count = 0

        def make(
            releases: Iterable[Release] = DEFAULT_RELEASES,
            *,
            repack: Iterable[str] = (),
            absolute_urls: bool = False,
        ) -> Upstream:
            nonlocal count
            count += 1
            catalog = build_dists(tmp_path / f"upstream-{count}", releases, repack)
            return stack.enter_context(serve_dir(catalog.files_dir, yanked=catalog.yanked, absolute_urls=absolute_urls))

        yield make


@pytest.fixture
def cli() -> Cli:
    """The ``mirror`` command line run in-process: ``cli("sync", "--spec", str(spec))`` or ``cli(*args, env={...})``
    returns click's ``Result`` (``exit_code``, ``stdout``, ``stderr``, ``output``). Module-scoped fixtures, which
    cannot use it, call the same function: ``tests.fixtures.env.invoke``."""
    return invoke


@pytest.fixture
def make_workspace(request: pytest.FixtureRequest, tmp_path: Path) -> MakeWorkspace:
    """A factory for workspaces: ``make_workspace(packages, *, targets=None, upstream=None, build_wheels=True,
    extra="", directory=None)`` writes ``mirror.toml`` (``tests.fixtures.env.write_workspace``: ``targets`` are
    (platform, python) pairs, None for this host's target; ``upstream`` None for the session ``upstream``) into
    ``directory``, or a fresh directory under ``tmp_path``, and returns the directory."""
    count = 0

    def make(
        packages: Sequence[str],
        *,
        targets: Sequence[tuple[str, str]] | None = None,
        upstream: Upstream | None = None,
        build_wheels: bool = True,
        extra: str = "",
        directory: Path | None = None,
    ) -> Path:
        nonlocal count
        if directory is None:
            count += 1
            directory = tmp_path / f"workspace-{count}"
            directory.mkdir()
        if upstream is None:
            upstream = request.getfixturevalue("upstream")
        return write_workspace(directory, upstream, packages, targets=targets, build_wheels=build_wheels, extra=extra)

    return make


Hash = Callable[[str], str]


@pytest.fixture
def sha256(upstream_catalog: Catalog) -> Hash:
    """The sha256 of a file of the session upstream, by file name."""

    def digest(filename: str) -> str:
        return hashlib.sha256((upstream_catalog.files_dir / filename).read_bytes()).hexdigest()

    return digest
