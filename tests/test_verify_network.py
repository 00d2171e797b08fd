"""mirror verify end to end on a small real set from PyPI, for the host target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.targets import host_target
from tests.fixtures.env import Cli
from tests.test_verify import needs_namespace

HOST = host_target()

pytestmark = [pytest.mark.network, needs_namespace]


def test_verify_requests_docopt_and_a_setuptools_project(cli: Cli, tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "app").mkdir(parents=True)
    (app / "app" / "__init__.py").write_text("import requests\nimport docopt\n")
    (app / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=45", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["requests", "docopt==0.6.2"]\n'
        '[tool.setuptools]\npackages = ["app"]\n'
    )
    (tmp_path / "mirror.toml").write_text(
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n\n'
        '[sources]\npackages = ["requests", "docopt==0.6.2"]\nprojects = ["app"]\n'
    )
    synced = cli("sync", "--spec", str(tmp_path / "mirror.toml"))
    assert synced.exit_code == 0, synced.stderr
    result = cli("verify", "--spec", str(tmp_path / "mirror.toml"), "--project", str(app), "--json")
    report = json.loads(result.stdout)
    failed = [s for s in report["steps"] if not s["ok"]]
    assert result.exit_code == 0 and report["ok"], json.dumps(failed, indent=1)[:4000]
    done = {(s["step"], s["target"]) for s in report["steps"]}
    for name in ("pip install", "uv pip install", "imports", "sdist builds", "files", "tags", "build closure"):
        assert (name, HOST.name) in done, name
