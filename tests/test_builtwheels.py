"""Wheels built here from sdists during fetch: lock integration, reuse across targets, incomplete closures."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mirror._http import make_session
from mirror.builtwheels import Registry, build_missing
from mirror.fetch import fetch
from mirror.interpreters import discover
from mirror.manifest import load_manifest
from mirror.targets import host_target
from mirror.wheelaudit import Audit
from mirror.wheelbuild import BuildResult
from mirror.workspace import IncompleteBuildClosure, Workspace
from tests.fixtures.env import Cli, MakeWorkspace, isolated_env, pip_command
from tests.fixtures.server import Upstream

HOST = host_target()
WITH_ARM64 = [(HOST.platform, HOST.python), ("linux/arm64", "3.12")]


@pytest.fixture
def synced(make_workspace: MakeWorkspace) -> Path:
    workspace = make_workspace(["om-sdistonly"], targets=WITH_ARM64)
    Workspace.open(workspace / "mirror.toml").sync()
    return workspace


def test_sync_builds_the_sdist_and_locks_the_wheel(synced: Path) -> None:
    manifest = load_manifest(synced / "lockfiles")
    wheel = manifest.files["om_sdistonly-1.0-py3-none-any.whl"]
    assert (wheel.url, wheel.built_from) == (None, "om_sdistonly-1.0.tar.gz")
    assert (synced / "wheelhouse" / "files" / "om-sdistonly" / wheel.filename).is_file()
    for target in (HOST.name, "linux-arm64-cp312"):  # the pure wheel serves the arm64 target as well
        (package,) = [p for p in manifest.target(target).runtime() if p.name == "om-sdistonly"]
        assert package.files == ("om_sdistonly-1.0.tar.gz", "om_sdistonly-1.0-py3-none-any.whl")
        text = (synced / "lockfiles" / f"{target}.txt").read_text()
        assert f"--hash=sha256:{wheel.sha256}" in text
    report = json.loads((synced / "wheelhouse" / "compile-report.json").read_text())
    assert report == {HOST.name: [], "linux-arm64-cp312": []}


def test_require_hashes_install_uses_the_built_wheel_offline(synced: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    find_links = [arg for d in sorted((synced / "wheelhouse" / "files").iterdir()) for arg in ("--find-links", str(d))]
    done = subprocess.run(
        [
            *pip_command(
                "download",
                "http://127.0.0.1:9/simple",
                "--no-index",
                *find_links,
                "--only-binary=:all:",
                "--require-hashes",
                "-d",
                str(tmp_path / "d"),
                "-r",
                str(synced / "lockfiles" / f"{HOST.name}.txt"),
            )
        ],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["om_sdistonly-1.0-py3-none-any.whl"]


def test_relock_and_refetch_keep_the_built_wheel(cli: Cli, synced: Path, upstream: Upstream) -> None:
    before = {p.name: p.read_text() for p in (synced / "lockfiles").iterdir()}
    result = cli("lock", "--spec", str(synced / "mirror.toml"))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].endswith("are up to date")
    upstream.requests.clear()
    result = cli("fetch", "--spec", str(synced / "mirror.toml"))
    assert result.exit_code == 0
    assert (
        "wheels from sdists (sdist x target): 0 built here, 4 already built; 0 left to the targets\n" in result.stdout
    )
    assert not [p for p in upstream.requests.paths() if p.startswith("/files/")]
    assert {p.name: p.read_text() for p in (synced / "lockfiles").iterdir()} == before


def test_a_missing_build_requirement_is_named(make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(["om-sdistonly"])
    Workspace.open(workspace / "mirror.toml").lock()
    manifest = load_manifest(workspace / "lockfiles")
    files_dir = workspace / "wheelhouse" / "files"
    fetch(manifest, files_dir, session=make_session())
    shutil.rmtree(files_dir / "om-dynamic")  # as if the lock had forgotten the dynamic build requirement
    _, outcomes = build_missing(
        manifest, files_dir, Registry(workspace / "wheelhouse" / "built-wheels.json"), interpreters=discover()
    )
    by_sdist = {o.sdist: o for o in outcomes}
    assert by_sdist["om_buildhelper-1.0.tar.gz"].status == "built"  # needs only om-backend
    outcome = by_sdist["om_sdistonly-1.0.tar.gz"]
    assert outcome.status == "incomplete"
    assert "om-dynamic" in outcome.detail
    assert not (files_dir / "om-sdistonly" / "om_sdistonly-1.0-py3-none-any.whl").exists()
    # the stage itself refuses: the lock is incomplete, and it says which requirement is missing
    with pytest.raises(IncompleteBuildClosure, match=r"^the lock's build closure is incomplete: .*om-dynamic"):
        Workspace.open(workspace / "mirror.toml").build_wheels()
    assert not (files_dir / "om-sdistonly" / "om_sdistonly-1.0-py3-none-any.whl").exists()


def test_platform_wheel_does_not_serve_another_target_and_compiles_there(make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(["om-sdistonly"], targets=WITH_ARM64)
    Workspace.open(workspace / "mirror.toml").lock()
    manifest = load_manifest(workspace / "lockfiles")
    files_dir = workspace / "wheelhouse" / "files"
    fetch(manifest, files_dir, session=make_session())

    def fake_builder(sdist: Path, *, python: Path, find_links: Path, out_dir: Path, label: str) -> BuildResult:
        cp = f"cp{HOST.python.replace('.', '')}"
        wheel = out_dir / f"{sdist.name.removesuffix('.tar.gz')}-{cp}-{cp}-linux_x86_64.whl"
        wheel.write_bytes(b"a platform wheel")
        return BuildResult(wheel=wheel, sha256="", log_tail="")

    def fake_auditor(wheel: Path) -> Audit:  # auditwheel's verdict on a wheel needing nothing newer than glibc 2.17
        fitted = wheel.with_name(wheel.name.replace("linux_x86_64", "manylinux_2_17_x86_64"))
        wheel.rename(fitted)
        return Audit(wheel=fitted, tag="manylinux_2_17_x86_64")

    manifest, outcomes = build_missing(
        manifest,
        files_dir,
        Registry(workspace / "wheelhouse" / "built-wheels.json"),
        interpreters=discover(),
        builder=fake_builder,
        auditor=fake_auditor,
    )
    assert [(o.target, o.sdist, o.status) for o in outcomes] == [
        (HOST.name, "om_buildhelper-1.0.tar.gz", "built"),
        (HOST.name, "om_sdistonly-1.0.tar.gz", "built"),
        ("linux-arm64-cp312", "om_buildhelper-1.0.tar.gz", "skipped"),
        ("linux-arm64-cp312", "om_sdistonly-1.0.tar.gz", "skipped"),
    ]
    assert outcomes[2].detail == "no local CPython 3.12 for linux/arm64"
    from mirror.compilereport import compile_report

    report = compile_report(manifest, built={})
    assert report[HOST.name] == []
    assert [e["sdist"] for e in report["linux-arm64-cp312"]] == ["om_buildhelper-1.0.tar.gz", "om_sdistonly-1.0.tar.gz"]
