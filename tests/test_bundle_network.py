"""A bundle carries offline-mirror itself: install.sh installs the tool from the bundle inside a network namespace
with no route out, and the installed tool imports the bundle (real PyPI packages, for the host target)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirror.targets import host_target
from tests.fixtures.env import Cli
from tests.test_verify import needs_namespace

HOST = host_target()

pytestmark = [pytest.mark.network, needs_namespace]


def test_install_sh_installs_the_tool_offline_and_it_imports_the_bundle(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n\n[sources]\npackages = ["six"]\n'
    )
    synced = cli("sync", "--spec", str(tmp_path / "mirror.toml"))
    assert synced.exit_code == 0, synced.output
    out = tmp_path / "carry" / "mirror.tar.gz"
    exported = cli("bundle", "export", str(out), "--spec", str(tmp_path / "mirror.toml"))
    assert exported.exit_code == 0, exported.output

    # the offline host: only Python. Extract with Python's own tarfile, install, import, check.
    script = f"""
set -eu
cd {tmp_path}/carry
{sys.executable} -m tarfile -e mirror.tar.gz extracted
PYTHON={sys.executable} HOME={tmp_path}/home sh extracted/install.sh {tmp_path}/tool-venv
{tmp_path}/tool-venv/bin/mirror bundle verify mirror.tar.gz
{tmp_path}/tool-venv/bin/mirror bundle import mirror.tar.gz --into {tmp_path}/offline
{tmp_path}/tool-venv/bin/mirror check --spec {tmp_path}/offline/mirror.toml
"""
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "offline-mirror, version" in result.stdout
    assert ": ok — full bundle" in result.stdout
    assert "imported full bundle" in result.stdout
    assert result.stdout.rstrip().endswith("ok, 0 missing, 0 corrupt")
