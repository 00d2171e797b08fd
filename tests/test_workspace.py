"""mirror.workspace.Workspace: the pipeline from Python, with no command line; the layout it owns."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mirror import _toml
from mirror.progress import NullProgress
from mirror.workspace import FetchOptions, IncompleteBuildClosure, Workspace
from tests.fixtures.env import MakeWorkspace, isolated_env, write_workspace
from tests.fixtures.server import Upstream

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mirror.workspace import Workspace

    result = Workspace.open(Path(sys.argv[1])).sync()
    json.dump({
        "click": "click" in sys.modules,
        "targets": [t.name for t in result.lock.manifest.targets],
        "downloaded": len(result.fetch.download.downloaded),
        "built": [o.status for o in result.fetch.builds or ()],
        "projects": result.index.projects,
    }, sys.stderr)
    """
)


def test_sync_from_python_imports_no_click_and_prints_nothing(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    workspace = make_workspace(["om-pure==2.0", "om-sdistonly"])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(workspace / "mirror.toml")],
        env=isolated_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    report = json.loads(done.stderr)
    assert report["click"] is False
    assert report["downloaded"] > 0 and report["projects"] >= 3
    assert "built" in report["built"]
    assert (workspace / "wheelhouse" / "simple" / "om-pure" / "index.html").is_file()


class Messages(NullProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_stages_report_through_the_one_progress(make_workspace: MakeWorkspace) -> None:
    progress = Messages()
    workspace = Workspace.open(make_workspace(["om-pure==2.0"]) / "mirror.toml", progress=progress)
    locked = workspace.lock()
    assert [p.pin for p in locked.manifest.targets[0].runtime()] == ["om-dep==1.0", "om-pure==2.0"]
    assert any(line.endswith(": resolving") for line in progress.lines)
    assert workspace.manifest() == locked.manifest


def test_a_layout_elsewhere_is_followed_by_every_path(upstream: Upstream, tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_workspace(root, upstream, ["om-sdistonly"])
    text = (root / "mirror.toml").read_text()
    moved = 'wheelhouse = "../store/wh"\nlockfiles = "locks/current"\n'
    (root / "mirror.toml").write_text(text.replace("[mirror]\n", f"[mirror]\n{moved}", 1))
    workspace = Workspace.open(root / "mirror.toml")
    result = workspace.sync()
    layout = workspace.layout
    assert layout.lockfiles == (root / "locks" / "current").resolve()
    assert layout.files == (root / ".." / "store" / "wh" / "files").resolve()
    assert result.fetch.files_dir == layout.files
    wheel = "om_sdistonly-1.0-py3-none-any.whl"
    assert (layout.files / "om-sdistonly" / wheel).is_file()  # built here
    pylock = _toml.loads((layout.lockfiles / f"pylock.{workspace.spec.targets[0].name}.toml").read_text())
    (package,) = [p for p in pylock["packages"] if p["name"] == "om-sdistonly"]
    (built,) = [w for w in package["wheels"] if w["name"] == wheel]
    assert (layout.lockfiles / built["path"]).resolve() == (layout.files / "om-sdistonly" / wheel).resolve()
    assert layout.simple.joinpath("om-sdistonly", "index.html").is_file()


def test_an_incomplete_build_closure_is_an_error_of_its_own(make_workspace: MakeWorkspace) -> None:
    workspace = Workspace.open(make_workspace(["om-sdistonly"]) / "mirror.toml")
    workspace.lock()
    workspace.fetch(FetchOptions(build=False))
    for wheel in (workspace.layout.files / "om-dynamic").iterdir():  # as if the lock had forgotten it
        wheel.unlink()
    with pytest.raises(IncompleteBuildClosure, match=r"the lock's build closure is incomplete: .*om-dynamic"):
        workspace.build_wheels()
