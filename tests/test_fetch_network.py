"""mirror sync against the real PyPI: two foreign targets, every file's hash checked on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mirror.interpreters import discover, interpreter_for
from mirror.targets import Target
from mirror.workspace import Workspace
from tests.fixtures.env import Cli

pytestmark = pytest.mark.network


def test_sync_real_packages_for_two_targets(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(
        '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n\n'
        '[[target]]\nplatform = "linux/arm64"\npython = "3.12"\n\n'
        '[sources]\npackages = ["requests", "docopt==0.6.2", "setuptools"]\n'
    )
    Workspace.open(tmp_path / "mirror.toml").sync()
    manifest = json.loads((tmp_path / "lockfiles" / "mirror.lock.json").read_text())
    files_dir = tmp_path / "wheelhouse" / "files"
    assert len(manifest["files"]) >= 10
    for filename, entry in manifest["files"].items():
        path = files_dir / entry["project"] / filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], filename
    # docopt ships only an sdist: with a local CPython 3.11 (or 3.12) a wheel is built here; being pure, it serves
    # both targets
    built = [name for name, entry in manifest["files"].items() if entry.get("built_from") == "docopt-0.6.2.tar.gz"]
    buildable = any(interpreter_for(Target.create(p, v), discover()) for p, v in
                    (("linux/amd64", "3.11"), ("linux/arm64", "3.12")))
    assert built == (["docopt-0.6.2-py2.py3-none-any.whl"] if buildable else [])
    again = cli("fetch", "--spec", str(tmp_path / "mirror.toml"))
    assert again.exit_code == 0
    assert next(line for line in again.stdout.splitlines() if line.startswith("downloaded ")).startswith(
        "downloaded 0 files (0 B)"
    )
