"""mirror relocate-uv-lock: a uv.lock rewritten onto the mirror installs with `uv sync --frozen` and nothing else."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from uv import find_uv_bin

from mirror.errors import MirrorError
from mirror.manifest import FileEntry
from mirror.serve import serving
from mirror.sources import parse_uv_lock
from mirror.sources.uvlock import RelocateError, mirror_root, relocate, unserved
from mirror.targets import Target, host_target
from mirror.workspace import Workspace
from tests.fixtures.dists import DEFAULT_RELEASES, BackendSdist, Release, build_dists
from tests.fixtures.env import Cli, isolated_env
from tests.fixtures.server import AccessLog, Upstream, serve_dir

MakeUpstream = Callable[..., Upstream]
HOST = host_target()
LINUX_311 = Target.create("linux/amd64", "3.11")
LINUX_312 = Target.create("linux/amd64", "3.12")
WINDOWS_311 = Target.create("windows/amd64", "3.11")
LINUX_39 = Target.create("linux/amd64", "3.9")

# -- the pure rewrite, on an inline lock ------------------------------------------------------------------------

PYPI = "https://files.pythonhosted.org/packages"
H = {name: f"sha256:{digit * 64}" for name, digit in [("ini-sdist", "1"), ("ini", "2"), ("np1-sdist", "3"), ("np1-linux", "4"), ("np1-win", "5"), ("np2-linux", "6"), ("np2-win", "7"), ("plugin", "8"), ("pywin32", "9")]}  # fmt: skip

# An app with numpy forked by Python version (the edges name version and registry), a direct-URL wheel, pywin32
# on Windows and a dev group; [package.metadata] names an index, which stays as written.
UV_LOCK = f"""version = 1
revision = 3
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.12'",
    "python_full_version < '3.12'",
]

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "numpy", version = "1.26.4", source = {{ registry = "https://pypi.org/simple" }}, marker = "python_full_version < '3.12'" }},
    {{ name = "numpy", version = "2.1.3", source = {{ registry = "https://pypi.org/simple" }}, marker = "python_full_version >= '3.12'" }},
    {{ name = "plugin" }},
    {{ name = "pywin32", marker = "sys_platform == 'win32'" }},
]

[package.dev-dependencies]
dev = [
    {{ name = "iniconfig" }},
]

[package.metadata]
requires-dist = [
    {{ name = "numpy" }},
    {{ name = "plugin", url = "https://example.com/plugin-1.0-py3-none-any.whl" }},
    {{ name = "pywin32", marker = "sys_platform == 'win32'", index = "https://pypi.org/simple" }},
]

[package.metadata.requires-dev]
dev = [{{ name = "iniconfig" }}]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "{PYPI}/d7/4b/iniconfig-2.0.0.tar.gz", hash = "{H["ini-sdist"]}", size = 4646, upload-time = "2023-01-07T11:08:11.254Z" }}
wheels = [
    {{ url = "{PYPI}/ef/a6/iniconfig-2.0.0-py3-none-any.whl", hash = "{H["ini"]}", size = 5892, upload-time = "2023-01-07T11:08:09.864Z" }},
]

[[package]]
name = "numpy"
version = "1.26.4"
source = {{ registry = "https://pypi.org/simple" }}
resolution-markers = [
    "python_full_version < '3.12'",
]
sdist = {{ url = "{PYPI}/65/6e/numpy-1.26.4.tar.gz", hash = "{H["np1-sdist"]}", size = 15786129 }}
wheels = [
    {{ url = "{PYPI}/4b/d7/numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "{H["np1-linux"]}", size = 18272331 }},
    {{ url = "{PYPI}/3f/6b/numpy-1.26.4-cp311-cp311-win_amd64.whl", hash = "{H["np1-win"]}", size = 15794830 }},
]

[[package]]
name = "numpy"
version = "2.1.3"
source = {{ registry = "https://pypi.org/simple" }}
resolution-markers = [
    "python_full_version >= '3.12'",
]
wheels = [
    {{ url = "{PYPI}/8a/f0/numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "{H["np2-linux"]}", size = 16093489 }},
    {{ url = "{PYPI}/b5/9a/numpy-2.1.3-cp312-cp312-win_amd64.whl", hash = "{H["np2-win"]}", size = 12616210 }},
]

[[package]]
name = "plugin"
version = "1.0"
source = {{ url = "https://example.com/plugin-1.0-py3-none-any.whl" }}
wheels = [
    {{ url = "https://example.com/plugin-1.0-py3-none-any.whl", hash = "{H["plugin"]}" }},
]

[[package]]
name = "pywin32"
version = "308"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [
    {{ url = "{PYPI}/00/7c/pywin32-308-cp311-cp311-win_amd64.whl", hash = "{H["pywin32"]}", size = 6556213 }},
]
"""

M = "http://mirror.internal:3141"
RELOCATED = f"""version = 1
revision = 3
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.12'",
    "python_full_version < '3.12'",
]

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "numpy", version = "1.26.4", source = {{ registry = "{M}/simple" }}, marker = "python_full_version < '3.12'" }},
    {{ name = "numpy", version = "2.1.3", source = {{ registry = "{M}/simple" }}, marker = "python_full_version >= '3.12'" }},
    {{ name = "plugin" }},
    {{ name = "pywin32", marker = "sys_platform == 'win32'" }},
]

[package.dev-dependencies]
dev = [
    {{ name = "iniconfig" }},
]

[package.metadata]
requires-dist = [
    {{ name = "numpy" }},
    {{ name = "plugin", url = "https://example.com/plugin-1.0-py3-none-any.whl" }},
    {{ name = "pywin32", marker = "sys_platform == 'win32'", index = "https://pypi.org/simple" }},
]

[package.metadata.requires-dev]
dev = [{{ name = "iniconfig" }}]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = {{ registry = "{M}/simple" }}
wheels = [
    {{ url = "{M}/files/iniconfig/iniconfig-2.0.0-py3-none-any.whl", hash = "{H["ini"]}", size = 5892, upload-time = "2023-01-07T11:08:09.864Z" }},
]

[[package]]
name = "numpy"
version = "1.26.4"
source = {{ registry = "{M}/simple" }}
resolution-markers = [
    "python_full_version < '3.12'",
]
wheels = [
    {{ url = "{M}/files/numpy/numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "{H["np1-linux"]}", size = 18272331 }},
]

[[package]]
name = "numpy"
version = "2.1.3"
source = {{ registry = "{M}/simple" }}
resolution-markers = [
    "python_full_version >= '3.12'",
]
wheels = [
    {{ url = "{M}/files/numpy/numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "{H["np2-linux"]}", size = 16093489 }},
]

[[package]]
name = "plugin"
version = "1.0"
source = {{ url = "https://example.com/plugin-1.0-py3-none-any.whl" }}
wheels = [
    {{ url = "https://example.com/plugin-1.0-py3-none-any.whl", hash = "{H["plugin"]}" }},
]

[[package]]
name = "pywin32"
version = "308"
source = {{ registry = "{M}/simple" }}
"""


def entry(filename: str, key: str) -> FileEntry:
    """The wheelhouse's record of a file (only the name, project and sha256 matter to relocation)."""
    project = filename.split("-")[0]
    kind = "wheel" if filename.endswith(".whl") else "sdist"
    return FileEntry(filename=filename, project=project, version="0", kind=kind, url=None, sha256=H[key][7:])


HELD = {
    e.filename: e
    for e in [
        entry("iniconfig-2.0.0-py3-none-any.whl", "ini"),
        entry("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "np1-linux"),
        entry("numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "np2-linux"),
    ]
}


def test_relocate_rewrites_registry_urls_and_drops_files_the_mirror_lacks() -> None:
    result = relocate(UV_LOCK, root=M, held=HELD)
    assert result.text == RELOCATED
    assert result.index_url == f"{M}/simple"
    assert result.packages == 4
    assert result.registries == ("https://pypi.org/simple",)
    assert [f.filename for f in result.kept] == list(HELD)
    assert [(f.package, f.version, f.filename) for f in result.dropped] == [
        ("iniconfig", "2.0.0", "iniconfig-2.0.0.tar.gz"),
        ("numpy", "1.26.4", "numpy-1.26.4.tar.gz"),
        ("numpy", "1.26.4", "numpy-1.26.4-cp311-cp311-win_amd64.whl"),
        ("numpy", "2.1.3", "numpy-2.1.3-cp312-cp312-win_amd64.whl"),
        ("pywin32", "308", "pywin32-308-cp311-cp311-win_amd64.whl"),
    ]
    assert result.dropped[0].url == f"{PYPI}/d7/4b/iniconfig-2.0.0.tar.gz"
    assert result.dropped[0].hash == H["ini-sdist"]


def test_relocate_is_idempotent_and_keeps_crlf_line_endings() -> None:
    once = relocate(UV_LOCK, root=M, held=HELD)
    twice = relocate(once.text, root=M, held=HELD)
    assert twice.text == once.text
    assert twice.dropped == ()
    assert twice.registries == (f"{M}/simple",)
    crlf = relocate(UV_LOCK.replace("\n", "\r\n"), root=M, held=HELD)
    assert crlf.text == RELOCATED.replace("\n", "\r\n")


def test_a_file_of_the_same_name_with_another_sha256_is_not_the_locked_file(caplog: pytest.LogCaptureFixture) -> None:
    other = {**HELD, "iniconfig-2.0.0-py3-none-any.whl": entry("iniconfig-2.0.0-py3-none-any.whl", "plugin")}
    with caplog.at_level(logging.WARNING, logger="mirror.sources.uvlock"):
        result = relocate(UV_LOCK, root=M, held=other)
    assert "iniconfig-2.0.0-py3-none-any.whl" in [f.filename for f in result.dropped]
    assert caplog.messages == [
        f"{PYPI}/ef/a6/iniconfig-2.0.0-py3-none-any.whl: the wheelhouse holds a different file of that name"
        f" (sha256 {'8' * 64})"
    ]


def test_nothing_held_leaves_registry_packages_without_files() -> None:
    result = relocate(UV_LOCK, root=M, held={})
    assert len(result.kept) == 0
    assert len(result.dropped) == 8
    assert "files.pythonhosted.org" not in result.text
    assert "wheels = [\n]" not in result.text
    assert 'url = "https://example.com/plugin-1.0-py3-none-any.whl", hash' in result.text  # a URL source stays


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            UV_LOCK.replace(
                f'wheels = [\n    {{ url = "{PYPI}/ef/a6/iniconfig-2.0.0-py3-none-any.whl", hash = "{H["ini"]}", size = 5892, upload-time = "2023-01-07T11:08:09.864Z" }},\n]',
                f'wheels = [{{ url = "{PYPI}/ef/a6/iniconfig-2.0.0-py3-none-any.whl", hash = "{H["ini"]}" }}]',
            ),
            "uv.lock: cannot rewrite package[1] (iniconfig 2.0.0) in place; run 'uv lock' to write it in uv's layout, then relocate it",
        ),
        (
            UV_LOCK.replace(f"{PYPI}/00/7c/pywin32-308-cp311-cp311-win_amd64.whl", "https://example.com/download?id=7"),
            "uv.lock: package[5] (pywin32 308): wheels[0]: 'https://example.com/download?id=7' does not end in a distribution file name",
        ),
        (
            UV_LOCK.replace(
                'name = "numpy"\nversion = "2.1.3"\nsource = { registry = "https://pypi.org/simple" }',
                'name = "numpy"\nversion = "1.26.4"\nsource = { registry = "https://download.example/simple" }',
            ),
            "uv.lock: numpy 1.26.4 is locked from 2 registries (https://pypi.org/simple, https://download.example/simple); the mirror is one index, where they would become one package",
        ),
        ("version = 2\n", "uv.lock: version: 2 is not a uv.lock version this tool reads; expected 1"),
    ],
    ids=["inline-wheels", "not-a-filename", "two-registries", "version"],
)
def test_relocate_errors(text: str, message: str) -> None:
    with pytest.raises(MirrorError) as caught:
        relocate(text, root=M, held=HELD)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://mirror.internal:3141/", "http://mirror.internal:3141"),
        ("http://mirror.internal:3141", "http://mirror.internal:3141"),
        ("http://mirror.internal:3141/simple/", "http://mirror.internal:3141"),
        ("https://nexus.example/pypi/simple", "https://nexus.example/pypi"),
        ("https://nexus.example/pypi/", "https://nexus.example/pypi"),
        (" http://10.0.0.5:8080/ ", "http://10.0.0.5:8080"),
    ],
)
def test_mirror_root(url: str, root: str) -> None:
    assert mirror_root(url) == root


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mirror.internal:3141",
            "--url: 'mirror.internal:3141' is not an http(s) URL of the mirror, e.g. http://mirror.internal:3141/",
        ),
        (
            "ftp://mirror/",
            "--url: 'ftp://mirror/' is not an http(s) URL of the mirror, e.g. http://mirror.internal:3141/",
        ),
        (
            "http://mirror/?x=1",
            "--url: 'http://mirror/?x=1' must be a plain URL (no query, fragment, quotes or spaces)",
        ),
        ('http://mirror/"', "--url: 'http://mirror/\"' must be a plain URL (no query, fragment, quotes or spaces)"),
    ],
)
def test_mirror_root_errors(url: str, message: str) -> None:
    with pytest.raises(RelocateError) as caught:
        mirror_root(url)
    assert str(caught.value) == message


def test_unserved_lists_what_each_target_installs_without_a_file() -> None:
    lock = parse_uv_lock(UV_LOCK, path=Path("/w/uv.lock"), label="uv.lock")
    result = relocate(UV_LOCK, root=M, held=HELD)
    # 3.9 is outside requires-python: nothing of this lock installs there
    assert unserved(lock, result, [LINUX_311, LINUX_312, WINDOWS_311, LINUX_39]) == [
        "numpy 1.26.4 [windows-amd64-cp311]",
        "plugin 1.0 (url source) [linux-amd64-cp311, linux-amd64-cp312, windows-amd64-cp311]",
        "pywin32 308 [windows-amd64-cp311]",
    ]
    # a kept sdist serves every target (it builds there)
    with_sdist = {**HELD, "numpy-1.26.4.tar.gz": entry("numpy-1.26.4.tar.gz", "np1-sdist")}
    assert unserved(lock, relocate(UV_LOCK, root=M, held=with_sdist), [WINDOWS_311]) == [
        "plugin 1.0 (url source) [windows-amd64-cp311]",
        "pywin32 308 [windows-amd64-cp311]",
    ]


# -- real uv against the mirror, the upstream gone ----------------------------------------------------------------

APP = """[project]
name = "app"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["om-pure==2.0", "om-native"]

[project.optional-dependencies]
fast = ["om-dynamic"]

[dependency-groups]
dev = ["om-setuphelper"]

[tool.uv]
package = false
"""

# The same app as a package: uv builds it, and its build-system.requires come from the index, not from the lock.
BUILT = APP.replace('name = "app"', 'name = "built"').replace(
    "[tool.uv]\npackage = false\n", '[build-system]\nrequires = ["om-backend"]\nbuild-backend = "om_backend"\n'
)


def uv_env(home: Path, **extra: str) -> dict[str, str]:
    """uv reads no configuration, downloads no Python, retries nothing; every host but 127.0.0.1 is a dead proxy."""
    home.mkdir(parents=True, exist_ok=True)
    return isolated_env(
        home, extra={"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_HTTP_RETRIES": "0", **extra}
    )


def uv(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_uv_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def sync_args(*extra: str) -> list[str]:
    return ["sync", "--frozen", "--no-cache", "--python", sys.executable, *extra]


@dataclass(frozen=True, kw_only=True, slots=True)
class Deployed:
    """Two uv projects locked against an upstream that is gone, and a workspace that mirrored their locks."""

    root: Path
    workspace: Path
    upstream_url: str  # nothing listens there any more
    held: frozenset[str]  # file names in the wheelhouse

    @property
    def spec(self) -> Path:
        return self.workspace / "mirror.toml"

    def project(self, name: str, tmp_path: Path) -> Path:
        """A fresh copy of a project and its original uv.lock."""
        return Path(shutil.copytree(self.root / name, tmp_path / name))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    root = tmp_path_factory.mktemp("uvlock")
    catalog = build_dists(root / "upstream", DEFAULT_RELEASES, repack=())
    env = uv_env(root / "home", UV_CACHE_DIR=str(root / "uv-cache"))
    with serve_dir(catalog.files_dir, yanked=catalog.yanked) as upstream:
        for name, pyproject in [("app", APP), ("built", BUILT)]:
            (root / name / name).mkdir(parents=True)
            (root / name / name / "__init__.py").write_text("")
            (root / name / "pyproject.toml").write_text(pyproject)
            locked = uv(["lock", "--index-url", upstream.url, "--python", sys.executable], root / name, env)
            assert locked.returncode == 0, locked.stderr
        workspace = root / "workspace"
        workspace.mkdir()
        locks = json.dumps([str(root / "app" / "uv.lock"), str(root / "built" / "uv.lock")])
        (workspace / "mirror.toml").write_text(
            f'[mirror]\nupstream = "{upstream.url}"\n'
            f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n'
            f"[sources]\nuv-locks = {locks}\n[policy]\nbuild-wheels = false\n"
        )
        Workspace.open(workspace / "mirror.toml").sync()
        upstream_url = upstream.base_url
    files = workspace / "wheelhouse" / "files"
    held = frozenset(p.name for p in files.glob("*/*") if not p.name.endswith(".metadata"))
    return Deployed(root=root, workspace=workspace, upstream_url=upstream_url, held=held)


def taken(access: AccessLog) -> list[str]:
    """``"GET /files/... 200"`` for each request since the last call, sorted."""
    return sorted(f"{r.method} {r.target} {r.status}" for r in access.take())


@pytest.fixture
def mirror(deployed: Deployed) -> Iterator[tuple[str, AccessLog]]:
    access = AccessLog()
    with serving(deployed.workspace / "wheelhouse", access_log=access) as server:
        yield server.url, access


def locked_files(text: str) -> list[str]:
    """Every file name the lock's registry packages name."""
    return [
        str(f["url"]).rsplit("/", 1)[1]
        for p in parse_toml(text)["package"]
        if "registry" in p["source"]
        for f in [*([p["sdist"]] if "sdist" in p else []), *p.get("wheels", [])]
    ]


def parse_toml(text: str) -> dict[str, list[dict[str, object]]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads(text)


def gets(held: list[str]) -> list[str]:
    """The access-log lines of downloading these files from the mirror."""
    return sorted(f"GET /files/{name.split('-')[0].replace('_', '-')}/{name} 200" for name in held)


def installed(result: subprocess.CompletedProcess[str]) -> list[str]:
    return sorted(line.strip()[2:] for line in result.stderr.splitlines() if line.startswith(" + "))


def test_without_relocation_frozen_sync_goes_to_the_locked_upstream_and_fails(
    deployed: Deployed, mirror: tuple[str, AccessLog], tmp_path: Path
) -> None:
    project = deployed.project("app", tmp_path)
    result = uv(sync_args("--no-default-groups"), project, uv_env(tmp_path / "home"))
    assert result.returncode != 0
    assert f"Failed to fetch: {deployed.upstream_url}/files/om_" in result.stderr
    assert taken(mirror[1]) == []  # index settings would not help either: --frozen uses the lock's URLs


def test_relocated_lock_syncs_frozen_from_the_mirror_alone(
    cli: Cli, deployed: Deployed, mirror: tuple[str, AccessLog], tmp_path: Path
) -> None:
    url, access = mirror
    project = deployed.project("app", tmp_path)
    lock = project / "uv.lock"
    original = lock.read_text()
    relocation = cli("relocate-uv-lock", str(lock), "--url", url, "--spec", str(deployed.spec))
    assert relocation.exit_code == 0, relocation.stderr
    kept = [f for f in locked_files(original) if f in deployed.held]
    dropped = len(locked_files(original)) - len(kept)
    assert relocation.stdout == (
        f"wrote {lock}: 6 packages, {len(kept)} files at {url}simple\n"
        f"{dropped} locked files are outside the targets (not in the wheelhouse; dropped from the lock)\n"
    )
    relocated = lock.read_text()
    assert locked_files(relocated) == kept
    assert deployed.upstream_url not in relocated
    assert relocated.count(f'source = {{ registry = "{url}simple" }}') == 6

    env = uv_env(tmp_path / "home")
    result = uv(sync_args("--no-default-groups"), project, env)
    assert result.returncode == 0, result.stderr
    assert installed(result) == ["om-dep==1.0", "om-native==1.0", "om-pure==2.0"]
    assert taken(access) == gets([f for f in kept if f.startswith(("om_dep-", "om_native-", "om_pure-"))])

    result = uv(sync_args("--no-default-groups", "--extra", "fast"), project, env)
    assert result.returncode == 0, result.stderr
    assert installed(result) == ["om-dynamic==1.0"]
    assert taken(access) == gets([f for f in kept if f.startswith("om_dynamic-")])


def test_uv_run_without_the_sync_group_flags_installs_the_default_groups(
    deployed: Deployed, mirror: tuple[str, AccessLog], tmp_path: Path
) -> None:
    url, access = mirror
    project = deployed.project("app", tmp_path)
    Workspace.open(deployed.spec).relocate_uv_lock(project / "uv.lock", url=url, out=project / "uv.lock")
    env = uv_env(tmp_path / "home", UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    assert uv(sync_args("--no-default-groups"), project, env).returncode == 0
    access.take()
    run = ["run", "python", "-c", "import om_pure"]
    for flags, extra_env in [
        (["--frozen", "--no-default-groups"], {}),
        ([], {"UV_FROZEN": "1", "UV_NO_DEFAULT_GROUPS": "1"}),
    ]:
        same = uv([run[0], *flags, *run[1:]], project, {**env, **extra_env})
        assert same.returncode == 0, same.stderr
        assert same.stderr == ""
        assert taken(access) == []
    other = uv(["run", "--frozen", "python", "-c", "import om_setuphelper"], project, env)
    assert other.returncode == 0, other.stderr
    assert "Installed 1 package" in other.stderr
    assert taken(access) == gets([f for f in deployed.held if f.startswith("om_setuphelper-")])


def test_a_built_project_also_needs_the_mirror_as_its_index(
    deployed: Deployed, mirror: tuple[str, AccessLog], tmp_path: Path
) -> None:
    url, access = mirror
    project = deployed.project("built", tmp_path)
    relocation = Workspace.open(deployed.spec).relocate_uv_lock(project / "uv.lock", url=url, out=project / "uv.lock")
    assert relocation.index_url == f"{url}simple"
    args = sync_args("--no-default-groups", "--no-editable")
    alone = uv(args, project, uv_env(tmp_path / "home"))
    assert alone.returncode != 0
    assert "Failed to fetch: https://pypi.org/simple/om-backend/" in alone.stderr
    access.take()
    indexed = uv(args, project, uv_env(tmp_path / "home", UV_DEFAULT_INDEX=f"{url}simple/"))
    assert indexed.returncode == 0, indexed.stderr
    assert installed(indexed) == [
        "built==0.1 (from file://" + str(project) + ")",
        "om-dep==1.0",
        "om-native==1.0",
        "om-pure==2.0",
    ]
    backend = [f for f in deployed.held if f.startswith("om_backend-")]
    assert [line for line in taken(access) if "om-backend" in line] == [
        *gets(backend),
        f"GET /files/om-backend/{backend[0]}.metadata 200",
        "GET /simple/om-backend/ 200",
    ]


def test_refuses_when_a_package_a_target_installs_has_no_file_in_the_wheelhouse(
    cli: Cli, deployed: Deployed, tmp_path: Path
) -> None:
    workspace = Path(shutil.copytree(deployed.workspace, tmp_path / "workspace"))
    (workspace / "wheelhouse" / "files" / "om-pure" / "om_pure-2.0-py3-none-any.whl").unlink()
    project = deployed.project("app", tmp_path)
    before = (project / "uv.lock").read_bytes()
    out = tmp_path / "relocated.lock"
    result = cli(
        "relocate-uv-lock", str(project / "uv.lock"), "--url", "http://mirror.internal:3141/",
        "--spec", str(workspace / "mirror.toml"), "-o", str(out),
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {project / 'uv.lock'}: 1 package that the targets install has no locked file in the wheelhouse:"
        f" om-pure 2.0 [{Target.create(HOST.platform, HOST.python).name}];"
        " add it to [sources] uv-locks and run 'mirror sync'\n"
    )
    assert not out.exists()
    assert (project / "uv.lock").read_bytes() == before


GLIBC_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine())
GLIBC = platform.libc_ver()[1] if sys.platform == "linux" else ""


@pytest.mark.skipif(
    not GLIBC_ARCH or not GLIBC or tuple(map(int, GLIBC.split(".")[:2])) < (2, 28), reason="needs glibc >= 2.28 Linux"
)
def test_uv_chooses_among_the_files_the_mirror_holds(cli: Cli, make_upstream: MakeUpstream, tmp_path: Path) -> None:
    """The target's glibc floor is 2.17, this host is newer: uv prefers the manylinux_2_28 wheel the mirror lacks."""
    tags = [f"py3-none-manylinux_2_{v}_{GLIBC_ARCH}" for v in (17, 28)]
    old, new = (f"om_glibc-1.0-{tag}.whl" for tag in tags)
    upstream = make_upstream([Release(name="om-glibc", version="1.0", wheel_tags=tuple(tags), sdist=BackendSdist())])
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["om-glibc"]\n[tool.uv]\npackage = false\n'
    )
    env = uv_env(tmp_path / "home")
    assert uv(["lock", "--index-url", upstream.url, "--python", sys.executable], project, env).returncode == 0
    (tmp_path / "mirror.toml").write_text(
        f'[mirror]\nupstream = "{upstream.url}"\n'
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\nglibc = "2.17"\n'
        f'[sources]\nuv-locks = ["app/uv.lock"]\n[policy]\nbuild-wheels = false\n'
    )
    Workspace.open(tmp_path / "mirror.toml").sync()
    assert sorted(p.name for p in (tmp_path / "wheelhouse" / "files" / "om-glibc").glob("*.whl")) == [old]
    upstream.close()

    access = AccessLog()
    with serving(tmp_path / "wheelhouse", access_log=access) as server:
        relocation = cli(
            "relocate-uv-lock", str(project / "uv.lock"), "--url", server.url, "--spec", str(tmp_path / "mirror.toml")
        )
        assert relocation.exit_code == 0, relocation.stderr
        assert relocation.stdout.endswith("2 locked files are outside the targets (not in the wheelhouse; dropped from the lock)\n")
        relocated = (project / "uv.lock").read_text()
        result = uv(sync_args(), project, env)
        assert result.returncode == 0, result.stderr
        assert taken(access) == [f"GET /files/om-glibc/{old} 200"]

        # Had the lock kept the file the mirror lacks (at a mirror URL), uv would have asked for it.
        kept_line = next(line for line in relocated.splitlines() if old in line)
        with_new = relocated.replace(kept_line, kept_line.replace(old, new) + "\n" + kept_line)
        (project / "uv.lock").write_text(with_new)
        shutil.rmtree(project / ".venv")
        result = uv(sync_args(), project, env)
        assert result.returncode != 0
        assert taken(access) == [f"GET /files/om-glibc/{new} 404"]
