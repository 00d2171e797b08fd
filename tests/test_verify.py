"""mirror verify: installs and builds from the served mirror inside a network namespace with no route out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from uv import find_uv_bin

from mirror._verified import RECORD
from mirror.manifest import load_manifest
from mirror.targets import host_target
from mirror.verify import (
    NAMESPACE_HINT,
    NamespaceUnavailable,
    Report,
    Step,
    namespace_command,
    render_table,
    run_isolated,
    static_steps,
)
from mirror.workspace import VerifyOptions, Workspace
from tests.fixtures.env import Cli, MakeWorkspace, invoke, isolated_env, synced_workspace
from tests.fixtures.server import Upstream

HOST = host_target()
FOREIGN = "windows-amd64-cp311"


def _namespace_works() -> bool:
    try:
        done = subprocess.run(namespace_command(["true"]), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespace_works(), reason=f"unshare --user --net is not possible on this machine: {NAMESPACE_HINT}"
)


@pytest.fixture(scope="module")
def workspace(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = synced_workspace(
        tmp_path_factory.mktemp("verify-workspace"),
        upstream,
        ["om-pure==2.0", "om-sdistonly"],
        targets=[(HOST.platform, HOST.python), ("windows/amd64", "3.11")],
    )
    return root


def copy_workspace(workspace: Path, into: Path) -> Path:
    shutil.copytree(workspace, into)
    return into


def verify_json(spec: Path, *args: str) -> tuple[int, dict[str, object]]:
    """``mirror verify --json``: its exit status and the report it printed."""
    result = invoke("verify", "--spec", str(spec), "--json", *args)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def verify_report(spec: Path, options: VerifyOptions | None = None) -> tuple[bool, dict[str, object]]:
    """``Workspace.verify`` (which re-runs ``mirror verify --inside`` in a namespace): whether every step passed,
    and the report as ``--json`` prints it."""
    report = Workspace.open(spec).verify(options)
    return report.ok, report.to_dict()


def cells(data: dict[str, object]) -> dict[tuple[str, str], bool]:
    steps = data["steps"]
    assert isinstance(steps, list)
    return {(s["step"], s["target"]): s["ok"] for s in steps}


def step(data: dict[str, object], name: str, target: str) -> dict[str, object]:
    steps = data["steps"]
    assert isinstance(steps, list)
    (found,) = [s for s in steps if s["step"] == name and s["target"] == target]
    assert isinstance(found, dict)
    return found


@needs_namespace
def test_complete_mirror_passes_every_step(workspace: Path) -> None:
    ok, data = verify_report(workspace / "mirror.toml")
    assert ok, json.dumps(data, indent=1)
    assert data["ok"] is True
    assert data["targets"] == [HOST.name, FOREIGN]
    expected = {("isolation", "*"): True}
    for name in ("files", "tags", "build closure"):
        expected[(name, HOST.name)] = expected[(name, FOREIGN)] = True
    for name in ("pip install", "uv pip install", "imports", "sdist builds"):
        expected[(name, HOST.name)] = True
    assert cells(data) == expected
    assert step(data, "imports", HOST.name)["summary"] == "3 modules of 3 distributions imported"
    assert step(data, "sdist builds", HOST.name)["summary"] == "2 sdists built"
    assert f"{FOREIGN}: no interpreter on this host; static checks only" in data["notes"]


@needs_namespace
def test_table_output_and_project(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    # a project whose build-system (om-backend, with static and dynamic requirements) comes from the mirror
    with tarfile.open(workspace / "wheelhouse" / "files" / "om-sdistonly" / "om_sdistonly-1.0.tar.gz") as sdist:
        sdist.extractall(tmp_path, filter="data")
    project = tmp_path / "om_sdistonly-1.0"
    result = cli("verify", "--spec", str(workspace / "mirror.toml"), "--target", HOST.name, "--project", str(project))
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("isolation: ✓ no route out (connect 192.0.2.1:80: ")
    assert lines[1].split() == ["step", HOST.name]
    assert [line.split() for line in lines[2:10]] == [
        ["files", "✓"],
        ["tags", "✓"],
        ["build", "closure", "✓"],
        ["pip", "install", "✓"],
        ["uv", "pip", "install", "✓"],
        ["imports", "✓"],
        ["sdist", "builds", "✓"],
        ["project", "om_sdistonly-1.0", "✓"],
    ]
    assert lines[-1] == "verify: all steps passed"


UV_APP = """[project]
name = "uvapp"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["om-pure==2.0"]

[build-system]
requires = ["om-backend"]
build-backend = "om_backend"

[tool.uv]
package = false
"""


@needs_namespace
def test_project_with_a_uv_lock_syncs_frozen_from_the_relocated_lock(upstream: Upstream, tmp_path: Path) -> None:
    project = tmp_path / "uvapp"
    (project / "uvapp").mkdir(parents=True)
    (project / "uvapp" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(UV_APP)
    (tmp_path / "home").mkdir()
    env = isolated_env(tmp_path / "home", extra={"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    locked = subprocess.run(
        [find_uv_bin(), "lock", "--index-url", upstream.url, "--python", sys.executable],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert locked.returncode == 0, locked.stderr
    original = (project / "uv.lock").read_text()
    assert upstream.base_url in original  # locked against the upstream, which the namespace cannot reach
    root = tmp_path / "ws"
    root.mkdir()
    (root / "mirror.toml").write_text(
        f'[mirror]\nupstream = "{upstream.url}"\n'
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n'
        f'[sources]\npackages = ["om-backend"]\nuv-locks = {json.dumps([str(project / "uv.lock")])}\n'
    )
    Workspace.open(root / "mirror.toml").sync()

    ok, data = verify_report(root / "mirror.toml", VerifyOptions(projects=(project,)))
    assert ok, json.dumps(data, indent=1)
    assert cells(data)[("project uvapp", HOST.name)] is True
    sync = step(data, "project uvapp: uv sync --frozen", HOST.name)
    assert sync["ok"] is True, sync
    assert sync["summary"] == "uv sync --frozen of the relocated uv.lock"
    assert step(data, "project uvapp: uv run", HOST.name)["ok"] is True
    assert (project / "uv.lock").read_text() == original  # relocated in a copy
    assert not (project / ".venv").exists()


@needs_namespace
def test_missing_build_requirement_fails_and_is_named(workspace: Path, tmp_path: Path) -> None:
    root = copy_workspace(workspace, tmp_path / "ws")
    files = root / "wheelhouse" / "files"
    (files / "om-dynamic" / "om_dynamic-1.0-py3-none-any.whl").unlink()
    record = json.loads((files / RECORD).read_text())
    del record["files"]["om-dynamic/om_dynamic-1.0-py3-none-any.whl"]
    (files / RECORD).write_text(json.dumps(record))
    indexed = Workspace.open(root / "mirror.toml").index()
    assert indexed.skipped == ("om_dynamic-1.0-py3-none-any.whl",)

    code, data = verify_json(root / "mirror.toml", "--target", HOST.name)
    assert code == 1
    assert data["ok"] is False
    failed = {key for key, ok in cells(data).items() if not ok}
    assert failed == {("files", HOST.name), ("build closure", HOST.name), ("sdist builds", HOST.name)}
    assert step(data, "files", HOST.name)["missing"] == ["om_dynamic-1.0-py3-none-any.whl (missing)"]
    assert step(data, "build closure", HOST.name)["missing"] == ["om-dynamic==1.0 (needed by om_sdistonly-1.0.tar.gz)"]
    build = step(data, "sdist builds", HOST.name)
    assert str(build["summary"]).startswith("om_sdistonly-1.0.tar.gz: exit status 1: ")
    missing = build["missing"]
    assert isinstance(missing, list)
    assert "om-dynamic" in missing
    assert any(str(m).startswith("http://127.0.0.1:") and str(m).endswith("/simple/om-dynamic/") for m in missing)
    assert build["output"]  # the tail of pip's output

    out = render_table(Report.from_dict(data))  # the text the command prints (test_table_output runs it)
    assert "✗ sdist builds [" in out and "  missing: om-dynamic\n" in out
    assert out.endswith("verify: 3 steps failed\n")


@needs_namespace
def test_namespace_has_no_route_out() -> None:
    probe = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "else:\n"
        "    print('connected')\n"
    )
    done = subprocess.run(
        namespace_command([sys.executable, "-c", probe]), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused ")


def test_static_check_of_a_foreign_target_catches_a_wrong_hash(workspace: Path, tmp_path: Path) -> None:
    root = copy_workspace(workspace, tmp_path / "ws")
    manifest = load_manifest(root / "lockfiles")
    entry = manifest.target(FOREIGN)
    victim = manifest.files["om_pure-2.0-py3-none-any.whl"]
    (root / "wheelhouse" / "files" / victim.relpath).write_bytes(b"tampered")
    steps = static_steps(manifest, entry, root / "wheelhouse" / "files")
    assert [(s.step, s.ok) for s in steps] == [("files", False), ("tags", True), ("build closure", True)]
    (corrupt,) = steps[0].missing
    assert corrupt.startswith("om_pure-2.0-py3-none-any.whl: sha256 ")
    assert corrupt.endswith(f", expected {victim.sha256}")
    assert steps[0].summary == "0 missing, 1 with the wrong sha256"


def test_json_report_round_trips() -> None:
    report = Report(
        targets=("t",),
        steps=(
            Step(step="isolation", target="*", ok=True, summary="no route out"),
            Step(step="pip install", target="t", ok=False, summary="exit 1", output=("x",), missing=("om-a",)),
        ),
        notes=("n",),
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data == {
        "ok": False,
        "targets": ["t"],
        "steps": [
            {"step": "isolation", "target": "*", "ok": True, "summary": "no route out", "output": [], "missing": []},
            {
                "step": "pip install",
                "target": "t",
                "ok": False,
                "summary": "exit 1",
                "output": ["x"],
                "missing": ["om-a"],
            },
        ],
        "notes": ["n"],
    }
    assert Report.from_dict(data) == report
    assert render_table(report) == (
        "isolation: ✓ no route out\n"
        "step         t\n"
        "pip install  ✗\n"
        "\n"
        "✗ pip install [t]: exit 1\n"
        "  missing: om-a\n"
        "  | x\n"
        "note: n\n"
        "\n"
        "verify: 1 steps failed\n"
    )


def test_no_namespace_is_an_error_with_the_fix() -> None:
    def refused(args: object, env: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", "unshare: unshare failed: Operation not permitted\n")

    with pytest.raises(NamespaceUnavailable) as caught:
        run_isolated(["x"], probe_runner=refused, runner=refused)
    assert str(caught.value) == (
        f"cannot create a network namespace: unshare: unshare failed: Operation not permitted; {NAMESPACE_HINT}"
    )


@needs_namespace
def test_setup_requires_through_pydistutils_cfg_alone(make_workspace: MakeWorkspace, upstream_catalog: object,
                                                      tmp_path: Path) -> None:
    import tarfile

    root = make_workspace(["om-setupreq"])
    Workspace.open(root / "mirror.toml").sync()
    files_dir = upstream_catalog.files_dir
    with tarfile.open(files_dir / "om_setupreq-1.0.tar.gz") as tar:
        tar.extractall(tmp_path / "src", filter="data")
    project = tmp_path / "src" / "om_setupreq-1.0"
    ok, data = verify_report(root / "mirror.toml", VerifyOptions(projects=(project,)))
    assert ok, json.dumps(data, indent=1)[:3000]
    found = step(data, "project om_setupreq-1.0: setup_requires", HOST.name)
    assert found["ok"] is True


@pytest.mark.parametrize(("pip", "flag"), [("22.3", ["--use-pep517"]), ("23.0.1", ["--use-pep517"]),
                                           ("19.0", ["--use-pep517"]), ("18.1", []), ("9.0.3", []),
                                           ("23.1", []), ("26.3", []), (None, [])])  # fmt: skip
def test_old_pips_build_sdists_isolated_too(tmp_path: Path, pip: str | None, flag: list[str]) -> None:
    from mirror.verify import isolated_build_flag

    python = tmp_path / "venv" / "bin" / "python"
    site = tmp_path / "venv" / "lib" / "python3.10" / "site-packages"
    site.mkdir(parents=True)
    if pip is not None:
        (site / f"pip-{pip}.dist-info").mkdir()
    assert isolated_build_flag(python) == flag


@pytest.mark.parametrize(
    ("pip", "verb", "how"),
    [("9.0.3", "install", "built and installed with pip 9.0"), ("18.1", "install", "built and installed with pip 18.1"),
     ("19.0", "wheel", "built"), ("26.3", "wheel", "built")],
)  # fmt: skip
def test_pips_before_19_prove_an_sdist_by_installing_it(tmp_path: Path, pip: str, verb: str, how: str) -> None:
    """pip < 19 has no --use-pep517, and its `pip wheel` needs `wheel` in the venv: it installs the sdist instead."""
    from mirror.verify import sdist_build_command

    python = tmp_path / "venv" / "bin" / "python"
    (tmp_path / "venv" / "lib" / "python3.6" / "site-packages" / f"pip-{pip}.dist-info").mkdir(parents=True)
    command, summary = sdist_build_command(python, Path("/w/x-1.0.tar.gz"), Path("/out"))
    assert command[:4] == [str(python), "-m", "pip", verb]
    assert summary == how
    if verb == "install":
        assert command[4:] == ["--disable-pip-version-check", "--no-deps", "--target", "/out", "/w/x-1.0.tar.gz"]
