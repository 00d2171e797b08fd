"""Sources: requirements files, pyproject projects, uv.lock files and plain packages become a lock's inputs."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from uv import find_uv_bin

from mirror.errors import MirrorError
from mirror.sources import (
    LEGACY_BACKEND,
    BuildSystem,
    IndexRoute,
    Inputs,
    InvalidSource,
    Project,
    RootRequirement,
    collect_inputs,
    package_inputs,
    parse_pyproject,
    parse_requirements,
    parse_uv_lock,
    read_project,
    read_requirements,
    read_uv_lock,
    uv_lock_inputs,
)
from mirror.spec import LockSource, ProjectSource, Sources
from mirror.targets import Target
from tests.fixtures.dists import BackendSdist, Release
from tests.fixtures.env import isolated_env
from tests.fixtures.server import Upstream

MakeUpstream = Callable[..., Upstream]

LINUX_310 = Target.create("linux/amd64", "3.10")
LINUX_312 = Target.create("linux/amd64", "3.12")
WINDOWS_312 = Target.create("windows/amd64", "3.12")


def pairs(roots: tuple[RootRequirement, ...] | list[RootRequirement]) -> list[tuple[str, str]]:
    return [(str(root.requirement), root.origin) for root in roots]


def error(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidSource) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, MirrorError)
    return message


# -- requirements files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "# the app\nrequests[socks]>=2.31  # inline comment\npywin32>=306; sys_platform == 'win32'\n\nDjango ~= 4.2\n",
            [
                ("requests[socks]>=2.31", "requirements.txt:2"),
                ('pywin32>=306; sys_platform == "win32"', "requirements.txt:3"),
                ("Django~=4.2", "requirements.txt:5"),
            ],
            id="comments-markers-extras",
        ),
        pytest.param(
            "certifi==2024.8.30 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nidna==3.10 --hash sha256:cc\n",
            [("certifi==2024.8.30", "requirements.txt:1"), ("idna==3.10", "requirements.txt:4")],
            id="continuations-and-hashes",
        ),
        pytest.param(
            "attrs \\\n# a comment line ends the continuation\nsix\\\n>=1.16\n",
            [("attrs", "requirements.txt:1"), ("six>=1.16", "requirements.txt:3")],
            id="comment-ends-continuation",
        ),
        pytest.param(
            "\ttomli>=1.1;python_version<'3.11'\t\n",
            [('tomli>=1.1; python_version < "3.11"', "requirements.txt:1")],
            id="tabs",
        ),
        pytest.param("#!/no/requirements\n   \n", [], id="only-comments"),
        pytest.param("last==1 \\", [("last==1", "requirements.txt:1")], id="continuation-at-end-of-file"),
    ],
)
def test_parse_requirements(text: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_requirements(text, path=Path("requirements.txt"))
    assert pairs(parsed.requirements) == expected
    assert parsed.constraints == ()
    assert parsed.includes == ()


@pytest.mark.parametrize(
    ("line", "warning"),
    [
        (
            "-i https://example.com/simple",
            "requirements.txt:1: -i is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "--index-url=https://example.com/simple",
            "requirements.txt:1: --index-url is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "--extra-index-url https://example.com/simple",
            "requirements.txt:1: --extra-index-url is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "--no-index",
            "requirements.txt:1: --no-index is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "-f ./wheels",
            "requirements.txt:1: -f is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "--find-links=./wheels",
            "requirements.txt:1: --find-links is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        (
            "--trusted-host example.com",
            "requirements.txt:1: --trusted-host is ignored: packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)",
        ),
        ("--pre", "requirements.txt:1: --pre is ignored: the lock resolves with its own options"),
        ("--prefer-binary", "requirements.txt:1: --prefer-binary is ignored: the lock resolves with its own options"),
        ("--only-binary :all:", "requirements.txt:1: --only-binary is ignored: the lock resolves with its own options"),
        ("--no-binary=docopt", "requirements.txt:1: --no-binary is ignored: the lock resolves with its own options"),
    ],
)
def test_index_and_resolver_options_are_ignored_with_a_warning(
    line: str, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        parsed = parse_requirements(f"{line}\nrequests\n", path=Path("requirements.txt"))
    assert pairs(parsed.requirements) == [("requests", "requirements.txt:2")]
    assert caplog.messages == [warning]


def test_per_requirement_build_options_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        parsed = parse_requirements("pkg==1 --config-settings=key=value\n", path=Path("r.txt"))
    assert pairs(parsed.requirements) == [("pkg==1", "r.txt:1")]
    assert caplog.messages == ["r.txt:1: --config-settings is ignored: build options are not part of a lock"]


LOCAL = "cannot be mirrored from an index; list the project under [sources] projects"
RELEASE = "cannot be mirrored from an index; require a released version instead"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("requests\n-e .\n", f"requirements.txt:2: '-e .' {LOCAL}"),
        ("--editable=./app\n", f"requirements.txt:1: '--editable=./app' {LOCAL}"),
        (
            "-e git+https://github.com/psf/requests#egg=requests\n",
            f"requirements.txt:1: '-e git+https://github.com/psf/requests#egg=requests' {RELEASE}",
        ),
        ("./pkg\n", f"requirements.txt:1: './pkg' {LOCAL}"),
        ("/srv/pkg\n", f"requirements.txt:1: '/srv/pkg' {LOCAL}"),
        ("file:///srv/pkg\n", f"requirements.txt:1: 'file:///srv/pkg' {LOCAL}"),
        ("pkg @ file:///srv/pkg\n", f"requirements.txt:1: 'pkg @ file:///srv/pkg' {LOCAL}"),
        ("dist/pkg-1.0-py3-none-any.whl\n", f"requirements.txt:1: 'dist/pkg-1.0-py3-none-any.whl' {RELEASE}"),
        ("pkg-1.0.tar.gz\n", f"requirements.txt:1: 'pkg-1.0.tar.gz' {RELEASE}"),
        (
            "pkg @ https://example.com/pkg-1.0.tar.gz\n",
            f"requirements.txt:1: 'pkg @ https://example.com/pkg-1.0.tar.gz' {RELEASE}",
        ),
        (
            "git+https://github.com/psf/requests\n",
            f"requirements.txt:1: 'git+https://github.com/psf/requests' {RELEASE}",
        ),
        ("https://example.com/pkg-1.0.zip\n", f"requirements.txt:1: 'https://example.com/pkg-1.0.zip' {RELEASE}"),
        (
            "ok\n\nsix==1 \\\n  --hash=sha256:aa\nrequests>=>2\n",
            "requirements.txt:5: 'requests>=>2' is not a valid requirement: Expected semicolon (after name with no version specifier) or end",
        ),
        (
            "foo[bar\n",
            "requirements.txt:1: 'foo[bar' is not a valid requirement: Expected matching RIGHT_BRACKET for LEFT_BRACKET, after extras",
        ),
        ("--frobnicate\n", "requirements.txt:1: unknown option '--frobnicate'"),
        ("-x\n", "requirements.txt:1: unknown option '-x'"),
        ("requests --pre\n", "requirements.txt:1: option --pre cannot follow a requirement; only --hash can"),
        (
            "requests -i https://x/simple\n",
            "requirements.txt:1: option -i cannot follow a requirement; only --hash can",
        ),
        ("--hash=sha256:aa\n", "requirements.txt:1: option --hash must follow a requirement on the same line"),
        ("requests --hash\n", "requirements.txt:1: option --hash needs a value"),
        ("-r\n", "requirements.txt:1: option -r needs a value"),
        ("--pre=yes\n", "requirements.txt:1: option --pre takes no value"),
        ("-i https://x/simple stray\n", "requirements.txt:1: 'stray' is neither an option nor part of a requirement"),
        (
            'requests --hash "sha256:aa\n',
            "requirements.txt:1: cannot split '--hash \"sha256:aa' into options: No closing quotation",
        ),
        (
            "-r https://example.com/requirements.txt\n",
            "requirements.txt:1: cannot include 'https://example.com/requirements.txt': only local files can be included",
        ),
    ],
)
def test_requirements_errors_name_the_line(text: str, message: str) -> None:
    assert error(lambda: parse_requirements(text, path=Path("requirements.txt"))) == message


def test_constraints_file_lines_are_constraints_without_extras(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        parsed = parse_requirements("urllib3<3\nrequests[socks]==2.32.3\n", path=Path("c.txt"), constraint=True)
    assert parsed.requirements == ()
    assert pairs(parsed.constraints) == [("urllib3<3", "c.txt:1"), ("requests==2.32.3", "c.txt:2")]
    assert caplog.messages == [
        "c.txt:2: extras of constraint 'requests[socks]==2.32.3' are ignored: constraints cannot have extras"
    ]


def test_includes_are_returned_unfollowed() -> None:
    parsed = parse_requirements("-r base.txt\n--constraint=../c.txt\n-rdev.txt\n", path=Path("/w/reqs/r.txt"))
    assert [(i.path, i.written, i.constraint, i.origin) for i in parsed.includes] == [
        (Path("/w/reqs/base.txt"), "base.txt", False, "/w/reqs/r.txt:1"),
        (Path("/w/reqs/../c.txt"), "../c.txt", True, "/w/reqs/r.txt:2"),
        (Path("/w/reqs/dev.txt"), "dev.txt", False, "/w/reqs/r.txt:3"),
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_read_requirements_follows_includes_relative_to_the_including_file(tmp_path: Path) -> None:
    top = write(tmp_path / "requirements.txt", "-r base/common.txt\n-c constraints.txt\nflask\n")
    write(tmp_path / "base" / "common.txt", "-r ../extra.txt\nrequests\n-r ../extra.txt\n")
    write(tmp_path / "extra.txt", "\ufeffidna\n")  # a byte-order mark is not part of the name
    write(tmp_path / "constraints.txt", "urllib3<3\n-r more.txt\n-c base/pins.txt\n")
    write(tmp_path / "more.txt", "click\n")  # pip reads -r inside a constraints file as requirements
    write(tmp_path / "base" / "pins.txt", "idna==3.10\n")
    inputs = read_requirements(top, root=tmp_path)
    # a file's own lines first, then its includes, depth first
    assert pairs(inputs.requirements) == [
        ("flask", "requirements.txt:3"),
        ("requests", "base/common.txt:2"),
        ("idna", "extra.txt:1"),
        ("idna", "extra.txt:1"),
        ("click", "more.txt:1"),
    ]
    assert pairs(inputs.constraints) == [("urllib3<3", "constraints.txt:1"), ("idna==3.10", "base/pins.txt:1")]
    assert inputs.projects == ()


def test_read_requirements_shows_files_outside_the_workspace_as_absolute(tmp_path: Path) -> None:
    outside = write(tmp_path / "shared" / "r.txt", "requests\n")
    inputs = read_requirements(outside, root=tmp_path / "ws")
    assert pairs(inputs.requirements) == [("requests", f"{outside}:1")]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"requirements.txt": "-r missing.txt\n"}, "requirements.txt:1: cannot include 'missing.txt': no such file"),
        (
            {"requirements.txt": "a\n-r requirements.txt\n"},
            "requirements.txt:2: cannot include 'requirements.txt': include cycle requirements.txt -> requirements.txt",
        ),
        (
            {"requirements.txt": "-r sub/a.txt\n", "sub/a.txt": "x\n-c ../b.txt\n", "b.txt": "-r requirements.txt\n"},
            "b.txt:1: cannot include 'requirements.txt': include cycle requirements.txt -> sub/a.txt -> b.txt -> requirements.txt",
        ),
        ({"requirements.txt": "-r sub/a.txt\n", "sub/a.txt": "-e ..\n"}, f"sub/a.txt:1: '-e ..' {LOCAL}"),
        ({"other.txt": "x\n"}, "requirements.txt: no such file"),
    ],
)
def test_read_requirements_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    assert error(lambda: read_requirements(tmp_path / "requirements.txt", root=tmp_path)) == message


def test_read_requirements_undecodable_file(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"caf\xe9\n")
    assert error(lambda: read_requirements(tmp_path / "requirements.txt", root=tmp_path)).startswith(
        "requirements.txt: cannot read: 'utf-8' codec can't decode byte 0xe9"
    )


# -- projects -------------------------------------------------------------------------------------------------

APP = """
[project]
name = "My_App"
version = "1.0"
dependencies = ["requests>=2.31", "pywin32; sys_platform == 'win32'"]

[project.optional-dependencies]
Socks = ["PySocks>=1.7"]
yaml = ["pyyaml"]

[dependency-groups]
test = ["pytest>=8", { include-group = "lint" }]
lint = ["ruff"]
Dev = [{ include-group = "test" }, { include-group = "lint" }, "ipython"]

[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"
backend-path = ["."]
"""


def test_parse_pyproject_static_project() -> None:
    path = Path("/w/app/pyproject.toml")
    inputs = parse_pyproject(APP, path=path, extras=("socks",), groups=("dev",), label="app/pyproject.toml")
    assert pairs(inputs.requirements) == [
        ("requests>=2.31", "app/pyproject.toml [project.dependencies]"),
        ('pywin32; sys_platform == "win32"', "app/pyproject.toml [project.dependencies]"),
        ("PySocks>=1.7", "app/pyproject.toml [project.optional-dependencies.Socks]"),
        ("pytest>=8", "app/pyproject.toml [dependency-groups.test]"),
        ("ruff", "app/pyproject.toml [dependency-groups.lint]"),
        ("ipython", "app/pyproject.toml [dependency-groups.Dev]"),
    ]
    assert inputs.constraints == ()
    assert inputs.projects == (
        Project(
            name="my-app",
            path=Path("/w/app"),
            build_system=BuildSystem(
                requires=(Requirement("setuptools>=69"), Requirement("wheel")),
                backend="setuptools.build_meta",
                backend_path=(".",),
                declared=True,
            ),
            dynamic_dependencies=False,
        ),
    )


def test_parse_pyproject_without_extras_or_groups_takes_the_dependencies_only() -> None:
    inputs = parse_pyproject(APP, path=Path("/w/app/pyproject.toml"))
    assert pairs(inputs.requirements) == [
        ("requests>=2.31", "/w/app/pyproject.toml [project.dependencies]"),
        ('pywin32; sys_platform == "win32"', "/w/app/pyproject.toml [project.dependencies]"),
    ]


def test_no_build_system_means_pips_legacy_default() -> None:
    inputs = parse_pyproject('[project]\nname = "x"\nversion = "1"\n', path=Path("/w/x/pyproject.toml"))
    build = inputs.projects[0].build_system
    assert build == BuildSystem(requires=(Requirement("setuptools>=40.8.0"),), backend=None, declared=False)
    assert build.effective_backend == LEGACY_BACKEND == "setuptools.build_meta:__legacy__"


def test_build_system_without_backend_is_declared_but_uses_the_legacy_backend() -> None:
    text = '[project]\nname = "x"\nversion = "1"\n[build-system]\nrequires = ["setuptools>=45", "wheel"]\n'
    build = parse_pyproject(text, path=Path("/w/x/pyproject.toml")).projects[0].build_system
    assert build == BuildSystem(
        requires=(Requirement("setuptools>=45"), Requirement("wheel")), backend=None, declared=True
    )
    assert build.effective_backend == LEGACY_BACKEND


@pytest.mark.parametrize(
    ("text", "extras", "expected", "dynamic"),
    [
        pytest.param(
            '[project]\nname = "App"\nversion = "1"\ndynamic = ["dependencies", "optional-dependencies"]\n'
            '[dependency-groups]\ndev = ["pytest"]\n',
            ("socks", "http"),
            [
                ("app[http,socks] @ file:///w/app", "app/pyproject.toml (dynamic dependencies)"),
                ("pytest", "app/pyproject.toml [dependency-groups.dev]"),
            ],
            True,
            id="dynamic-dependencies",
        ),
        pytest.param(
            '[project]\nname = "app"\nversion = "1"\ndynamic = ["dependencies"]\n[project.optional-dependencies]\nsocks = ["pysocks"]\n',
            ("socks",),
            [("app[socks] @ file:///w/app", "app/pyproject.toml (dynamic dependencies)")],
            True,
            id="dynamic-dependencies-static-extras",
        ),
        pytest.param(
            '[project]\nname = "app"\nversion = "1"\ndynamic = ["optional-dependencies"]\ndependencies = ["idna"]\n',
            ("socks",),
            [("app[socks] @ file:///w/app", "app/pyproject.toml (dynamic dependencies)")],
            True,
            id="dynamic-extras-chosen",
        ),
        pytest.param(
            '[project]\nname = "app"\nversion = "1"\ndynamic = ["optional-dependencies", "version"]\ndependencies = ["idna"]\n',
            (),
            [("idna", "app/pyproject.toml [project.dependencies]")],
            False,
            id="dynamic-extras-not-chosen",
        ),
        pytest.param(
            '[tool.poetry]\nname = "poetry-app"\n[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n',
            (),
            [("poetry-app @ file:///w/app", "app/pyproject.toml (dynamic dependencies)")],
            True,
            id="no-project-table-poetry",
        ),
    ],
)
def test_dynamic_dependencies_make_the_project_a_requirement(
    text: str, extras: tuple[str, ...], expected: list[tuple[str, str]], dynamic: bool
) -> None:
    groups = ("dev",) if "[dependency-groups]" in text else ()
    inputs = parse_pyproject(
        text, path=Path("/w/app/pyproject.toml"), extras=extras, groups=groups, label="app/pyproject.toml"
    )
    assert pairs(inputs.requirements) == expected
    assert inputs.projects[0].dynamic_dependencies is dynamic


def test_uv_dev_dependencies_are_the_dev_group() -> None:
    text = '[project]\nname = "a"\nversion = "1"\n[tool.uv]\ndev-dependencies = ["pytest"]\n[dependency-groups]\ndev = ["ruff"]\n'
    inputs = parse_pyproject(text, path=Path("/w/a/pyproject.toml"), groups=("dev",), label="a/pyproject.toml")
    assert pairs(inputs.requirements) == [
        ("ruff", "a/pyproject.toml [dependency-groups.dev]"),
        ("pytest", "a/pyproject.toml [tool.uv.dev-dependencies]"),
    ]
    only_uv = '[project]\nname = "a"\nversion = "1"\n[tool.uv]\ndev-dependencies = ["pytest"]\n'
    assert pairs(
        parse_pyproject(only_uv, path=Path("/w/a/pyproject.toml"), groups=("dev",), label="a").requirements
    ) == [("pytest", "a [tool.uv.dev-dependencies]")]


def test_uv_sources_local_projects_are_skipped_and_other_indexes_warned(caplog: pytest.LogCaptureFixture) -> None:
    text = """
[project]
name = "app"
version = "1"
dependencies = ["lib", "torch>=2", "idna"]
[tool.uv.sources]
lib = { workspace = true }
torch = [{ index = "pytorch-cpu", marker = "sys_platform == 'linux'" }]
"""
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        inputs = parse_pyproject(text, path=Path("/w/app/pyproject.toml"), label="app/pyproject.toml")
    assert pairs(inputs.requirements) == [
        ("torch>=2", "app/pyproject.toml [project.dependencies]"),
        ("idna", "app/pyproject.toml [project.dependencies]"),
    ]
    assert caplog.messages == [
        "app/pyproject.toml: project.dependencies[0]: 'lib' is a local project (workspace in [tool.uv.sources]) and is"
        " not mirrored; list the project under [sources] projects to mirror its dependencies",
        "app/pyproject.toml: tool.uv.sources.torch: index 'pytorch-cpu' is not a [[tool.uv.index]] here; torch"
        " comes from the index mirror.toml routes it to",
    ]
    assert inputs.routes == ()


def test_uv_sources_naming_a_declared_index_route_the_name() -> None:
    text = """
[project]
name = "app"
version = "1"
dependencies = ["Acme_Auth>=1"]
[tool.uv.sources]
Acme_Auth = { index = "internal" }
[[tool.uv.index]]
name = "internal"
url = "https://pypi.internal.example/simple/"
explicit = true
"""
    inputs = parse_pyproject(text, path=Path("/w/app/pyproject.toml"), label="app/pyproject.toml")
    assert pairs(inputs.requirements) == [("Acme_Auth>=1", "app/pyproject.toml [project.dependencies]")]
    assert inputs.index_routes() == [
        IndexRoute(
            name="acme-auth",
            url="https://pypi.internal.example/simple/",
            origin="app/pyproject.toml: tool.uv.sources.Acme_Auth",
        )
    ]


P = '[project]\nname = "app"\nversion = "1"\n'


@pytest.mark.parametrize(
    ("text", "extras", "groups", "message"),
    [
        (
            P + 'dependencies = ["requests", "idna", "x>=>"]\n',
            (),
            (),
            "app/pyproject.toml: project.dependencies[2]: 'x>=>' is not a valid requirement: Expected semicolon (after name with no version specifier) or end",
        ),
        (
            P + 'dependencies = "requests"\n',
            (),
            (),
            "app/pyproject.toml: project.dependencies: expected an array of strings, got 'requests'",
        ),
        (
            P + 'dependencies = ["lib @ file:///srv/lib"]\n',
            (),
            (),
            f"app/pyproject.toml: project.dependencies[0]: 'lib @ file:///srv/lib' {LOCAL}",
        ),
        (
            P + 'dependencies = ["lib @ git+https://github.com/o/lib"]\n',
            (),
            (),
            f"app/pyproject.toml: project.dependencies[0]: 'lib @ git+https://github.com/o/lib' {RELEASE}",
        ),
        (
            P + 'dependencies = ["lib"]\n[tool.uv.sources]\nlib = { git = "https://github.com/o/lib" }\n',
            (),
            (),
            "app/pyproject.toml: project.dependencies[0]: 'lib' cannot be mirrored from an index: [tool.uv.sources] gets it from a git repository; require a released version instead",
        ),
        (
            P + "[tool.uv.sources]\nlib = { branch = 'main' }\n",
            (),
            (),
            "app/pyproject.toml: tool.uv.sources.lib: expected a table with one of: git, url, path, workspace, index",
        ),
        (
            P + '[project.optional-dependencies]\nsocks = ["pysocks"]\nYAML = ["pyyaml"]\n',
            ("sock",),
            (),
            "app/pyproject.toml: project.optional-dependencies: project 'app' has no extra 'sock'; known: socks, yaml",
        ),
        (
            P,
            ("socks",),
            (),
            "app/pyproject.toml: project.optional-dependencies: project 'app' has no extra 'socks'; known: none",
        ),
        (
            P + '[project.optional-dependencies]\nsocks = ["pysocks", 3]\n',
            ("socks",),
            (),
            "app/pyproject.toml: project.optional-dependencies.socks: expected an array of strings, got ['pysocks', 3]",
        ),
        (
            P + '[dependency-groups]\ntest = ["pytest"]\nlint = ["ruff"]\n',
            (),
            ("dev",),
            "app/pyproject.toml: dependency-groups: project 'app' has no group 'dev'; known: lint, test",
        ),
        (P, (), ("dev",), "app/pyproject.toml: dependency-groups: project 'app' has no group 'dev'; known: none"),
        (
            P + '[dependency-groups]\ndev = ["pytest", { include-group = "lnt" }]\nlint = ["ruff"]\n',
            (),
            ("dev",),
            "app/pyproject.toml: dependency-groups.dev[1]: includes unknown group 'lnt'; known: dev, lint",
        ),
        (
            P + '[dependency-groups]\na = [{ include-group = "b" }]\nb = ["x", { include-group = "A" }]\n',
            (),
            ("a",),
            "app/pyproject.toml: dependency-groups.b[1]: include-group cycle a -> b -> a",
        ),
        (
            P + '[dependency-groups]\ndev = [{ include = "lint" }]\n',
            (),
            ("dev",),
            "app/pyproject.toml: dependency-groups.dev[0]: expected a requirement string or { include-group = \"...\" }, got {'include': 'lint'}",
        ),
        (
            P + '[dependency-groups]\ndev = ["pytest>>8"]\n',
            (),
            ("dev",),
            "app/pyproject.toml: dependency-groups.dev[0]: 'pytest>>8' is not a valid requirement: Expected semicolon (after name with no version specifier) or end",
        ),
        (
            P + "[dependency-groups]\nDev = []\ndev = []\n",
            (),
            (),
            "app/pyproject.toml: dependency-groups: 'Dev' and 'dev' are the same group once normalized",
        ),
        (
            P + "[build-system]\nbuild-backend = 'flit_core.buildapi'\n",
            (),
            (),
            'app/pyproject.toml: build-system.requires: missing; PEP 518 requires it (e.g. requires = ["setuptools>=61"])',
        ),
        (
            P + "[build-system]\nrequires = ['setuptools', 'wheel>']\n",
            (),
            (),
            "app/pyproject.toml: build-system.requires[1]: 'wheel>' is not a valid requirement: Expected semicolon (after name with no version specifier) or end",
        ),
        (
            P + "[build-system]\nrequires = []\nbuild-backend = ''\n",
            (),
            (),
            "app/pyproject.toml: build-system.build-backend: expected a non-empty string, got ''",
        ),
        (
            '[project]\nversion = "1"\n',
            (),
            (),
            "app/pyproject.toml: project.name: expected the project's name, got None",
        ),
        (
            "[build-system]\nrequires = []\n",
            (),
            (),
            "app/pyproject.toml: project: no [project] table and no name in setup.cfg or setup.py; add [project] with a name",
        ),
        ("project = 3\n", (), (), "app/pyproject.toml: project: expected a table, got int 3"),
    ],
)
def test_pyproject_errors_name_the_file_and_key(
    text: str, extras: tuple[str, ...], groups: tuple[str, ...], message: str
) -> None:
    call = lambda: parse_pyproject(  # noqa: E731
        text, path=Path("/w/app/pyproject.toml"), extras=extras, groups=groups, label="app/pyproject.toml"
    )
    assert error(call) == message


@pytest.mark.parametrize(
    ("files", "name"),
    [
        ({"setup.py": "from setuptools import setup\nsetup(name='Legacy.App', version='1')\n"}, "legacy-app"),
        (
            {
                "setup.py": "import setuptools\nsetuptools.setup(name=NAME)\n",
                "setup.cfg": "[metadata]\nname = cfg_app\n",
            },
            "cfg-app",
        ),
        (
            {
                "setup.py": "import setuptools\nsetuptools.setup(name='from-py')\n",
                "pyproject.toml": "[build-system]\nrequires = ['setuptools>=61']\n",
            },
            "from-py",
        ),
    ],
)
def test_read_project_legacy_setuptools_projects(tmp_path: Path, files: dict[str, str], name: str) -> None:
    for filename, text in files.items():
        write(tmp_path / "legacy" / filename, text)
    inputs = read_project(ProjectSource(path=tmp_path / "legacy", extras=("x",)), root=tmp_path)
    shown = "legacy/pyproject.toml" if "pyproject.toml" in files else "legacy/setup.py"
    assert pairs(inputs.requirements) == [
        (f"{name}[x] @ {(tmp_path / 'legacy').as_uri()}", f"{shown} (dynamic dependencies)")
    ]
    (project,) = inputs.projects
    assert (project.name, project.path, project.dynamic_dependencies) == (name, tmp_path / "legacy", True)
    assert project.build_system.declared is ("pyproject.toml" in files)


@pytest.mark.parametrize("text", ["[project\n", "version = [\n", "a = 1\na = 2\n"])
def test_toml_errors_name_the_file(text: str) -> None:
    # the reason is tomllib's (tomli's on Python 3.10): one line, with its position
    message = error(lambda: parse_pyproject(text, path=Path("/w/app/pyproject.toml"), label="app/pyproject.toml"))
    assert message.startswith("app/pyproject.toml: not valid TOML: "), message
    assert message.endswith(")"), message
    message = error(lambda: parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock"))
    assert message.startswith("uv.lock: not valid TOML: "), message


def test_read_project_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert error(lambda: read_project(ProjectSource(path=tmp_path / "empty"), root=tmp_path)) == (
        "empty/pyproject.toml: no such file (and no setup.py): not a Python project"
    )
    write(tmp_path / "nameless" / "setup.py", "import setuptools\nsetuptools.setup(**CONFIG)\n")
    assert error(lambda: read_project(ProjectSource(path=tmp_path / "nameless"), root=tmp_path)) == (
        "nameless/setup.py: project: no [project] table and no name in setup.cfg or setup.py; add [project] with a name"
    )


# -- uv.lock --------------------------------------------------------------------------------------------------

PYPI = '{ registry = "https://pypi.org/simple" }'


def pkg(name: str, version: str, deps: str = "", extra: str = "", markers: str = "") -> str:
    text = f'[[package]]\nname = "{name}"\nversion = "{version}"\nsource = {PYPI}\n'
    if markers:
        text += f"resolution-markers = [\n    {markers},\n]\n"
    if deps:
        text += f"dependencies = [\n{deps}]\n"
    text += (
        f'sdist = {{ url = "https://files.pythonhosted.org/packages/{name}-{version}.tar.gz", hash = "sha256:00", size = 1 }}\n'
        f'wheels = [\n    {{ url = "https://files.pythonhosted.org/packages/{name}-{version}-py3-none-any.whl", hash = "sha256:11", size = 1 }},\n]\n'
    )
    return text + extra + "\n"


# A realistic uv.lock: an app with requests, pywin32 on Windows, a "socks" extra, a "dev" group, and numpy
# forked by Python version (uv names the version on the edge when a name appears twice).
UV_LOCK = (
    """version = 1
revision = 3
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.12'",
    "python_full_version < '3.12'",
]

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "numpy", version = "1.26.4", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version < '3.12'" },
    { name = "numpy", version = "2.1.3", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version >= '3.12'" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "requests" },
]

[package.optional-dependencies]
socks = [
    { name = "requests", extra = ["socks"] },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
]

[package.metadata]
requires-dist = [
    { name = "numpy" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "requests", specifier = ">=2.31" },
    { name = "requests", extras = ["socks"], marker = "extra == 'socks'" },
]
provides-extras = ["socks"]

[package.metadata.requires-dev]
dev = [{ name = "pytest", specifier = ">=8" }]

"""
    + pkg("certifi", "2024.8.30")
    + pkg("charset-normalizer", "3.4.0")
    + pkg("colorama", "0.4.6")
    + pkg("exceptiongroup", "1.2.2")
    + pkg("idna", "3.10")
    + pkg("iniconfig", "2.0.0")
    + pkg("numpy", "1.26.4", markers="\"python_full_version < '3.12'\"")
    + pkg("numpy", "2.1.3", markers="\"python_full_version >= '3.12'\"")
    + pkg("packaging", "24.2")
    + pkg("pluggy", "1.5.0")
    + pkg("pysocks", "1.7.1")
    + pkg(
        "pytest",
        "8.3.3",
        deps='    { name = "colorama", marker = "sys_platform == \'win32\'" },\n'
        '    { name = "exceptiongroup", marker = "python_full_version < \'3.11\'" },\n'
        '    { name = "iniconfig" },\n    { name = "packaging" },\n    { name = "pluggy" },\n'
        '    { name = "tomli", marker = "python_full_version < \'3.11\'" },\n',
    )
    + pkg("pywin32", "308")
    + pkg(
        "requests",
        "2.32.3",
        deps='    { name = "certifi" },\n    { name = "charset-normalizer" },\n    { name = "idna" },\n    { name = "urllib3" },\n',
        extra='\n[package.optional-dependencies]\nsocks = [\n    { name = "pysocks" },\n]\n',
    )
    + pkg("tomli", "2.1.0")
    + pkg("urllib3", "2.2.3")
)

COMMON = ["certifi==2024.8.30", "charset-normalizer==3.4.0", "idna==3.10", "iniconfig==2.0.0"]
REST = ["packaging==24.2", "pluggy==1.5.0", "pysocks==1.7.1", "pytest==8.3.3"]


@pytest.mark.parametrize(
    ("target", "pins"),
    [
        (
            LINUX_310,
            [
                *COMMON[:2],
                "exceptiongroup==1.2.2",
                *COMMON[2:],
                "numpy==1.26.4",
                *REST,
                "requests==2.32.3",
                "tomli==2.1.0",
                "urllib3==2.2.3",
            ],
        ),
        (LINUX_312, [*COMMON, "numpy==2.1.3", *REST, "requests==2.32.3", "urllib3==2.2.3"]),
        (
            WINDOWS_312,
            [
                *COMMON[:2],
                "colorama==0.4.6",
                *COMMON[2:],
                "numpy==2.1.3",
                *REST,
                "pywin32==308",
                "requests==2.32.3",
                "urllib3==2.2.3",
            ],
        ),
    ],
)
def test_uv_lock_pins_for_each_target(target: Target, pins: list[str]) -> None:
    lock = parse_uv_lock(UV_LOCK, path=Path("/w/uv.lock"), label="uv.lock")
    assert pairs(lock.pins_for(target)) == [(pin, "uv.lock") for pin in pins]


def test_uv_lock_members_and_reachable() -> None:
    lock = parse_uv_lock(UV_LOCK, path=Path("/w/uv.lock"))
    assert [p.name for p in lock.members] == ["app"]
    reached = lock.reachable(LINUX_312)
    assert [(p.name, p.version) for p in reached][:5] == [
        ("app", "0.1.0"),
        ("numpy", "2.1.3"),
        ("requests", "2.32.3"),
        ("pytest", "8.3.3"),
        ("certifi", "2024.8.30"),
    ]
    assert lock.label == "/w/uv.lock"


def lock_with(app: str, *packages: str, head: str = 'version = 1\nrequires-python = ">=3.10"\n') -> str:
    return (
        head
        + f'\n[[package]]\nname = "app"\nversion = "0.1.0"\nsource = {{ virtual = "." }}\n{app}\n'
        + "".join(packages)
    )


GIT_WINONLY = '[[package]]\nname = "winonly"\nversion = "1.0"\nsource = { git = "https://github.com/o/winonly?rev=main#0123abcd" }\n\n'


def test_git_packages_are_an_error_only_where_they_are_reached() -> None:
    text = lock_with(
        'dependencies = [\n    { name = "winonly", marker = "sys_platform == \'win32\'" },\n    { name = "idna" },\n]\n',
        GIT_WINONLY,
        pkg("idna", "3.10"),
    )
    lock = parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")
    assert pairs(lock.pins_for(LINUX_312)) == [("idna==3.10", "uv.lock")]
    assert error(lambda: lock.pins_for(WINDOWS_312)) == (
        "uv.lock: package 'winonly 1.0' (git = 'https://github.com/o/winonly?rev=main#0123abcd') cannot be mirrored"
        " from an index; require a released version instead"
    )


def test_extras_on_edges_follow_the_packages_optional_dependencies() -> None:
    text = lock_with(
        'dependencies = [\n    { name = "requests", extra = ["SOCKS"] },\n]\n',
        pkg(
            "requests",
            "2.32.3",
            extra='\n[package.optional-dependencies]\nsocks = [\n    { name = "pysocks" },\n]\nuse-chardet-on-py3 = [\n    { name = "chardet" },\n]\n',
        ),
        pkg("pysocks", "1.7.1"),
        pkg("chardet", "5.2.0"),
    )
    lock = parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")
    assert [str(r.requirement) for r in lock.pins_for(LINUX_312)] == ["pysocks==1.7.1", "requests==2.32.3"]


def test_conflict_markers_count_every_extra_they_name() -> None:
    # uv spells conflicting extras as extra == 'extra-<len>-<package>-<extra>'; torch 2.0 is for the "cpu" extra.
    text = lock_with(
        'dependencies = [\n    { name = "torch", version = "2.0", source = { registry = "https://pypi.org/simple" }, marker = "extra == \'extra-3-app-cpu\'" },\n'
        '    { name = "torch", version = "2.1", source = { registry = "https://pypi.org/simple" }, marker = "extra != \'extra-3-app-cpu\'" },\n]\n',
        pkg("torch", "2.0"),
        pkg("torch", "2.1"),
    )
    lock = parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")
    assert [(p.name, p.version) for p in lock.reachable(LINUX_312)] == [
        ("app", "0.1.0"),
        ("torch", "2.0"),
        ("torch", "2.1"),
    ]
    assert error(lambda: lock.pins_for(LINUX_312)) == (
        "uv.lock: package 'torch' is locked at both 2.0 and 2.1 for target 'linux-amd64-cp312' (conflicting extras or"
        " groups); one resolution cannot install both"
    )


def test_a_marker_that_cannot_be_evaluated_keeps_the_edge(caplog: pytest.LogCaptureFixture) -> None:
    text = lock_with('dependencies = [\n    { name = "idna", marker = "group == \'dev\'" },\n]\n', pkg("idna", "3.10"))
    lock = parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        assert [str(r.requirement) for r in lock.pins_for(LINUX_312)] == ["idna==3.10"]
    assert caplog.messages == [
        "uv.lock: cannot evaluate marker \"group == 'dev'\" (app 0.1.0 -> idna) for target linux-amd64-cp312, so the"
        " dependency is kept: marker: \"group == 'dev'\" is not a valid PEP 508 marker: Expected a marker variable"
        " or quoted string"
    ]


def test_local_projects_walk_through_and_outside_directories_are_not_members(tmp_path: Path) -> None:
    text = lock_with(
        'dependencies = [\n    { name = "lib" },\n    { name = "shared" },\n]\n',
        '[[package]]\nname = "lib"\nversion = "0.2"\nsource = { editable = "libs/lib" }\ndependencies = [\n    { name = "idna" },\n]\n\n',
        '[[package]]\nname = "shared"\nsource = { directory = "../shared" }\ndependencies = [\n    { name = "six" },\n]\n\n'
        '[package.optional-dependencies]\nfast = [\n    { name = "orjson" },\n]\n\n',
        '[[package]]\nname = "unused"\nversion = "1"\nsource = { editable = "../unused" }\ndependencies = [\n    { name = "orjson" },\n]\n\n',
        pkg("idna", "3.10"),
        pkg("six", "1.16.0"),
        pkg("orjson", "3.10.0"),
    )
    lock = parse_uv_lock(text, path=tmp_path / "ws" / "uv.lock", label="uv.lock")
    assert [p.name for p in lock.members] == ["app", "lib"]
    assert [str(r.requirement) for r in lock.pins_for(LINUX_312)] == ["idna==3.10", "six==1.16.0"]

    write(
        tmp_path / "ws" / "libs" / "lib" / "pyproject.toml",
        '[project]\nname = "lib"\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
    )
    write(tmp_path / "shared" / "setup.py", "from setuptools import setup\nsetup()\n")
    inputs = uv_lock_inputs(lock, LINUX_312, root=tmp_path / "ws")
    assert (
        pairs(inputs.requirements)
        == pairs(inputs.constraints)
        == [("idna==3.10", "uv.lock"), ("six==1.16.0", "uv.lock")]
    )
    assert inputs.projects == (
        Project(
            name="lib",
            path=tmp_path / "ws" / "libs" / "lib",
            build_system=BuildSystem(requires=(Requirement("hatchling"),), backend="hatchling.build", declared=True),
        ),
        Project(name="shared", path=tmp_path / "ws" / ".." / "shared", build_system=BuildSystem.legacy()),
    )


def test_uv_lock_inputs_skip_a_missing_local_project_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = lock_with("", head="version = 1\n").replace('{ virtual = "." }', '{ editable = "." }')
    lock = parse_uv_lock(text, path=tmp_path / "gone" / "uv.lock", label="gone/uv.lock")
    with caplog.at_level(logging.WARNING, logger="mirror.sources"):
        inputs = uv_lock_inputs(lock, LINUX_312, root=tmp_path)
    assert inputs == Inputs()
    assert caplog.messages == ["gone/uv.lock: local project 'app' is not at gone; its build system is not mirrored"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 2\n", "uv.lock: version: 2 is not a uv.lock version this tool reads; expected 1"),
        ('version = 1\nrequires-python = ">=>3"\n', "uv.lock: requires-python: '>=>3' is not a version specifier"),
        ("version = 1\npackage = 3\n", "uv.lock: package: expected an array of tables ([[package]])"),
        ('version = 1\n[[package]]\nversion = "1"\n', "uv.lock: package[0]: expected a table with a name"),
        ('version = 1\n[[package]]\nname = "a"\n', "uv.lock: package[0].source: missing"),
        (
            'version = 1\n[[package]]\nname = "a"\nsource = { registry = "https://pypi.org/simple" }\n',
            "uv.lock: package[0].version: missing; a package from a registry has a version",
        ),
        (
            'version = 1\n[[package]]\nname = "a"\nsource = { svn = "x" }\n',
            "uv.lock: package[0].source: expected a table with one of registry, editable, virtual, directory, git, url, path, got {'svn': 'x'}",
        ),
        (lock_with("dependencies = [3]\n"), "uv.lock: package[0].dependencies[0]: expected a table with a name, got 3"),
        (
            lock_with('dependencies = [{ name = "a", marker = 1 }]\n'),
            "uv.lock: package[0].dependencies[0].marker: expected a string, got 1",
        ),
        (
            lock_with('[package.optional-dependencies]\nx = [{ name = "a", extra = "y" }]\n'),
            "uv.lock: package[0].optional-dependencies.x[0].extra: expected an array of strings, got 'y'",
        ),
    ],
)
def test_uv_lock_parse_errors(text: str, message: str) -> None:
    assert error(lambda: parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            lock_with('dependencies = [{ name = "idna" }]\n'),
            "uv.lock: package 'app 0.1.0' depends on 'idna', which is not in the lock",
        ),
        (
            lock_with('dependencies = [{ name = "idna", version = "9" }]\n', pkg("idna", "3.10")),
            "uv.lock: package 'app 0.1.0' depends on 'idna 9', which is not in the lock",
        ),
        (
            lock_with('dependencies = [{ name = "idna" }]\n', pkg("idna", "3.9"), pkg("idna", "3.10")),
            "uv.lock: package 'app 0.1.0' depends on 'idna', which the lock holds 2 times; the edge names no version or source to choose",
        ),
        (
            lock_with("", head='version = 1\nrequires-python = ">=3.13"\n'),
            "uv.lock: requires-python '>=3.13' excludes target 'linux-amd64-cp312' (Python 3.12); the lock cannot be installed there",
        ),
        (
            'version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { editable = "../elsewhere" }\n',
            "uv.lock: no workspace member to start from (a package whose source is editable, virtual or directory inside the lock's directory)",
        ),
    ],
)
def test_uv_lock_walk_errors(text: str, message: str) -> None:
    lock = parse_uv_lock(text, path=Path("/w/uv.lock"), label="uv.lock")
    assert error(lambda: lock.pins_for(LINUX_312)) == message


def uv_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return isolated_env(
        home, extra={"UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never"}
    )


def run_uv(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([find_uv_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def exported_pins(project: Path, env: dict[str, str], target: Target) -> list[str]:
    """The oracle: ``uv export`` of every extra and group, its markers evaluated for ``target``."""
    text = run_uv(
        [
            "export",
            "--frozen",
            "--all-extras",
            "--all-groups",
            "--no-hashes",
            "--no-emit-workspace",
            "--no-header",
            "--no-annotate",
        ],
        project,
        env,
    )
    pins = []
    for line in text.splitlines():
        requirement = Requirement(line)
        if target.evaluate(requirement.marker):
            pins.append(f"{requirement.name}{requirement.specifier}")
    return sorted(pins)


APP_PYPROJECT = """
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10"
dependencies = ["om-pure", "om-num", "lib"]
[project.optional-dependencies]
extra = ["om-extra[fast]"]
[dependency-groups]
dev = ["om-dynamic; python_version < '3.12'"]
[tool.uv.sources]
lib = { workspace = true }
[tool.uv.workspace]
members = ["libs/*"]
[build-system]
requires = ["om-backend"]
build-backend = "om_backend"
"""
LIB_PYPROJECT = """
[project]
name = "lib"
version = "0.2"
requires-python = ">=3.10"
dependencies = ["om-dep"]
[build-system]
requires = ["om-backend"]
build-backend = "om_backend"
"""


def test_real_uv_lock_from_a_local_index(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    releases = (
        Release(name="om-pure", version="2.0", requires_dist=('om-winhelper; sys_platform == "win32"', "om-dep")),
        Release(name="om-dep", version="1.0"),
        Release(name="om-winhelper", version="1.0", wheel_tags=("py3-none-win_amd64",)),
        Release(name="om-num", version="1.0"),
        Release(name="om-num", version="2.0", requires_python=">=3.12"),  # forks the resolution by Python version
        Release(name="om-extra", version="1.0", requires_dist=("om-dep",)),
        Release(name="om-dynamic", version="1.0"),
        Release(name="om-backend", version="1.0", sdist=BackendSdist(build_requires=())),
    )
    upstream = make_upstream(releases)
    project = tmp_path / "app"
    write(project / "pyproject.toml", APP_PYPROJECT)
    write(project / "libs" / "lib" / "pyproject.toml", LIB_PYPROJECT)
    env = uv_env(tmp_path)
    run_uv(["lock", "--quiet", "--index-url", upstream.url, "--python", sys.executable], project, env)

    lock = read_uv_lock(project / "uv.lock", root=tmp_path)
    assert lock.label == "app/uv.lock"
    expected = {
        LINUX_310: ["om-dep==1.0", "om-dynamic==1.0", "om-extra==1.0", "om-num==1.0", "om-pure==2.0"],
        LINUX_312: ["om-dep==1.0", "om-extra==1.0", "om-num==2.0", "om-pure==2.0"],
        WINDOWS_312: ["om-dep==1.0", "om-extra==1.0", "om-num==2.0", "om-pure==2.0", "om-winhelper==1.0"],
    }
    for target, pins in expected.items():
        assert [str(r.requirement) for r in lock.pins_for(target)] == pins, target.name
        assert exported_pins(project, env, target) == pins, target.name

    inputs = uv_lock_inputs(lock, LINUX_312, root=tmp_path)
    assert [(p.name, p.path, p.build_system.backend) for p in inputs.projects] == [
        ("app", project, "om_backend"),
        ("lib", project / "libs" / "lib", "om_backend"),
    ]


@pytest.mark.network
def test_real_uv_lock_from_pypi(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(
        project / "pyproject.toml",
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["idna==3.10", "colorama==0.4.6; sys_platform == \'win32\'"]\n'
        '[project.optional-dependencies]\nsocks = ["pysocks==1.7.1"]\n'
        '[dependency-groups]\ndev = ["iniconfig==2.0.0"]\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_PYTHON_DOWNLOADS="never")
    run_uv(["lock", "--quiet", "--index-url", "https://pypi.org/simple", "--python", sys.executable], project, env)
    lock = read_uv_lock(project / "uv.lock", root=tmp_path)
    common = ["idna==3.10", "iniconfig==2.0.0", "pysocks==1.7.1"]
    assert [str(r.requirement) for r in lock.pins_for(LINUX_312)] == common
    assert [str(r.requirement) for r in lock.pins_for(WINDOWS_312)] == ["colorama==0.4.6", *common]
    assert exported_pins(project, env, WINDOWS_312) == ["colorama==0.4.6", *common]


# -- packages, inputs and collect_inputs --------------------------------------------------------------------------


def test_package_inputs() -> None:
    inputs = package_inputs(["docopt==0.6.2", "requests[socks]>=2; python_version >= '3.8'"])
    assert pairs(inputs.requirements) == [
        ("docopt==0.6.2", "mirror.toml packages[0]"),
        ('requests[socks]>=2; python_version >= "3.8"', "mirror.toml packages[1]"),
    ]
    assert error(lambda: package_inputs(["ok", "x @ https://example.com/x.whl"])) == (
        f"mirror.toml: sources.packages[1]: 'x @ https://example.com/x.whl' {RELEASE}"
    )


def root_requirement(text: str, origin: str) -> RootRequirement:
    return RootRequirement(requirement=Requirement(text), origin=origin)


def test_inputs_texts_are_sorted_canonical_and_without_duplicates() -> None:
    inputs = Inputs.combine(
        [
            Inputs(
                requirements=(
                    root_requirement("Zope.Interface >= 5", "a:1"),
                    root_requirement("requests[SOCKS,Security]", "a:2"),
                )
            ),
            Inputs(
                requirements=(
                    root_requirement("requests[security,socks]", "b:1"),
                    root_requirement("zope-interface>=5", "b:2"),
                )
            ),
            Inputs(
                requirements=(root_requirement("Zope.Interface >= 5", "a:1"),),
                constraints=(root_requirement("urllib3 <3, >=1.26", "c:1"),),
            ),
            Inputs(requirements=(root_requirement("attrs; python_version<'3.12'", "d:1"),)),
        ]
    )
    assert [r.origin for r in inputs.requirements] == ["a:1", "a:2", "b:1", "b:2", "d:1"]
    assert inputs.requirements_txt() == 'attrs; python_version < "3.12"\nrequests[security,socks]\nzope-interface>=5\n'
    assert inputs.constraints_txt() == "urllib3<3,>=1.26\n"
    assert Inputs().requirements_txt() == ""


def test_inputs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Inputs().projects = ()  # type: ignore[misc]


def test_collect_inputs_reads_every_source_in_order(tmp_path: Path) -> None:
    ws = tmp_path
    write(ws / "requirements.txt", "-c constraints.txt\nrequests>=2.31\nidna\n")
    write(ws / "constraints.txt", "urllib3<3\n")
    write(ws / "app" / "pyproject.toml", APP)
    write(ws / "locked" / "uv.lock", UV_LOCK)
    write(ws / "locked" / "pyproject.toml", '[project]\nname = "app"\nversion = "0.1.0"\n')
    sources = Sources(
        requirements=(ws / "requirements.txt",),
        projects=(ProjectSource(path=ws / "app", extras=("yaml",), groups=("lint",)),),
        locks=(LockSource(path=ws / "locked" / "uv.lock", format="uv.lock"),),
        packages=("docopt==0.6.2", "idna"),
    )
    inputs = collect_inputs(sources, LINUX_312, root=ws)
    lock_pins = [*COMMON, "numpy==2.1.3", *REST, "requests==2.32.3", "urllib3==2.2.3"]
    assert pairs(inputs.requirements) == [
        ("requests>=2.31", "requirements.txt:2"),
        ("idna", "requirements.txt:3"),
        ("requests>=2.31", "app/pyproject.toml [project.dependencies]"),
        ('pywin32; sys_platform == "win32"', "app/pyproject.toml [project.dependencies]"),
        ("pyyaml", "app/pyproject.toml [project.optional-dependencies.yaml]"),
        ("ruff", "app/pyproject.toml [dependency-groups.lint]"),
        *[(pin, "locked/uv.lock") for pin in lock_pins],
        ("docopt==0.6.2", "mirror.toml packages[0]"),
        ("idna", "mirror.toml packages[1]"),
    ]
    assert pairs(inputs.constraints) == [
        ("urllib3<3", "constraints.txt:1"),
        *[(pin, "locked/uv.lock") for pin in lock_pins],
    ]
    assert inputs.requirements_txt() == "".join(
        f"{line}\n"
        for line in sorted(
            [
                "requests>=2.31",
                "idna",
                'pywin32; sys_platform == "win32"',
                "pyyaml",
                "ruff",
                "docopt==0.6.2",
                *lock_pins,
            ]
        )
    )
    assert inputs.constraints_txt() == "".join(f"{line}\n" for line in sorted(["urllib3<3", *lock_pins]))
    assert [(p.name, p.path, p.build_system.declared) for p in inputs.projects] == [
        ("my-app", ws / "app", True),
        ("app", ws / "locked", False),
    ]


def test_collect_inputs_of_empty_sources(tmp_path: Path) -> None:
    assert collect_inputs(Sources(), LINUX_312, root=tmp_path) == Inputs()
