"""A full disk: fetch and index onto a small tmpfs fail with one line naming the file, and leave nothing partial
under a final name; a re-run with space completes.

The tmpfs is mounted inside a user + mount namespace (``unshare --user --map-root-user --mount``), so no root is
needed; the namespace shares the network, so the fetch reaches the fixture upstream on 127.0.0.1. What the
namespace leaves is copied out (the mount vanishes with it) and checked here.
"""

from __future__ import annotations

import json
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirror import _atomic
from mirror._verified import VerifiedRecord, sha256_file
from mirror.fetch import check
from mirror.manifest import load_manifest
from mirror.workspace import Workspace
from tests.conftest import MakeUpstream
from tests.fixtures.dists import Release
from tests.fixtures.env import MakeWorkspace, isolated_env
from tests.fixtures.server import Upstream

BIG = 3_000_000  # incompressible bytes in om-full's wheel: larger than the 1 MiB tmpfs
RELEASES = (
    Release(name="om-full", version="1.0", requires_dist=("om-small",),
            files={"om_full/__init__.py": b"", "om_full/blob.bin": random.Random(10).randbytes(BIG)}),
    Release(name="om-small", version="1.0"),
)


def can_mount_tmpfs(tmp_path: Path) -> str | None:
    """None if this machine can mount a tmpfs in a user namespace; else why not."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
        capture_output=True, text=True, timeout=30,
    )
    if result.returncode != 0:
        return f"cannot mount a tmpfs in a user namespace here: {result.stderr.strip()}"
    return None


def in_tmpfs(mountpoint: Path, size: str, command: list[str], copy_to: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``command`` with a ``size`` tmpfs on ``mountpoint``; copy what it leaves there to ``copy_to``."""
    copy_to.mkdir(parents=True)
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mountpoint))} || exit 99\n"
        f"{shlex.join(command)}\nrc=$?\n"
        f"cp -a {shlex.quote(str(mountpoint))}/. {shlex.quote(str(copy_to))}/\nexit $rc\n"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode != 99, result.stderr
    return result.returncode, result.stderr


@pytest.fixture
def workspace(make_upstream: MakeUpstream, make_workspace: MakeWorkspace, tmp_path: Path) -> Path:
    reason = can_mount_tmpfs(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    upstream: Upstream = make_upstream(RELEASES)
    work = make_workspace(["om-full"], upstream=upstream, build_wheels=False)
    Workspace.open(work / "mirror.toml").lock()
    (work / "wheelhouse" / "files").mkdir(parents=True)
    return work


def final_names(files_dir: Path) -> list[Path]:
    return sorted(p for p in files_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_fetch_onto_a_full_disk_fails_cleanly_and_resumes(workspace: Path, tmp_path: Path) -> None:
    spec = workspace / "mirror.toml"
    files_dir = workspace / "wheelhouse" / "files"
    manifest = load_manifest(workspace / "lockfiles")
    big = next(f for f in manifest.files.values() if f.project == "om-full")
    assert big.size is not None and big.size > BIG
    after = tmp_path / "after"
    command = [sys.executable, "-m", "mirror", "fetch", "--spec", str(spec), "--jobs", "1"]
    code, stderr = in_tmpfs(files_dir, "1m", command, after, isolated_env(tmp_path / "home"))

    assert code == 1
    partial = files_dir / big.project / f".{big.filename}.part"
    assert stderr.splitlines()[-1] == (
        f"error: {big.filename}: cannot write {partial}: No space left on device; free some space and run again"
    )
    assert "Traceback" not in stderr
    # nothing partial under a final name, and the partial file itself was removed to give the space back
    assert list(after.rglob("*.part")) == []
    for path in final_names(after):
        assert path.relative_to(after).as_posix() == manifest.files[path.name].relpath
    assert check(manifest, after).corrupt == ()
    assert (after / big.relpath).exists() is False

    # with space, the same fetch completes
    Workspace.open(spec).fetch()
    outcome = check(manifest, files_dir)
    assert (outcome.missing, outcome.corrupt) == ((), ())


def test_index_onto_a_full_disk_is_one_line_naming_the_file(workspace: Path, tmp_path: Path) -> None:
    spec = workspace / "mirror.toml"
    Workspace.open(spec).fetch()
    simple = workspace / "wheelhouse" / "simple"
    simple.mkdir()
    after = tmp_path / "after"
    command = [sys.executable, "-m", "mirror", "index", "--spec", str(spec)]
    code, stderr = in_tmpfs(simple, "8k", command, after, isolated_env(tmp_path / "home"))  # two pages of 4 KiB
    assert code == 1, stderr
    last = stderr.splitlines()[-1]
    assert last.startswith(f"error: cannot write {simple}/") and last.endswith(
        ": No space left on device; free some space and run again"
    ), stderr
    assert "Traceback" not in stderr
    assert [p for p in after.rglob(".*") if p.name != ".state.json"] == []  # no temporary file left behind
    # every page written names only files that are present and verified
    files = workspace / "wheelhouse" / "files"
    for page in after.glob("*/index.json"):
        for item in json.loads(page.read_text())["files"]:
            assert item["url"].startswith("../../files/")
            path = files / item["url"].removeprefix("../../files/")
            assert sha256_file(path) == item["hashes"]["sha256"]


def test_write_error_is_one_line_and_still_an_oserror(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(_atomic.WriteError) as error:
        _atomic.write_text(tmp_path / "file" / "index.html", "x")
    assert str(error.value) == f"cannot write {tmp_path / 'file' / 'index.html'}: File exists"
    assert isinstance(error.value, OSError)


def test_a_record_that_cannot_be_saved_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / ".verified.json").mkdir()  # os.replace onto a directory fails
    VerifiedRecord(tmp_path).save()
    assert caplog.records[-1].getMessage().startswith(f"cannot write {tmp_path / '.verified.json'} (")
