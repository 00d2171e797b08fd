"""mirror doctor: a project read against a synced mirror for offline-deploy hazards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from mirror.doctor import (
    Finding,
    MirrorView,
    ProjectFiles,
    check_stale_venv,
    check_unpinned,
    check_uv_run,
    diagnose,
    find_imports,
    read_project_files,
    suggest_distribution,
    wheel_modules,
)
from mirror.targets import host_target
from mirror.workspace import Workspace
from tests.fixtures.env import invoke, synced_workspace
from tests.fixtures.server import Upstream

HOST = host_target()
SETUPTOOLS_PYPROJECT = (
    '[build-system]\nrequires = ["setuptools>=45", "wheel"]\nbuild-backend = "setuptools.build_meta"\n'
)


@pytest.fixture(scope="module")
def workspace(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = synced_workspace(tmp_path_factory.mktemp("doctor-ws"), upstream, ["om-pure==2.0"])
    return root


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def doctor(workspace: Path, project: Path, *extra: str) -> Result:
    return invoke("doctor", str(project), "--spec", str(workspace / "mirror.toml"), *extra)


APP = {
    "app/__init__.py": "",
    "app/main.py": "import json\nimport om_pure\nimport jwt\nfrom helpers import thing\nimport mylib.sub\n",
    "app/helpers.py": "thing = 1\n",
    "src/mylib/__init__.py": "",
    "src/mylib/sub.py": "from . import other\n",
    ".venv/lib/site.py": "import not_scanned\n",
}


def test_missing_import_names_the_line_and_the_distribution(workspace: Path, tmp_path: Path) -> None:
    result = doctor(workspace, write(tmp_path, APP))
    assert result.exit_code == 1
    message = (
        f"error[missing-import] app/main.py:3: import 'jwt': no locked distribution for {HOST.name} provides "
        "'jwt'; add PyJWT to the requirements (the distribution providing 'jwt')"
    )
    assert result.stdout.splitlines() == [message, f"{tmp_path} for {HOST.name}: 1 error, 0 warnings"]


def test_clean_project_exits_zero(workspace: Path, tmp_path: Path) -> None:
    result = doctor(workspace, write(tmp_path, {"main.py": "import os\nimport om_pure\nimport om_dep\n"}))
    assert (result.exit_code, result.stdout) == (0, "0 errors, 0 warnings: no hazards\n")


def test_uv_run_with_build_system_not_in_the_mirror(workspace: Path, tmp_path: Path) -> None:
    project = write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\n' + SETUPTOOLS_PYPROJECT,
            "deploy/supervisor/svc.conf": "[program:svc]\ncommand=uv run --frozen gunicorn svc:app\n",
        },
    )
    report = Workspace.open(workspace / "mirror.toml").doctor(project)
    assert report.errors  # the command exits 1
    (finding,) = report.to_dict()["findings"]
    assert finding == {
        "severity": "error",
        "code": "uv-run-build",
        "path": "deploy/supervisor/svc.conf",
        "line": 2,
        "location": "deploy/supervisor/svc.conf:2",
        "message": f"'uv run' builds the project (pyproject.toml has [build-system]), and the mirror lacks its "
        f"build requirements for {HOST.name}: setuptools>=45, wheel; add the project to mirror.toml's sources "
        "(its build requirements are locked too), or set [tool.uv] package = false when the project is not a "
        "package, or start .venv/bin/<tool> directly",
    }


def test_uv_run_is_fine_when_the_build_requirements_are_mirrored_or_uv_does_not_build() -> None:
    files = {
        "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\n' + SETUPTOOLS_PYPROJECT,
        "Procfile": "web: uv run gunicorn svc:app\n",
    }
    mirrored = MirrorView(target="t", modules={}, available={"setuptools": "70.0", "wheel": "0.43"})
    assert check_uv_run(ProjectFiles(texts=files), mirrored) == []
    too_old = MirrorView(target="t", modules={}, available={"setuptools": "44.0", "wheel": "0.43"})
    assert [(f.code, f.location) for f in check_uv_run(ProjectFiles(texts=files), too_old)] == [
        ("uv-run-build", "Procfile:1")
    ]
    not_packaged = {**files, "pyproject.toml": files["pyproject.toml"] + "[tool.uv]\npackage = false\n"}
    assert check_uv_run(ProjectFiles(texts=not_packaged), too_old) == []
    no_build_system = {**files, "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\n'}
    assert check_uv_run(ProjectFiles(texts=no_build_system), too_old) == []


def test_warnings_setup_requires_unpinned_uv_lock_stale_venv(workspace: Path, tmp_path: Path) -> None:
    project = write(
        tmp_path,
        {
            "setup.py": "from setuptools import setup\n\nsetup(\n    name='svc',\n    setup_requires=['setuptools_scm'],\n)\n",
            "requirements.txt": "# pinned\nom-pure==2.0\nom-dep>=1.0  # loose\n-r other.txt\n",
            "uv.lock": 'version = 1\n\n[[package]]\nname = "om-dep"\nversion = "1.0"\n'
            'source = { registry = "https://pypi.org/simple" }\n',
            "deploy.sh": "#!/bin/sh\nset -e\nif [ ! -d venv ]; then\n  python3 -m venv venv\nfi\n",
        },
    )
    result = doctor(workspace, project)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "warning[stale-venv] deploy.sh:3: the venv is only created when missing, so one kept from an earlier "
        "deploy hides requirements the lock lacks until the next clean deploy; recreate it on every deploy "
        "('python -m venv --clear venv') and install from the lock",
        "warning[unpinned] requirements.txt:3: om-dep>=1.0: not pinned with '==' — each deploy may resolve another "
        "version than the mirror holds; install from the lock (lockfiles/<target>.txt with --require-hashes) or "
        "pin it",
        "warning[setup-requires] setup.py:5: setup_requires setuptools_scm: setuptools fetches these itself through "
        "easy_install, which reads pydistutils.cfg and ignores pip.conf and uv.toml; deploy the pydistutils.cfg "
        "written by 'mirror config'",
        "warning[uv-lock-pypi] uv.lock:6: 1 line point at PyPI, which 'uv sync --frozen' uses whatever the index "
        "setting; run 'mirror relocate-uv-lock' to point them at the mirror",
        f"{project} for {HOST.name}: 0 errors, 4 warnings",
    ]


def test_json_shape(workspace: Path, tmp_path: Path) -> None:
    result = doctor(workspace, write(tmp_path, APP), "--json", "--target", HOST.name)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data == {
        "project": str(tmp_path),
        "target": HOST.name,
        "errors": 1,
        "warnings": 0,
        "findings": [
            {
                "severity": "error",
                "code": "missing-import",
                "path": "app/main.py",
                "line": 3,
                "location": "app/main.py:3",
                "message": data["findings"][0]["message"],
            }
        ],
    }
    assert "add PyJWT" in data["findings"][0]["message"]


def test_unknown_target_is_a_one_line_error(workspace: Path, tmp_path: Path) -> None:
    result = doctor(workspace, tmp_path, "--target", "nope")
    assert result.exit_code == 1
    assert result.stderr == f"error: mirror.lock.json: no target named 'nope'; known: {HOST.name}\n"


# -- the pure core ------------------------------------------------------------------------------------------------


def test_find_imports_skips_relative_and_marks_guarded() -> None:
    text = (
        "import a.b, c\nfrom d.e import f\nfrom . import g\n"
        "try:\n    import h\nexcept ImportError:\n    h = None\n"
        "if TYPE_CHECKING:\n    import i\n"
        "if sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli\n"
    )
    assert [(r.module, r.line, r.guarded) for r in find_imports(text, "x.py")] == [
        ("a.b", 1, False),
        ("c", 1, False),
        ("d.e", 2, False),
        ("h", 5, True),
        ("i", 9, True),
        ("tomllib", 11, True),
        ("tomli", 13, True),
    ]


def test_guarded_missing_import_is_a_warning_and_bad_python_is_reported() -> None:
    files = ProjectFiles(
        texts={
            "a.py": "try:\n    import yaml\nexcept ImportError:\n    pass\n",
            "b.py": "def (:\n",
            "setup.py": "import setuptools\n",
            "tests/test_a.py": "import pytest\n",
            "docs/conf.py": "import sphinx\n",
        }
    )
    report = diagnose(files, MirrorView(target="t", modules={}, available={}))
    assert [(f.severity, f.code, f.location) for f in report.findings] == [
        ("warning", "missing-import", "a.py:2"),
        ("warning", "bad-file", "b.py"),
    ]
    assert "add PyYAML" in report.findings[0].message


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("jwt", "PyJWT"),
        ("yaml", "PyYAML"),
        ("PIL.Image", "Pillow"),
        ("jose.jwt", "python-jose"),
        ("dotenv", "python-dotenv"),
        ("MySQLdb", "mysqlclient"),
        ("cv2", "opencv-python"),
        ("sklearn.linear_model", "scikit-learn"),
        ("bs4", "beautifulsoup4"),
        ("dateutil.parser", "python-dateutil"),
        ("google.protobuf.message", "protobuf"),
        ("google.cloud", None),
        ("requests", None),
    ],
)
def test_suggest_distribution(module: str, distribution: str | None) -> None:
    assert suggest_distribution(module) == distribution


def test_wheel_modules_from_top_level_or_entries() -> None:
    assert wheel_modules([], "yaml\n_yaml\n") == {"yaml", "_yaml"}
    names = [
        "pkg/__init__.py",
        "single.py",
        "_speedups.cpython-311-x86_64-linux-gnu.so",
        "x-1.0.dist-info/RECORD",
        "x-1.0.data/purelib/extra/__init__.py",
        "x-1.0.data/scripts/tool",
    ]
    assert wheel_modules(names, None) == {"pkg", "single", "_speedups", "extra"}


def test_unpinned_and_stale_venv_patterns() -> None:
    files = ProjectFiles(
        texts={
            "requirements-dev.txt": "a==1\nb\\\n  >=2\nc @ https://example.org/c.whl\n--index-url x\nd===3\ne\n",
            "run.sh": '[ -d .venv ] || python -m venv .venv\n# [ ! -d venv ]\ntest ! -d "$HOME/venv" && x\n',
            "setup.bat": "if not exist venv python -m venv venv\n",
        }
    )
    assert [f.location for f in check_unpinned(files)] == ["requirements-dev.txt:2", "requirements-dev.txt:7"]
    assert [f.location for f in check_stale_venv(files)] == ["run.sh:1", "run.sh:3", "setup.bat:1"]


def test_read_project_files_skips_venvs_and_finds_own_modules(tmp_path: Path) -> None:
    write(tmp_path, {**APP, "env2/pyvenv.cfg": "", "env2/x.py": "", "top.py": "", "data.bin": "x"})
    files = read_project_files(tmp_path)
    assert sorted(files.texts) == [
        "app/__init__.py",
        "app/helpers.py",
        "app/main.py",
        "src/mylib/__init__.py",
        "src/mylib/sub.py",
        "top.py",
    ]
    assert files.own_modules == {"app", "mylib", "top"}


def test_finding_without_location() -> None:
    finding = Finding(severity="warning", code="compiles-on-target", message="m")
    assert (finding.location, finding.to_dict()["location"]) == ("", None)


POETRY_LOCK_PURE_ONLY = """\
[[package]]
name = "om-pure"
version = "2.0"
description = ""
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = []

[[package]]
name = "om-dep"
version = "1.0"
description = ""
optional = false
python-versions = "*"
groups = ["dev"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.9"
content-hash = "0"
"""


def test_an_import_the_projects_own_lock_does_not_install_is_an_error(workspace: Path, tmp_path: Path) -> None:
    project = write(
        tmp_path / "proj",
        {
            "app/__init__.py": "",
            "app/main.py": "import om_pure\nimport om_dep\n",  # om-dep is in the mirror (om-pure 2.0 needs it)
            "tests/test_app.py": "import om_dep\n",
            "poetry.lock": POETRY_LOCK_PURE_ONLY,  # ... but only the dev group installs it
        },
    )
    report = Workspace.open(workspace / "mirror.toml").doctor(project)
    assert [(f.code, f.location, f.message) for f in report.findings if f.code == "missing-from-lock"] == [
        (
            "missing-from-lock",
            "app/main.py:2",
            f"import 'om_dep': om-dep provides 'om_dep' in the mirror, but poetry.lock does not install it on"
            f" {HOST.name}; add om-dep to the project's dependencies and re-lock",
        )
    ]
    assert report.errors  # the deploy from poetry.lock would fail at that import


def test_a_lock_doctor_cannot_read_is_a_warning(workspace: Path, tmp_path: Path) -> None:
    project = write(tmp_path / "proj", {"app.py": "import om_pure\n", "pdm.lock": "[metadata]\nstrategy = []\n"})
    report = Workspace.open(workspace / "mirror.toml").doctor(project)
    (finding,) = [f for f in report.findings if f.path == "pdm.lock"]
    assert (finding.severity, finding.code) == ("warning", "bad-file")
    assert "without inherit_metadata" in finding.message
