"""offline-mirror's own wheel, the tool workspace, and install.sh's choice of requirements file."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mirror
from mirror import selfinstall
from mirror.spec import parse_spec
from mirror.targets import Target, host_target
from tests.fixtures.env import isolated_env


def test_the_tool_wheel_is_a_valid_reproducible_wheel() -> None:
    wheel = selfinstall.tool_wheel()
    assert wheel.filename == f"offline_mirror-{selfinstall.version()}-py3-none-any.whl"
    assert selfinstall.tool_wheel().data == wheel.data, "the same sources give the same bytes"
    with zipfile.ZipFile(io.BytesIO(wheel.data)) as archive:
        names = set(archive.namelist())
        info = f"offline_mirror-{selfinstall.version()}.dist-info"
        package = Path(mirror.__file__).parent
        expected = {f"mirror/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
        assert expected | {"mirror/py.typed"} <= names
        assert not any("__pycache__" in n for n in names)
        assert "[console_scripts]\nmirror = mirror.cli:main" in archive.read(f"{info}/entry_points.txt").decode()
        assert "Root-Is-Purelib: true" in archive.read(f"{info}/WHEEL").decode()
        rows = list(csv.reader(io.StringIO(archive.read(f"{info}/RECORD").decode())))
        assert {row[0] for row in rows} == names
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = archive.read(path)
            encoded = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={encoded}", len(data))


def test_pip_installs_the_tool_wheel(tmp_path: Path) -> None:
    wheel = selfinstall.write_wheel(selfinstall.tool_wheel(), tmp_path)
    target = tmp_path / "site"
    env = isolated_env(tmp_path / "home")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        env=env,
        capture_output=True,
    )
    packed = Path("bundle") / "format.py"  # a module of a subpackage
    assert (target / "mirror" / packed).read_bytes() == (Path(mirror.__file__).parent / packed).read_bytes()
    script = target / "bin" / "mirror"
    assert "from mirror.cli import main" in script.read_text()


def test_requirements_drop_extras_and_add_what_is_asked() -> None:
    requirements = selfinstall.requirements(extra=["zstandard"])
    assert any(r.startswith("click") for r in requirements)
    assert not any("extra ==" in r for r in requirements)
    assert requirements[-1] == "zstandard"


def test_tool_targets_are_posix_with_a_new_enough_python() -> None:
    linux = Target.create("linux/amd64", "3.12")
    old = Target.create("linux/arm64", "3.9")
    windows = Target.create("windows/amd64", "3.12")
    assert selfinstall.tool_targets([linux, old, windows]) == (linux,)
    with pytest.raises(selfinstall.SelfInstallError, match="none of the targets does: windows-amd64-cp312"):
        selfinstall.tool_targets([windows])


def test_the_tool_workspace_lives_under_the_wheelhouse(tmp_path: Path) -> None:
    spec = parse_spec('[[target]]\nplatform = "linux/amd64"\npython = "3.12"\n', tmp_path / "mirror.toml")
    tool = selfinstall.tool_spec(spec, spec.targets, extra=["zstandard"])
    assert tool.wheelhouse == spec.wheelhouse / ".tool"
    assert tool.lockfiles == spec.wheelhouse / ".tool" / "lockfiles"
    assert tool.policy.sdists == "never" and not tool.policy.build_wheels
    assert "zstandard" in tool.sources.packages and tool.upstream == spec.upstream


def _install_sh(tmp_path: Path, targets: list[Target]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tool").mkdir()
    (tmp_path / "install.sh").write_text(selfinstall.INSTALL_SH)
    (tmp_path / "tool" / "targets.json").write_text(selfinstall.targets_json(targets))
    env = {**os.environ, "PYTHON": sys.executable, "HOME": str(tmp_path)}
    return subprocess.run(
        ["sh", str(tmp_path / "install.sh"), str(tmp_path / "venv")], env=env, capture_output=True, text=True
    )


def test_install_sh_names_the_targets_when_none_matches_the_host(tmp_path: Path) -> None:
    host = host_target()
    other = Target.create("linux/arm64" if host.info.arch != "arm64" else "linux/amd64", "3.12")
    result = _install_sh(tmp_path, [other])
    assert result.returncode == 1
    assert "install.sh: no tool target matches this host" in result.stderr
    assert f"the bundle has: {other.name} (Python 3.12, linux {other.info.machine} glibc)" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_install_sh_picks_the_host_target(tmp_path: Path) -> None:
    host = host_target()
    other = Target.create("linux/arm64" if host.info.arch != "arm64" else "linux/amd64", "3.12")
    result = _install_sh(tmp_path, [other, host])  # no wheels here: pip fails after the choice
    assert f"installing offline-mirror for {host.name}.txt" in result.stdout
    assert result.returncode != 0


def test_targets_json_describes_each_target() -> None:
    described = json.loads(selfinstall.targets_json([Target.create("linux/arm64/musl", "3.12")]))
    assert described == [
        {
            "name": described[0]["name"],
            "python": "3.12",
            "sys_platform": "linux",
            "machine": "aarch64",
            "libc": "musl",
            "requirements": f"{described[0]['name']}.txt",
        }
    ]
