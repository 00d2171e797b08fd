"""mirror index: the static PEP 503/691/658/700 tree over the fetched, verified files."""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.index import extract_metadata, write_index
from mirror.manifest import load_manifest
from mirror.targets import host_target
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, isolated_env, pip_command, synced_workspace
from tests.fixtures.server import Upstream

HOST = host_target()


@pytest.fixture
def synced(upstream: Upstream, tmp_path: Path) -> Path:
    targets = [(HOST.platform, HOST.python), ("windows/amd64", "3.11")]
    return synced_workspace(tmp_path, upstream, ["om-pure==2.0", "om-native", "om-sdistonly"], targets=targets)


def test_tree_layout_and_root(synced: Path) -> None:
    simple = synced / "wheelhouse" / "simple"
    manifest = load_manifest(synced / "lockfiles")
    projects = sorted({f.project for f in manifest.files.values()})
    root = json.loads((simple / "index.json").read_text())
    assert root == {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in projects]}
    for project in projects:
        assert (simple / project / "index.html").is_file()
        assert f'<a href="{project}/">{project}</a><br/>' in (simple / "index.html").read_text()


def test_project_json_is_pep_691_with_pep_700_fields(synced: Path) -> None:
    page = json.loads((synced / "wheelhouse" / "simple" / "om-native" / "index.json").read_text())
    manifest = load_manifest(synced / "lockfiles")
    locked = sorted(f for f in manifest.files if f.startswith("om_native-"))
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "om-native"
    assert page["versions"] == ["1.0"]
    assert [f["filename"] for f in page["files"]] == locked
    files_dir = synced / "wheelhouse" / "files"
    for item in page["files"]:
        path = files_dir / "om-native" / item["filename"]
        assert item["url"] == f"../../files/om-native/{item['filename']}"
        assert item["hashes"] == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        assert item["size"] == path.stat().st_size
        assert item["yanked"] is False
        if item["filename"].endswith(".whl"):
            metadata = (files_dir / "om-native" / (item["filename"] + ".metadata")).read_bytes()
            assert item["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
            assert metadata == extract_metadata(path)
        else:
            assert item["core-metadata"] is False


def test_project_html_is_pep_503_with_escaped_requires_python(synced: Path) -> None:
    text = (synced / "wheelhouse" / "simple" / "om-pure" / "index.html").read_text()
    manifest = load_manifest(synced / "lockfiles")
    wheel = manifest.files["om_pure-2.0-py3-none-any.whl"]
    assert wheel.requires_python == ">=3.9"
    metadata = (synced / "wheelhouse" / "files" / "om-pure" / "om_pure-2.0-py3-none-any.whl.metadata").read_bytes()
    digest = hashlib.sha256(metadata).hexdigest()
    assert (
        f'<a href="../../files/om-pure/om_pure-2.0-py3-none-any.whl#sha256={wheel.sha256}"'
        f' data-requires-python="{html.escape(">=3.9")}" data-dist-info-metadata="sha256={digest}"'
        f' data-core-metadata="sha256={digest}">om_pure-2.0-py3-none-any.whl</a><br/>'
    ) in text
    assert "&gt;=3.9" in text


def test_built_wheels_are_indexed(synced: Path) -> None:
    page = json.loads((synced / "wheelhouse" / "simple" / "om-sdistonly" / "index.json").read_text())
    assert [f["filename"] for f in page["files"]] == ["om_sdistonly-1.0-py3-none-any.whl", "om_sdistonly-1.0.tar.gz"]


def test_rerun_rewrites_nothing_and_output_is_deterministic(synced: Path) -> None:
    simple = synced / "wheelhouse" / "simple"
    before = {p: p.read_bytes() for p in simple.rglob("*") if p.is_file()}
    manifest = Workspace.open(synced / "mirror.toml").manifest()
    result = write_index(manifest, synced / "wheelhouse")
    assert result.written == ()
    # a fresh tree from scratch is byte-identical
    for path in simple.rglob("index.*"):
        path.unlink()
    (simple / ".state.json").unlink()
    write_index(manifest, synced / "wheelhouse")
    assert {p: p.read_bytes() for p in simple.rglob("*") if p.is_file()} == before


def test_unverified_file_is_not_indexed(cli: Cli, synced: Path) -> None:
    victim = synced / "wheelhouse" / "files" / "om-dep" / "om_dep-1.0-py3-none-any.whl"
    victim.write_bytes(b"tampered")
    result = cli("index", "--spec", str(synced / "mirror.toml"))
    assert result.exit_code == 0
    assert "not indexed (missing or unverified; run mirror fetch): om_dep-1.0-py3-none-any.whl" in result.stderr
    # om-dep had only that file: its page is gone, and the root no longer lists it
    assert not (synced / "wheelhouse" / "simple" / "om-dep" / "index.json").exists()
    root = json.loads((synced / "wheelhouse" / "simple" / "index.json").read_text())
    assert {"name": "om-dep"} not in root["projects"]


def test_a_killed_run_leaves_temporaries_the_next_run_removes(synced: Path) -> None:
    wheelhouse = synced / "wheelhouse"
    # what a run killed between its first staged write and its commit leaves behind
    (wheelhouse / "simple" / ".writing").touch()
    left = [
        wheelhouse / "files" / "om-dep" / ".om_dep-1.0-py3-none-any.whl.metadata.x1y2z3.part",
        wheelhouse / "simple" / "om-dep" / ".index.json.a1b2c3.part",
        wheelhouse / "simple" / "..state.json.d4e5f6.part",
        wheelhouse / ".index.html.g7h8i9.part",
        wheelhouse / ".use.html.j1k2l3.part",
        wheelhouse / "..changes.json.m4n5o6.part",
        wheelhouse / "projects" / ".om-dep.html.p7q8r9.part",
    ]
    for path in left:
        path.write_bytes(b"half")
    result = Workspace.open(synced / "mirror.toml").index()
    assert result.skipped == ()
    assert [p for p in left if p.exists()] == []
    assert not (wheelhouse / "simple" / ".writing").exists()
    assert sorted(p.name for p in wheelhouse.rglob(".*") if p.is_file()) == [
        ".changes.json",
        ".state.json",
        ".verified.json",
    ]


def test_metadata_hashes_are_remembered_and_a_changed_file_is_read_again(synced: Path) -> None:
    wheelhouse = synced / "wheelhouse"
    state = json.loads((wheelhouse / "simple" / ".state.json").read_text())
    relpath = "om-dep/om_dep-1.0-py3-none-any.whl"
    metadata = wheelhouse / "files" / (relpath + ".metadata")
    assert state["metadata"][relpath][4] == hashlib.sha256(metadata.read_bytes()).hexdigest()
    metadata.write_bytes(metadata.read_bytes() + b"Summary: edited by hand\n")  # newer than the wheel: kept, hashed
    result = Workspace.open(synced / "mirror.toml").index()
    assert "om-dep" in result.written
    page = json.loads((wheelhouse / "simple" / "om-dep" / "index.json").read_text())
    assert page["files"][0]["core-metadata"] == {"sha256": hashlib.sha256(metadata.read_bytes()).hexdigest()}


def test_pip_installs_from_the_static_tree_with_require_hashes(synced: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    index = (synced / "wheelhouse" / "simple").as_uri()
    done = subprocess.run(
        [*pip_command("install", index, "--require-hashes", "--target", str(tmp_path / "site"), "-r",
                      str(synced / "lockfiles" / f"{HOST.name}.txt"))],
        env=isolated_env(home), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    installed = sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info"))
    assert installed == ["om_dep-1.0.dist-info", "om_native-1.0.dist-info", "om_pure-2.0.dist-info",
                         "om_sdistonly-1.0.dist-info"]
