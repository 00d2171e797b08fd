"""The ``mirror`` command line: init, targets, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from mirror.spec import load_spec
from mirror.targets import Target, host_target
from tests.fixtures.env import Cli


def test_init_then_targets_json(cli: Cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path), "--package", "docopt==0.6.2", "--target", "linux/arm64:3.12")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == f"wrote {tmp_path / 'mirror.toml'}"
    result = cli("targets", "--json", "--spec", str(tmp_path / "mirror.toml"))
    assert (result.exit_code, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    host = host_target()
    assert [t["name"] for t in report] == [host.name, "linux-arm64-cp312"]
    assert report[0]["tags"] == [str(t) for t in host.tags()]  # machine-readable: complete by default
    limited = json.loads(cli("targets", "--json", "--tags", "3", "--spec", str(tmp_path / "mirror.toml")).stdout)
    assert limited[0]["tags"] == [str(t) for t in host.tags()[:3]]
    assert ", … (" in cli("targets", "--spec", str(tmp_path / "mirror.toml")).stdout  # people: the first 8
    arm = Target.create("linux/arm64", "3.12")
    assert {k: v for k, v in report[1].items() if k not in ("markers", "tags")} == {
        "name": "linux-arm64-cp312",
        "platform": "linux/arm64",
        "python": "3.12",
        "implementation": "cp",
        "abi": "cp312",
        "glibc": "2.28",
        "uv_python_platform": "aarch64-manylinux_2_28",
        "uv_environment": {},
        "tag_count": len(arm.tags()),
    }
    assert report[1]["markers"] == arm.marker_environment()
    assert report[1]["markers"]["platform_machine"] == "aarch64"
    assert report[1]["tags"][:2] == ["cp312-cp312-linux_aarch64", "cp312-cp312-manylinux_2_28_aarch64"]


def test_targets_all_tags_for_the_host_match_sys_tags(cli: Cli, tmp_path: Path) -> None:
    cli("init", str(tmp_path))
    result = cli("targets", "--json", "--tags", "0", "--spec", str(tmp_path / "mirror.toml"))
    assert result.exit_code == 0
    (host,) = json.loads(result.stdout)
    assert host["tag_count"] == len(host["tags"])
    assert set(host["tags"]) == {str(t) for t in sys_tags()}


def test_targets_text(cli: Cli, tmp_path: Path) -> None:
    cli("init", str(tmp_path), "-t", "windows/amd64:3.13")
    result = cli("targets", "--spec", str(tmp_path / "mirror.toml"), "--tags", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    win = lines.index("windows-amd64-cp313  windows/amd64 CPython 3.13")
    assert lines[win + 1] == "  uv:      --python-platform x86_64-pc-windows-msvc --python-version 3.13"
    assert lines[win + 2].startswith("  markers: sys_platform=win32  platform_machine=AMD64  platform_system=Windows")
    assert lines[win + 3] == "  tags:    cp313-cp313-win_amd64, cp313-abi3-win_amd64, … (45 in all)"


def test_init_finds_sources(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    result = cli("init", str(tmp_path))
    assert result.exit_code == 0
    assert "  sources: requirements.txt, pyproject.toml" in result.stdout.splitlines()
    text = (tmp_path / "mirror.toml").read_text()
    assert 'requirements = ["requirements.txt"]' in text
    assert 'projects = [{ path = ".", extras = [], groups = [] }]' in text


def test_init_target_for_the_host_platform_replaces_the_host(cli: Cli, tmp_path: Path) -> None:
    host = host_target()
    assert cli("init", str(tmp_path), "-t", f"{host.platform}:{host.python}").exit_code == 0
    result = cli("targets", "--json", "--spec", str(tmp_path / "mirror.toml"))
    assert [t["name"] for t in json.loads(result.stdout)] == [host.name]


def test_init_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    cli("init", str(tmp_path))
    before = (tmp_path / "mirror.toml").read_text()
    result = cli("init", str(tmp_path), "-p", "requests")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: {tmp_path / 'mirror.toml'}: already exists; pass --force to overwrite it\n"
    assert (tmp_path / "mirror.toml").read_text() == before
    assert cli("init", str(tmp_path), "-p", "requests", "--force").exit_code == 0
    assert 'packages = ["requests"]' in (tmp_path / "mirror.toml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-t", "linux/amd65:3.11"],
            "error: --target: 'linux/amd65:3.11': 'linux/amd65' is not a known platform; known: ",
        ),
        (["-t", "linux/arm64:2.7"], "error: --target: 'linux/arm64:2.7': '2.7' is not supported; expected 3.6 or newer"),
        (["-p", "requests>=>2"], "error: "),
        (["--upstream", "pypi.org"], "error: mirror.upstream: 'pypi.org' is not an index URL"),
    ],
)
def test_init_bad_input_writes_nothing(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("init", str(tmp_path), *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_targets_bad_spec_is_one_line(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "mirror.toml"
    spec.write_text('[[target]]\nplatform = "linux/amd65"\npython = "3.11"\n')
    result = cli("targets", "--spec", str(spec))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {spec}: target[0].platform: 'linux/amd65' is not a known platform; known: ")
    assert result.stderr.count("\n") == 1


def test_targets_missing_spec(cli: Cli, tmp_path: Path) -> None:
    result = cli("targets", "--spec", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.toml'}: no such file; create one with 'mirror init'\n"


def test_console_script_is_installed(tmp_path: Path) -> None:
    """The installed ``mirror`` entry point runs init and targets, from the spec's directory by default."""
    script = Path(sys.executable).with_name("mirror")
    assert script.exists(), "install the project (pip install -e .) so the console script exists"
    subprocess.run([str(script), "init", "-t", "linux/amd64/musl:3.12"], cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run([str(script), "targets", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert [t["name"] for t in json.loads(done.stdout)][1] == "linux-amd64-musl-cp312"
    version = subprocess.run([sys.executable, "-m", "mirror", "--version"], check=True, capture_output=True, text=True)
    assert version.stdout.startswith("offline-mirror, version ")


def test_an_unexpected_os_error_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", "/srv/mirror/mirror.toml")

    monkeypatch.setattr("mirror.cli.pipeline.load_spec", refuse)
    result = cli("targets")
    assert result.exit_code == 1
    assert result.output == "error: /srv/mirror/mirror.toml: Permission denied\n"


def test_init_takes_a_poetry_lock_as_the_source_instead_of_the_project(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    (tmp_path / "poetry.lock").write_text("")
    (tmp_path / "pylock.prod.toml").write_text("")
    result = cli("init", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "  sources: poetry.lock, pylock.prod.toml\n" in result.stdout
    spec = load_spec(tmp_path / "mirror.toml")
    assert [(lock.path.name, lock.format) for lock in spec.sources.locks] == [
        ("poetry.lock", "poetry.lock"),
        ("pylock.prod.toml", "pylock.toml"),
    ]
    assert spec.sources.projects == ()
