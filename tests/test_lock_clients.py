"""Poetry, PDM and Pipenv, run for real, install a team's committed lock from the mirror with no route out.

Each fixture project (tests/data/clients) was locked by the real tool (Poetry 2.5.1, PDM 2.29.4, Pipenv 2026.10.3)
against the fixture index when om-pure 1.0 was its newest; the upstream the mirror is made from now also has
om-pure 2.0, so anything that resolved the project again would install 2.0 (and om-dep with it). The mirror is
synced from the lock (`[sources] locks`), then, inside `unshare --user --net` with only loopback, `mirror serve`
serves it and the test runs exactly what `mirror config` and docs/deploy.md tell a user to run — the commands of
the `poetry.txt` and `pipenv.txt` it writes, line for line:

* Poetry: `mirror relocate-poetry-lock . --url URL`, then `poetry install --only main` (the root project installed);
* PDM: `pdm.toml` copied next to pyproject.toml, `pdm sync --prod` (the root project built with pdm-backend from
  the mirror);
* Pipenv: `mirror.env` copied into the project and sourced, `pipenv install --deploy`.

Then the installed project imports om-pure 1.0.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.workspace import Workspace
from tests.conftest import MakeUpstream
from tests.fixtures.dists import DEFAULT_RELEASES
from tests.fixtures.offline import BIN, URL, offline
from tests.test_verify import needs_namespace

DATA = Path(__file__).parent / "data" / "clients"
def tool(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed in the test environment (the test extra pins it)")
    return path


def check_fixture_hashes(project: Path, files_dir: Path) -> None:
    """The committed lock names the fixture's files by sha256: they must be byte-identical here."""
    lines = [line for p in project.iterdir() if p.name.endswith(".lock") for line in p.read_text().splitlines()]
    text = "\n".join(line for line in lines if "content_hash" not in line)  # PDM's hash of pyproject.toml
    locked = set(re.findall(r"sha256:([0-9a-f]{64})", text))
    served = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files_dir.iterdir() if p.is_file()}
    if not locked <= served:
        pytest.fail(
            f"{project.name}: the fixture's files are not byte-identical to the ones the committed lock was made"
            " from (another zlib?); lock tests/data/clients again with the tool against the fixture index"
        )


def mirrored(make_upstream: MakeUpstream, tmp_path: Path, name: str, lock: str, repack: tuple[str, ...]) -> Path:
    """The fixture project copied to tmp_path/project, and a workspace synced from its lock."""
    upstream = make_upstream(DEFAULT_RELEASES, repack=("setuptools", "wheel", "packaging", *repack))
    project = tmp_path / "project"
    shutil.copytree(DATA / name, project)
    check_fixture_hashes(project, tmp_path / "upstream-1")
    spec = tmp_path / "mirror.toml"
    spec.write_text(f'[mirror]\nupstream = "{upstream.url}"\n\n[[target]]\nplatform = "linux/amd64"\n'
                    f'python = "{sys.version_info.major}.{sys.version_info.minor}"\n\n'
                    f'[sources]\nlocks = ["project/{lock}"]\n')  # fmt: skip
    result = Workspace.open(spec).sync()
    (entry,) = result.lock.manifest.targets
    assert [p.pin for p in entry.runtime()] == ["om-native==1.0", "om-pure==1.0"]  # 2.0 is upstream: not taken
    return spec


def assert_ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def commands(client_config: Path, name: str) -> str:
    """The commands a file `mirror config` wrote tells the user to run (its lines that are not comments)."""
    lines = (client_config / name).read_text().splitlines()
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def configured(spec: Path, out: Path, clients: str) -> None:
    done = subprocess.run(
        [BIN / "mirror", "config", "--url", f"{URL}/simple/", "--for", clients, "-o", out, "--spec", spec],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@needs_namespace
def test_poetry_installs_the_relocated_lock_offline(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    tool("poetry")
    spec = mirrored(make_upstream, tmp_path, "poetry", "poetry.lock", ("poetry-core",))
    project = tmp_path / "project"
    configured(spec, tmp_path / "client-config", "poetry")
    done = offline(
        spec,
        tmp_path,
        f"""
        cd {project}
        {commands(tmp_path / "client-config", "poetry.txt")}
        poetry check --lock
        poetry run python -c "import app, om_pure; assert app.VERSION == om_pure.VERSION == '1.0', app.VERSION"
        """,
        POETRY_VIRTUALENVS_IN_PROJECT="true",
        POETRY_CACHE_DIR=str(tmp_path / "poetry-cache"),
        POETRY_NO_INTERACTION="1",
    )
    assert_ok(done)
    assert "Installing the current project: app (0.1.0)" in done.stdout
    lock = (project / "poetry.lock").read_text()
    assert lock.count(f'url = "{URL}/simple"') == 4  # every package installs from the mirror
    assert '[[tool.poetry.source]]\nname = "mirror"' in (project / "pyproject.toml").read_text()


@needs_namespace
def test_pdm_syncs_the_lock_offline_with_the_mirrors_pdm_toml(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    tool("pdm")
    spec = mirrored(make_upstream, tmp_path, "pdm", "pdm.lock", ("pdm-backend",))
    project = tmp_path / "project"
    configured(spec, tmp_path / "client-config", "pdm")
    shutil.copy(tmp_path / "client-config" / "pdm.toml", project / "pdm.toml")  # as its first line says
    done = offline(
        spec,
        tmp_path,
        f"""
        cd {project}
        pdm sync --prod
        .venv/bin/python -c "import app, om_pure; assert app.VERSION == om_pure.VERSION == '1.0', app.VERSION"
        """,
        PDM_CACHE_DIR=str(tmp_path / "pdm-cache"),
        PDM_CHECK_UPDATE="false",
    )
    assert_ok(done)
    assert "Install app 0.1.0 successful" in done.stdout + done.stderr


@needs_namespace
def test_pipenv_installs_the_lock_offline_with_the_mirrors_env(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    tool("pipenv")
    spec = mirrored(make_upstream, tmp_path, "pipenv", "Pipfile.lock", ())
    project = tmp_path / "project"
    before = json.loads((project / "Pipfile.lock").read_text())["_meta"]["hash"]
    configured(spec, tmp_path / "client-config", "pipenv,env")
    shutil.copy(tmp_path / "client-config" / "mirror.env", project / "mirror.env")  # as pipenv.txt says
    done = offline(
        spec,
        tmp_path,
        f"""
        cd {project}
        {commands(tmp_path / "client-config", "pipenv.txt")}
        .venv/bin/python -c "import om_pure, om_native; assert om_pure.VERSION == '1.0', om_pure.VERSION"
        """,
        PIPENV_VENV_IN_PROJECT="1",
        PIPENV_NOSPIN="1",
        PIPENV_YES="1",
    )
    assert_ok(done)
    assert json.loads((project / "Pipfile.lock").read_text())["_meta"]["hash"] == before  # the Pipfile is unchanged
