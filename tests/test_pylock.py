"""The lock as installers read it: ``pylock.<target>.toml`` copies pointing at the mirror (``mirror config
--target``), installed for real by uv and pip with no route out, and the unhashed build constraints that pips
older than 25.3 need, proven with the pips that CPython 3.9 to 3.13 venvs bundle."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uv
from packaging.pylock import Pylock, is_valid_pylock_path

from mirror import _toml
from mirror.config import (
    BUILD_CONSTRAINTS,
    ClientConfig,
    ClientConfigError,
    file_names,
    load_runtime_lock,
    render_files,
    summary,
    write_files,
)
from mirror.interpreters import Interpreter, discover
from mirror.serve import Server, serving
from mirror.spec import load_spec
from mirror.targets import host_target
from mirror.verify import namespace_command
from tests.fixtures.env import Cli, isolated_env, synced_workspace
from tests.fixtures.server import Upstream
from tests.test_verify import needs_namespace

HOST = host_target()
PYLOCK = f"pylock.{HOST.name}.toml"
BUILT = "om_sdistonly-1.0-py3-none-any.whl"  # built here from the sdist-only om-sdistonly: no upstream URL
INSTALLED = ["om_dep-1.0.dist-info", "om_pure-2.0.dist-info", "om_sdistonly-1.0.dist-info"]
IMPORTS = "import om_dep, om_pure, om_sdistonly; print(om_sdistonly.NAME, om_sdistonly.VERSION)"


@pytest.fixture(scope="module")
def workspace(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synced for this host, with the wheel of om-sdistonly built here."""
    root = synced_workspace(tmp_path_factory.mktemp("pylock"), upstream, ["om-pure==2.0", "om-sdistonly"])
    assert (root / "wheelhouse" / "files" / "om-sdistonly" / BUILT).is_file()
    return root


def served_copy(workspace: Path, url: str, clients: tuple[str, ...] = ("pip", "uv")) -> dict[str, str]:
    lock = load_runtime_lock(load_spec(workspace / "mirror.toml"), HOST.name)
    return render_files(ClientConfig.for_url(url, runtime_lock=lock), clients=clients)


def urls(document: dict[str, object]) -> dict[str, str]:
    """File name -> url of every wheel and sdist of a PEP 751 document."""
    found = {}
    packages = document["packages"]
    assert isinstance(packages, list)
    for package in packages:
        for archive in [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]:
            assert "path" not in archive, archive
            found[archive["name"]] = archive["url"]
    return found


# --- the copy for clients ------------------------------------------------------------------------------------


def test_the_copy_names_every_file_and_the_index_on_the_mirror(workspace: Path, upstream: Upstream) -> None:
    files = served_copy(workspace, "https://mirror.internal:8443/pypi/simple/")
    assert list(files) == ["pip.conf", "uv.toml", PYLOCK]
    assert is_valid_pylock_path(Path(PYLOCK))
    text = files[PYLOCK]
    document = _toml.loads(text)
    Pylock.from_dict(document).validate()
    assert upstream.base_url not in text and "pypi.org" not in text
    assert {p["name"]: p["index"] for p in document["packages"]} == {
        "om-dep": "https://mirror.internal:8443/pypi/simple/",
        "om-pure": "https://mirror.internal:8443/pypi/simple/",
        "om-sdistonly": "https://mirror.internal:8443/pypi/simple/",
    }
    assert urls(document) == {
        "om_dep-1.0-py3-none-any.whl": "https://mirror.internal:8443/pypi/files/om-dep/om_dep-1.0-py3-none-any.whl",
        "om_pure-2.0-py3-none-any.whl": "https://mirror.internal:8443/pypi/files/om-pure/om_pure-2.0-py3-none-any.whl",
        "om_sdistonly-1.0.tar.gz": "https://mirror.internal:8443/pypi/files/om-sdistonly/om_sdistonly-1.0.tar.gz",
        BUILT: f"https://mirror.internal:8443/pypi/files/om-sdistonly/{BUILT}",
    }
    # versions, hashes and sizes are the lock's
    locked = _toml.loads((workspace / "lockfiles" / PYLOCK).read_text())
    assert [(p["name"], p["version"]) for p in document["packages"]] == [
        (p["name"], p["version"]) for p in locked["packages"]
    ]
    digests = {a["name"]: (a["hashes"], a["size"]) for p in document["packages"] for a in [*p.get("wheels", [])]}
    assert digests == {a["name"]: (a["hashes"], a["size"]) for p in locked["packages"] for a in p.get("wheels", [])}
    assert text.startswith(f"# PEP 751 lock of target {HOST.name} (")
    assert f"#     uv pip install -r {PYLOCK}\n#     pip install -r {PYLOCK}      (pip >= 26.1)\n" in text


def test_the_lock_itself_names_the_copy(workspace: Path) -> None:
    text = (workspace / "lockfiles" / PYLOCK).read_text()
    assert f"# Clients install the copy `mirror config --url URL --target {HOST.name}` writes" in text
    built = [a for p in _toml.loads(text)["packages"] for a in p.get("wheels", []) if a["name"] == BUILT]
    assert built == [{"name": BUILT, "path": f"../wheelhouse/files/om-sdistonly/{BUILT}", "size": built[0]["size"],
                      "hashes": built[0]["hashes"]}]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://mirror:3141/simple/", "http://mirror:3141"),
        ("http://mirror:3141/simple", "http://mirror:3141"),
        ("https://ci:tok@mirror.internal/py/simple/", "https://ci:tok@mirror.internal/py"),
        ("http://devpi:3141/root/offline/+simple/", None),
        ("http://mirror:3141/", None),
        ("http://mirror:3141/simple/?x=1", None),
    ],
)
def test_files_root(url: str, root: str | None) -> None:
    assert ClientConfig.for_url(url).files_root == root


def test_local_tree_root_is_its_file_url() -> None:
    assert ClientConfig.for_local_tree("/srv/mirror#1").files_root == "file:///srv/mirror%231"
    assert ClientConfig.for_local_tree("/").files_root == "file://"


@pytest.mark.parametrize(
    ("clients", "names"),
    [
        (["pip"], ["pip.conf", BUILD_CONSTRAINTS, PYLOCK]),
        (["uv"], ["uv.toml", PYLOCK]),
        (["docker"], ["pip.conf", "uv.toml", "pydistutils.cfg", "Dockerfile.snippet", BUILD_CONSTRAINTS]),
        (["setuptools", "env"], ["pydistutils.cfg", "mirror.env"]),
    ],
)
def test_the_copy_goes_with_pip_and_uv(clients: list[str], names: list[str]) -> None:
    assert file_names(clients, build_lock=True, pylock=PYLOCK) == names


def test_a_url_with_credentials_makes_the_copy_0600(workspace: Path, tmp_path: Path) -> None:
    lock = load_runtime_lock(load_spec(workspace / "mirror.toml"), HOST.name)
    config = ClientConfig.for_url("https://ci:s3cret@mirror.internal/simple/", runtime_lock=lock)
    files = render_files(config, clients=["uv"])
    assert "ci:s3cret@" in files[PYLOCK]
    assert "ci:s3cret@" not in files[PYLOCK].split("lock-version")[0]  # the header names no URL
    write_files(tmp_path, files, config)
    assert stat.S_IMODE((tmp_path / PYLOCK).stat().st_mode) == 0o600


def test_a_package_with_no_file_in_the_wheelhouse_is_refused(workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    (root / "wheelhouse" / "files" / "om-dep" / "om_dep-1.0-py3-none-any.whl").unlink()
    with pytest.raises(ClientConfigError) as caught:
        load_runtime_lock(load_spec(root / "mirror.toml"), HOST.name)
    assert str(caught.value) == (
        f"{PYLOCK}: 1 package of target {HOST.name} has no file in the wheelhouse: om-dep 1.0; run mirror fetch"
    )
    # a file missing beside another of the same package is only left out
    (root / "wheelhouse" / "files" / "om-sdistonly" / "om_sdistonly-1.0.tar.gz").unlink()
    wheel = Path("om-dep") / "om_dep-1.0-py3-none-any.whl"
    shutil.copy2(workspace / "wheelhouse" / "files" / wheel, root / "wheelhouse" / "files" / wheel)
    copy = served_copy(root, "http://mirror:3141/simple/")[PYLOCK]
    assert "om_sdistonly-1.0.tar.gz" not in copy and f"http://mirror:3141/files/om-sdistonly/{BUILT}" in copy


def test_cli_writes_the_copy_with_target_and_says_how_without(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    spec = str(workspace / "mirror.toml")
    out = tmp_path / "out"
    result = cli("config", "--spec", spec, "--url", "http://mirror:3141/simple/", "-t", HOST.name, "--for", "pip,uv",
                 "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote {out / 'pip.conf'}",
        f"wrote {out / 'uv.toml'}",
        f"wrote {out / BUILD_CONSTRAINTS}",
        f"wrote {out / PYLOCK}",
        "index: http://mirror:3141/simple/",
        f"  try: PIP_CONFIG_FILE={out / 'pip.conf'} pip install PACKAGE",
        f"  try: UV_CONFIG_FILE={out / 'uv.toml'} uv pip install PACKAGE",
        f"  try: PIP_CONFIG_FILE={out / 'pip.conf'} pip install -r {out / PYLOCK}   (pip >= 26.1)",
        f"  try: UV_CONFIG_FILE={out / 'uv.toml'} uv pip install -r {out / PYLOCK}",
    ]
    assert (out / PYLOCK).read_text() == served_copy(workspace, "http://mirror:3141/simple/")[PYLOCK]

    result = cli("config", "--spec", spec, "--url", "http://mirror:3141/simple/", "-o", str(tmp_path / "plain"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-5:-3] == [
        "no --target: builds are not pinned to a build lock (add --target NAME)",
        f"no --target: no pylock.<target>.toml for pip and uv either (targets: {HOST.name})",
    ]
    assert not list((tmp_path / "plain").glob("pylock.*"))

    devpi = "http://devpi:3141/root/offline/+simple/"
    result = cli("config", "--spec", spec, "--url", devpi, "-t", HOST.name, "--for", "uv", "-o", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert (
        f"no {PYLOCK}: --url does not end in /simple/, so the mirror's file URLs are unknown"
        " (give the URL of the static tree's /simple/)"
    ) in result.output.splitlines()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["uv.toml"]


def test_summary_for_pip_alone(workspace: Path) -> None:
    lock = load_runtime_lock(load_spec(workspace / "mirror.toml"), HOST.name)
    config = ClientConfig.for_url("http://mirror:3141/simple/", runtime_lock=lock)
    files = render_files(config, clients=["pip"])
    assert summary(config, files, out=Path("cfg"), clients=["pip"])[-2:] == [
        "  try: PIP_CONFIG_FILE=cfg/pip.conf pip install PACKAGE",
        f"  try: PIP_CONFIG_FILE=cfg/pip.conf pip install -r cfg/{PYLOCK}   (pip >= 26.1)",
    ]


# --- installed for real -------------------------------------------------------------------------------------


def venv_without_pip(path: Path) -> Path:
    """A fresh venv of this interpreter with no pip of its own (pip >= 26.1 runs from outside: ``--python``)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def installs(out: Path, work: Path, env: dict[str, str]) -> list[list[str]]:
    """The commands that install ``out``'s pylock with uv and with pip into fresh venvs and import the result."""
    uv_bin = uv.find_uv_bin()
    uv_python, pip_python = work / "venv-uv" / "bin" / "python", work / "venv-pip" / "bin" / "python"
    return [
        [uv_bin, "venv", "--no-cache", "--python", sys.executable, str(work / "venv-uv")],
        [uv_bin, "pip", "install", "--no-cache", "--python", str(uv_python), "-r", str(out / PYLOCK)],
        [str(uv_python), "-c", IMPORTS],
        [sys.executable, "-m", "venv", "--without-pip", str(work / "venv-pip")],
        [sys.executable, "-m", "pip", "--python", str(pip_python), "install", "--no-cache-dir", "-r", str(out / PYLOCK)],
        [str(pip_python), "-c", IMPORTS],
    ]


def client_env(home: Path, out: Path) -> dict[str, str]:
    env = isolated_env(home, extra={"PIP_CONFIG_FILE": str(out / "pip.conf"), "UV_CONFIG_FILE": str(out / "uv.toml")})
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def installed(work: Path, venv: str) -> list[str]:
    return sorted(p.name for p in (work / venv).glob("lib/python3*/site-packages/om_*.dist-info"))


def test_pip_and_uv_install_the_copy_of_a_local_tree(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    """--find-links: every URL is the tree's file:// URL; no server, no network."""
    out = tmp_path / "cfg"
    tree = workspace / "wheelhouse"
    result = cli("config", "--spec", str(workspace / "mirror.toml"), "--find-links", str(tree), "-t", HOST.name,
                 "--for", "pip,uv", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    document = _toml.loads((out / PYLOCK).read_text())
    assert urls(document)[BUILT] == f"{tree.as_uri()}/files/om-sdistonly/{BUILT}"
    assert {p["index"] for p in document["packages"]} == {f"{tree.as_uri()}/simple/"}
    env = client_env(tmp_path / "home", out)
    for command in installs(out, tmp_path, env):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert installed(tmp_path, "venv-uv") == installed(tmp_path, "venv-pip") == INSTALLED


INSIDE = r"""
import json, subprocess, sys, tempfile
from pathlib import Path
from mirror.serve import serving
from mirror.verify import enter_namespace, probe_isolation

args = json.loads(sys.argv[1])
requests = []
results = []
with tempfile.TemporaryDirectory() as scratch:
    enter_namespace(Path(scratch))  # loopback up; this host's /etc/pip.conf and uv.toml hidden
    isolated = probe_isolation().ok
    with serving(Path(args["wheelhouse"]), port=args["port"], access_log=requests.append):
        for command in args["commands"]:
            done = subprocess.run(command, env=args["env"], capture_output=True, text=True, timeout=300)
            results.append([done.returncode, done.stdout[-3000:], done.stderr[-3000:], len(requests)])
print(json.dumps({"isolated": isolated, "results": results, "requests": [[r.target, r.status] for r in requests]}))
"""


@needs_namespace
def test_uv_and_pip_install_the_copy_from_the_served_mirror_with_no_route_out(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    port = 3141  # inside a new network namespace: nothing else listens there
    out = tmp_path / "cfg"
    result = cli("config", "--spec", str(workspace / "mirror.toml"), "--url", f"http://127.0.0.1:{port}/simple/",
                 "-t", HOST.name, "--for", "pip,uv", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    env = client_env(tmp_path / "home", out)
    commands = installs(out, tmp_path, env)
    payload = {"wheelhouse": str(workspace / "wheelhouse"), "port": port, "commands": commands, "env": env}
    done = subprocess.run(
        namespace_command([sys.executable, "-c", INSIDE, json.dumps(payload)]),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["isolated"] is True
    for command, (code, stdout, stderr, _) in zip(commands, report["results"], strict=True):
        assert code == 0, (command, stdout, stderr)
    assert "om-sdistonly 1.0" in report["results"][2][1] and "om-sdistonly 1.0" in report["results"][5][1]
    assert installed(tmp_path, "venv-uv") == installed(tmp_path, "venv-pip") == INSTALLED
    # each installer fetched every wheel from /files/ — the one built here too — and asked nothing else
    requests = report["requests"]
    by_uv = requests[report["results"][0][3] : report["results"][1][3]]
    by_pip = requests[report["results"][3][3] : report["results"][4][3]]
    wheels = [
        ["/files/om-dep/om_dep-1.0-py3-none-any.whl", 200],
        ["/files/om-pure/om_pure-2.0-py3-none-any.whl", 200],
        [f"/files/om-sdistonly/{BUILT}", 200],
    ]
    assert sorted(by_uv) == sorted(by_pip) == wheels


# --- older pips: the unhashed build constraints ---------------------------------------------------------------

OLD_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")  # their venvs bundle pip 23.0.1 to 24.2, older than 25.3


def interpreter(version: str) -> Interpreter | None:
    """The newest local CPython ``version`` (X.Y) with ``venv``, or None."""
    minor = tuple(int(p) for p in version.split("."))
    found = [i for i in discover() if i.implementation == "cpython" and i.version[:2] == minor]
    return found[-1] if found else None


@pytest.fixture(scope="module")
def old_workspace(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """om-sdistonly locked for one target per local Python of OLD_PYTHONS, kept an sdist: clients build it."""
    pythons = [v for v in OLD_PYTHONS if interpreter(v) is not None] or ["3.11"]
    targets = [(HOST.platform, version) for version in pythons]
    return synced_workspace(
        tmp_path_factory.mktemp("old-pip"), upstream, ["om-sdistonly"], targets=targets, build_wheels=False
    )


@pytest.fixture(scope="module")
def old_server(old_workspace: Path) -> Iterator[Server]:
    with serving(old_workspace / "wheelhouse") as running:
        yield running


@pytest.mark.parametrize("version", OLD_PYTHONS)
def test_older_pips_build_with_the_unhashed_build_constraints(
    version: str, old_workspace: Path, old_server: Server, tmp_path: Path
) -> None:
    found = interpreter(version)
    if found is None:
        pytest.skip(f"no CPython {version} on this host")
    venv = tmp_path / "venv"
    made = subprocess.run([str(found.path), "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"CPython {version} cannot make a venv with pip: {made.stderr.strip()[-200:]}")
    python = venv / "bin" / "python"
    pip_version = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, text=True).stdout
    assert tuple(int(p) for p in pip_version.split()[1].split(".")[:2]) < (25, 3), pip_version
    target = f"{HOST.name.rsplit('-', 1)[0]}-cp{version.replace('.', '')}"
    lockfiles = old_workspace / "lockfiles"
    header = (lockfiles / f"{target}.build.txt").read_text()
    assert f"#     PIP_CONSTRAINT={target}.build-unhashed.txt pip install ...\n" in header
    env = isolated_env(tmp_path / "home", extra={"PIP_INDEX_URL": old_server.index_url, "PIP_NO_CACHE_DIR": "1"})

    def pip_install(constraints: Path) -> subprocess.CompletedProcess[str]:
        command = [str(python), "-m", "pip", "install", "--require-hashes", "-r", str(lockfiles / f"{target}.txt")]
        return subprocess.run(
            command, env={**env, "PIP_CONSTRAINT": str(constraints)}, capture_output=True, text=True, timeout=300
        )

    # the recipe the header gave before: the hashed build lock puts the whole run into hash-checking mode, where
    # the isolated build's own install of its (unpinned) requirements fails
    hashed = pip_install(lockfiles / f"{target}.build.txt")
    assert hashed.returncode != 0
    assert "Installing build dependencies: finished with status 'error'" in hashed.stdout
    assert "all requirements must have their versions pinned with ==" in hashed.stdout + hashed.stderr
    # the pins reach the isolated build: one pinned to a version the mirror lacks makes the build fail on it
    unhashed = lockfiles / f"{target}.build-unhashed.txt"
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(unhashed.read_text().replace("om-dynamic==1.0", "om-dynamic==9.9"))
    refused = pip_install(wrong)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "pip subprocess to install backend dependencies did not run successfully" in output
    assert "The user requested (constraint) om-dynamic==9.9" in output
    # the recipe: builds om-sdistonly (backend, static and dynamic requirements from the mirror, pinned)
    done = pip_install(unhashed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully installed om-sdistonly-1.0" in done.stdout
    imported = subprocess.run([str(python), "-c", IMPORTS.replace("om_dep, om_pure, ", "")], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert imported.stdout == "om-sdistonly 1.0\n", imported.stderr
