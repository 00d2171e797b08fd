"""mirror fetch / check against the local upstream: verified, deduplicated, resumable, fault-tolerant."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mirror._download import partial_path
from mirror._http import make_session
from mirror.fetch import check, fetch
from mirror.manifest import load_manifest
from mirror.workspace import FetchOptions, Workspace
from tests.fixtures.env import Cli, MakeWorkspace, synced_workspace
from tests.fixtures.server import Response, Upstream, UpstreamHandler, fail_times, wrong_bytes

TARGETS = [("linux/amd64", "3.11"), ("windows/amd64", "3.11")]
PACKAGES = ["om-pure==2.0", "om-native", "om-sdistonly"]


@pytest.fixture(scope="module")
def locked(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lockfiles for two targets, made once; each test fetches into its own wheelhouse."""
    work = tmp_path_factory.mktemp("fetch-lock")
    synced_workspace(work, upstream, PACKAGES, targets=TARGETS, build_wheels=False, stage="lock")
    return work / "lockfiles"


@pytest.fixture
def workspace(locked: Path, upstream: Upstream, make_workspace: MakeWorkspace) -> Path:
    work = make_workspace(PACKAGES, targets=TARGETS, build_wheels=False)
    shutil.copytree(locked, work / "lockfiles")
    upstream.reset()
    yield work
    upstream.reset()


def files_on_disk(files_dir: Path) -> list[str]:
    return sorted(p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*") if p.is_file())


def test_fetch_downloads_every_locked_file_once(cli: Cli, workspace: Path, upstream: Upstream) -> None:
    result = cli("fetch", "--spec", str(workspace / "mirror.toml"))
    assert result.exit_code == 0, result.stderr
    manifest = load_manifest(workspace / "lockfiles")
    files_dir = workspace / "wheelhouse" / "files"
    expected = sorted(f.relpath for f in manifest.files.values())
    assert [p for p in files_on_disk(files_dir) if not p.startswith(".")] == expected
    # shared pure wheels are stored (and downloaded) once
    gets = upstream.requests.paths("GET")
    assert gets.count("/files/om_pure-2.0-py3-none-any.whl") == 1
    assert sorted(p for p in gets if p.startswith("/files/")) == sorted(f"/files/{f}" for f in manifest.files)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["target", "files", "size", "new", "reused"]
    assert next(line for line in lines if line.startswith("downloaded ")).startswith(f"downloaded {len(expected)} files (")
    assert check(manifest, files_dir).ok == tuple(sorted(manifest.files))


def test_rerun_with_nothing_new_touches_no_network(cli: Cli, workspace: Path, upstream: Upstream) -> None:
    Workspace.open(workspace / "mirror.toml").fetch()
    upstream.requests.clear()
    result = cli("fetch", "--spec", str(workspace / "mirror.toml"))
    assert result.exit_code == 0
    assert len(upstream.requests) == 0
    assert [line for line in result.stdout.splitlines() if line.startswith("downloaded ")] == [
        f"downloaded 0 files (0 B), {len(load_manifest(workspace / 'lockfiles').files)} already here;"
        f" verified by sha256 in {workspace / 'wheelhouse' / 'files'}"
    ]


def test_target_subset(workspace: Path) -> None:
    outcome = Workspace.open(workspace / "mirror.toml").fetch(FetchOptions(targets=("linux-amd64-cp311",)))
    assert [stats.name for stats in outcome.download.targets] == ["linux-amd64-cp311"]
    names = {Path(p).name for p in files_on_disk(workspace / "wheelhouse" / "files")}
    assert "om_native-1.0-cp311-cp311-win_amd64.whl" not in names
    assert "om_winhelper-1.0-py3-none-win_amd64.whl" not in names
    assert "om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in names


def test_offline_lists_what_is_missing(cli: Cli, workspace: Path, upstream: Upstream) -> None:
    result = cli("fetch", "--spec", str(workspace / "mirror.toml"), "--offline")
    assert result.exit_code == 1
    assert len(upstream.requests) == 0
    manifest = load_manifest(workspace / "lockfiles")
    assert f"{len(manifest.files)} files missing (--offline downloads nothing):" in result.stdout
    assert "  om_dep-1.0-py3-none-any.whl" in result.stdout.splitlines()
    Workspace.open(workspace / "mirror.toml").fetch()
    result = cli("fetch", "--spec", str(workspace / "mirror.toml"), "--offline")
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (0, "every locked file is here")


def test_wrong_bytes_fail_naming_file_url_and_hashes(cli: Cli, workspace: Path, upstream: Upstream) -> None:
    name = "om_dep-1.0-py3-none-any.whl"
    upstream.inject(name, wrong_bytes(b"evil"))
    fetched = cli("fetch", "--spec", str(workspace / "mirror.toml"))
    assert fetched.exit_code == 1
    entry = load_manifest(workspace / "lockfiles").files[name]
    actual = hashlib.sha256(b"evil").hexdigest()
    assert fetched.stderr.splitlines()[-1] == f"error: {name}: {entry.url} has sha256 {actual}, expected {entry.sha256}"
    om_dep = workspace / "wheelhouse" / "files" / "om-dep"
    assert not (om_dep / name).exists()
    assert not partial_path(om_dep / name).exists()  # nothing unverified is kept
    # every other file did arrive, verified
    manifest = load_manifest(workspace / "lockfiles")
    result = check(manifest, workspace / "wheelhouse" / "files")
    assert result.missing == (name,)
    assert result.corrupt == ()


def test_a_500_then_success_is_retried(workspace: Path, upstream: Upstream) -> None:
    name = "om_pure-2.0-py3-none-any.whl"
    upstream.inject(name, fail_times(2, status=503))
    outcome = Workspace.open(workspace / "mirror.toml").fetch()
    assert name in outcome.download.downloaded
    assert upstream.requests.paths("GET").count(f"/files/{name}") == 3


def _drop_once_then_serve_ranges(cut: int) -> tuple[object, list[str | None]]:
    """First request: announce the whole length, send ``cut`` bytes, hang up. Then serve Range requests (206)."""
    ranges: list[str | None] = []
    state = {"dropped": False}

    def fault(handler: UpstreamHandler) -> bool:
        real = handler.response()
        ranges.append(handler.headers.get("Range"))
        if not state["dropped"]:
            state["dropped"] = True
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(real.body)))
            handler.end_headers()
            handler.wfile.write(real.body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return True
        asked = handler.headers.get("Range")
        if asked:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            body = real.body[start:]
            handler.send(Response(status=206, body=body, headers={
                "Content-Range": f"bytes {start}-{len(real.body) - 1}/{len(real.body)}"}))
        else:
            handler.send(real)
        return True

    return fault, ranges


def test_connection_dropped_mid_file_resumes_with_range(workspace: Path, upstream: Upstream) -> None:
    name = "om_native-1.0-cp311-cp311-win_amd64.whl"
    fault, ranges = _drop_once_then_serve_ranges(100)
    upstream.inject(name, fault)
    Workspace.open(workspace / "mirror.toml").fetch()
    assert ranges == [None, "bytes=100-"]
    manifest = load_manifest(workspace / "lockfiles")
    assert check(manifest, workspace / "wheelhouse" / "files").corrupt == ()


def test_server_ignoring_range_restarts_the_file(workspace: Path, upstream: Upstream) -> None:
    name = "om_native-1.0-cp311-cp311-win_amd64.whl"
    manifest = load_manifest(workspace / "lockfiles")
    entry = manifest.files[name]
    dest = workspace / "wheelhouse" / "files" / entry.relpath
    dest.parent.mkdir(parents=True)
    partial_path(dest).write_bytes(b"garbage that is not a prefix")
    result = fetch(manifest, workspace / "wheelhouse" / "files", session=make_session())
    assert name in result.downloaded
    assert check(manifest, workspace / "wheelhouse" / "files").corrupt == ()
    assert not partial_path(dest).exists()


def test_corrupt_file_found_by_check_and_replaced_by_fetch(cli: Cli, workspace: Path) -> None:
    Workspace.open(workspace / "mirror.toml").fetch()
    victim = workspace / "wheelhouse" / "files" / "om-dep" / "om_dep-1.0-py3-none-any.whl"
    victim.write_bytes(b"bit rot")
    result = cli("check", "--spec", str(workspace / "mirror.toml"))
    assert result.exit_code == 1
    assert any(line.startswith("corrupt  om_dep-1.0-py3-none-any.whl: sha256 ") for line in result.stdout.splitlines())
    (workspace / "wheelhouse" / "files" / "om-pure" / "om_pure-2.0-py3-none-any.whl").unlink()
    result = cli("check", "--spec", str(workspace / "mirror.toml"))
    assert "missing  om_pure-2.0-py3-none-any.whl" in result.stdout.splitlines()
    Workspace.open(workspace / "mirror.toml").fetch()  # size/mtime changed: re-verified
    result = cli("check", "--spec", str(workspace / "mirror.toml"))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].endswith(" ok, 0 missing, 0 corrupt")


def test_fetch_without_a_lock_is_one_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text('[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n')
    result = cli("fetch", "--spec", str(tmp_path / "mirror.toml"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path / 'lockfiles' / 'mirror.lock.json'}: no such file; run 'mirror lock' first\n"
    )


def test_kill_mid_run_then_clean_rerun(workspace: Path, upstream: Upstream) -> None:
    """kill -9 while a file is half-written: nothing unverified under a final name; a re-run completes."""
    name = "om_native-1.0-cp311-cp311-win_amd64.whl"
    started = threading.Event()

    def stall(handler: UpstreamHandler) -> bool:
        real = handler.response()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(real.body)))
        handler.end_headers()
        handler.wfile.write(real.body[:50])
        handler.wfile.flush()
        started.set()
        time.sleep(5)  # the client is killed meanwhile
        handler.close_connection = True
        return True

    upstream.inject(name, stall)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirror", "fetch", "--spec", str(workspace / "mirror.toml"), "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert started.wait(30), "the fetch never reached the stalled file"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    files_dir = workspace / "wheelhouse" / "files"
    manifest = load_manifest(workspace / "lockfiles")
    for relpath in files_on_disk(files_dir):
        path = files_dir / relpath
        if path.name.startswith("."):
            continue
        # anything under a final name is complete and verified
        assert check(manifest, files_dir).corrupt == (), relpath
    assert not (files_dir / "om-native" / name).exists()
    upstream.reset()
    Workspace.open(workspace / "mirror.toml").fetch()
    result = check(manifest, files_dir)
    assert (result.missing, result.corrupt) == ((), ())
    assert [p for p in files_on_disk(files_dir) if p.endswith(".part")] == []
