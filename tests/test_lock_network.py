"""mirror lock against the real PyPI: two foreign targets, a sdist-only dependency, a setuptools project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.workspace import Workspace

pytestmark = pytest.mark.network


def test_lock_real_packages_for_two_targets(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=45", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["requests"]\n'
    )
    (tmp_path / "mirror.toml").write_text(
        '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n\n'
        '[[target]]\nplatform = "linux/arm64"\npython = "3.12"\n\n'
        '[sources]\npackages = ["requests", "docopt==0.6.2"]\nprojects = ["app"]\n'
    )
    Workspace.open(tmp_path / "mirror.toml").lock()
    lockfiles = tmp_path / "lockfiles"
    manifest = json.loads((lockfiles / "mirror.lock.json").read_text())

    def files(target: str, name: str, role: str = "runtime") -> list[str]:
        (package,) = [p for p in manifest["targets"][target]["packages"] if p["name"] == name and p["role"] == role]
        return package["files"]

    amd = files("linux-amd64-cp311", "charset-normalizer")
    arm = files("linux-arm64-cp312", "charset-normalizer")
    assert len(amd) == len(arm) == 1
    assert "cp311" in amd[0] and "x86_64" in amd[0]
    assert "cp312" in arm[0] and "aarch64" in arm[0]
    amd_hash = manifest["files"][amd[0]]["sha256"]
    arm_hash = manifest["files"][arm[0]]["sha256"]
    assert amd_hash != arm_hash
    amd_txt = (lockfiles / "linux-amd64-cp311.txt").read_text()
    arm_txt = (lockfiles / "linux-arm64-cp312.txt").read_text()
    assert amd_hash in amd_txt and amd_hash not in arm_txt
    assert arm_hash in arm_txt and arm_hash not in amd_txt
    # docopt ships only an sdist; it and the project are built: setuptools and wheel are in the build locks
    assert files("linux-amd64-cp311", "docopt") == ["docopt-0.6.2.tar.gz"]
    for target in ("linux-amd64-cp311", "linux-arm64-cp312"):
        build = (lockfiles / f"{target}.build.txt").read_text()
        assert "\nsetuptools==" in build and "\nwheel==" in build, build
        builds = {b["for"] for b in manifest["targets"][target]["builds"]}
        assert builds == {"docopt-0.6.2.tar.gz", "project app"}
