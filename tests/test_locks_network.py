"""[sources] locks against the real PyPI: a small poetry.lock and pdm.lock (tests/data/network, made by Poetry 2.5.1
and PDM 2.29.4) whose six 1.16.0 is older than PyPI's newest, mirrored exactly for a Linux and a Windows target."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mirror.workspace import Workspace

pytestmark = pytest.mark.network

DATA = Path(__file__).parent / "data" / "network"


def test_real_poetry_and_pdm_locks_are_mirrored_exactly(tmp_path: Path) -> None:
    shutil.copytree(DATA / "poetry", tmp_path / "poetry")
    shutil.copytree(DATA / "pdm", tmp_path / "pdm")
    (tmp_path / "mirror.toml").write_text(
        '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n\n'
        '[[target]]\nplatform = "windows/amd64"\npython = "3.12"\n\n'
        '[sources]\nlocks = [{ path = "poetry/poetry.lock", groups = ["main", "dev"] }, "pdm/pdm.lock"]\n\n'
        "[policy]\nbuild-wheels = false\n"
    )
    result = Workspace.open(tmp_path / "mirror.toml").sync()  # every locked hash checked against PyPI's
    manifest = result.lock.manifest

    def pins(target: str) -> list[str]:
        return [p.pin for p in manifest.target(target).runtime()]

    assert pins("linux-amd64-cp311") == ["iniconfig==2.0.0", "six==1.16.0"]  # six 1.17.0 exists: not taken
    assert pins("windows-amd64-cp312") == ["colorama==0.4.6", "iniconfig==2.0.0", "six==1.16.0"]  # its marker
    assert manifest.target("linux-amd64-cp311").builds == ()  # package-mode / distribution off: nothing to build
    assert result.fetch.download.missing == ()
    assert sorted(manifest.files) == [
        "colorama-0.4.6-py2.py3-none-any.whl",
        "iniconfig-2.0.0-py3-none-any.whl",
        "six-1.16.0-py2.py3-none-any.whl",
    ]
    assert result.index.projects == 3
