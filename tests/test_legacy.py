"""Legacy hosts: CPython 3.6 (CentOS 7, Ubuntu 18.04) and 3.7 (Debian 10) targets, and the old pips they run.

One workspace, locked for ``manylinux_2_17_x86_64`` CPython 3.6 and ``linux/amd64`` CPython 3.7 from a fixture
upstream with a dotted name (``om.dotted``, zope.interface's kind), a setup.py-only sdist (``om-docopt``, docopt's
kind), a C extension sdist with no pyproject.toml (``om-cext``), and real pip, setuptools and wheel releases: pip
and setuptools from the CPythons' own ensurepip bundles, ``wheel`` 0.37.1 from tests/data/legacy. Wheels are built
here from the sdists with the local CPython 3.6 and 3.7 (pyenv), then:

* in a network namespace where ``mirror.test`` resolves to 127.0.0.1 (the mirror is reached by a name, so pip's
  trusted-host rule applies), the pip 18.1 of ``python3.6 -m venv`` with the pip.conf ``mirror config`` writes
  upgrades itself from the mirror and installs the set; the same pip trusted only as ``mirror.test:3141`` ignores
  the index, which is why the bare host is written too;
* ``mirror verify`` installs both locks with each venv's own pip (18.1 — upgrading itself to the locked pip first
  when the lock has one — and 22.0.4) and uv, imports every module and builds every sdist;
* (network) pip 9.0.3, CentOS 7's, installed into a 3.6 venv from PyPI, installs the set from the mirror.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mirror.interpreters import Interpreter, discover, interpreter_for
from mirror.targets import Target
from mirror.workspace import Workspace
from tests.fixtures.dists import CExtensionSdist, Release, SetuptoolsSdist, build_dists, ensurepip_wheels
from tests.fixtures.env import write_workspace
from tests.fixtures.offline import BIN, PORT, offline
from tests.fixtures.server import Upstream, serve_dir
from tests.test_verify import needs_namespace, step, verify_report

DATA = Path(__file__).parent / "data" / "legacy"
NAME = "mirror.test"  # resolves to 127.0.0.1 inside the namespace only
MIRROR = f"http://{NAME}:{PORT}/simple/"
CENTOS7 = Target.create("manylinux_2_17_x86_64", "3.6")
DEBIAN10 = Target.create("linux/amd64", "3.7")
PACKAGES = ["pip", "om.dotted", "om-docopt", "om-cext"]
RELEASES = (
    Release(name="om.dotted", version="1.0", wheel_tags=("py2.py3-none-any",)),
    Release(name="om-docopt", version="0.6.2", wheel_tags=(), sdist=SetuptoolsSdist()),
    Release(name="om-cext", version="1.0", wheel_tags=(), sdist=CExtensionSdist(threads=True, pyproject=False)),
)
IMPORTS = "import om_dotted, om_docopt, om_cext; assert om_cext.answer() == 42; print(om_dotted.NAME)"


def requires_python(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(name).decode()
    return next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Python:")), ""
    )


def newest_for(wheels: list[Path], python: str) -> str:
    """The version of the newest of ``wheels`` whose Requires-Python admits ``python``."""
    fitting = [w for w in wheels if SpecifierSet(requires_python(w)).contains(python)]
    return fitting[0].name.split("-")[1]


@pytest.mark.parametrize("minor", [6, 7])
def test_the_inspection_script_runs_on_old_cpythons(minor: int) -> None:
    """mirror.interpreters' script must stay valid Python 3.6: an installed pyenv 3.6/3.7 is found and described."""
    pythons = sorted(Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3"))
    if not pythons:
        pytest.skip(f"no pyenv CPython 3.{minor} here")
    found = {i.path: i for i in discover()}
    interpreter = found[pythons[-1].resolve()]
    assert interpreter.version[:2] == (3, minor)
    assert (interpreter.implementation, interpreter.platform) == ("cpython", "linux/amd64")


@pytest.fixture(scope="module")
def interpreters() -> dict[str, Interpreter]:
    found = discover()
    chosen = {t.name: i for t in (CENTOS7, DEBIAN10) if (i := interpreter_for(t, found)) is not None}
    if CENTOS7.name not in chosen:
        pytest.skip("no CPython 3.6 for linux/amd64 on this host (pyenv install 3.6)")
    return chosen


@pytest.fixture(scope="module")
def pip_wheels(interpreters: dict[str, Interpreter]) -> list[Path]:
    wheels = ensurepip_wheels("pip")
    if not any(SpecifierSet(requires_python(w)).contains("3.6.0") and w.name.split("-")[1] != "18.1" for w in wheels):
        pytest.skip("no pip newer than 18.1 for Python 3.6 in the local CPythons' ensurepip bundles")
    return wheels


@pytest.fixture(scope="module")
def legacy_upstream(pip_wheels: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    files = tmp_path_factory.mktemp("legacy-upstream") / "files"
    copy = [*pip_wheels, *ensurepip_wheels("setuptools"), DATA / "wheel-0.37.1-py2.py3-none-any.whl"]
    catalog = build_dists(files, RELEASES, repack=(), copy=copy)
    with serve_dir(catalog.files_dir) as server:
        yield server


def synced(upstream: Upstream, directory: Path, packages: list[str]) -> Path:
    root = write_workspace(
        directory, upstream, packages, targets=[(CENTOS7.platform_tags()[1], "3.6"), (DEBIAN10.platform, "3.7")]
    )
    spec = root / "mirror.toml"
    Workspace.open(spec).sync()
    return spec


@pytest.fixture(scope="module")
def legacy_spec(
    legacy_upstream: Upstream, interpreters: dict[str, Interpreter], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return synced(legacy_upstream, tmp_path_factory.mktemp("legacy-workspace"), PACKAGES)


def test_legacy_targets_lock_pips_that_run_on_them_and_build_with_their_cpython(
    legacy_spec: Path, pip_wheels: list[Path]
) -> None:
    manifest = Workspace.open(legacy_spec).manifest()
    entries = {entry.name: entry for entry in manifest.targets}
    assert set(entries) == {"linux-amd64-cp36", "linux-amd64-cp37"}
    centos = entries["linux-amd64-cp36"]
    pins = {p.name: p.version for p in centos.packages}
    assert pins["pip"] == newest_for(pip_wheels, "3.6.0")  # 19.2.3: pip 20 and later need newer Pythons
    assert pins["wheel"] == "0.37.1"  # the build closure of the setup.py sdists, for 3.6
    (setuptools,) = [f for f in centos.filenames() if f.startswith("setuptools-")]
    assert SpecifierSet(manifest.files[setuptools].requires_python or "").contains("3.6.0")
    assert {p.name for p in centos.runtime()} == {"pip", "om-dotted", "om-docopt", "om-cext"}
    # om-docopt's wheel was built here with CPython 3.6 from the wheelhouse alone, and offered to the target
    built = {f for f in centos.filenames() if manifest.files[f].built_from}
    assert "om_docopt-0.6.2-py3-none-any.whl" in built
    lock = (legacy_spec.parent / "lockfiles" / "linux-amd64-cp36.txt").read_text()
    assert "om-dotted==1.0 \\\n" in lock
    assert "linux/amd64 (glibc 2.17) CPython 3.6" in lock
    cp37 = {p.name: p.version for p in entries["linux-amd64-cp37"].packages}
    assert cp37["pip"] == newest_for(pip_wheels, "3.7.0")


def _venv_script(python: Path, venv: Path, config: Path) -> str:
    return f"""
        {python} -m venv {venv}
        export PIP_CONFIG_FILE={config}
        {venv}/bin/python -m pip --version
    """


@needs_namespace
def test_pip_18_upgrades_itself_from_the_mirror_then_installs_the_set(
    legacy_spec: Path, interpreters: dict[str, Interpreter], pip_wheels: list[Path], tmp_path: Path
) -> None:
    python = interpreters[CENTOS7.name].path
    config = tmp_path / "client-config"
    done = subprocess.run(
        [BIN / "mirror", "config", "--url", MIRROR, "--for", "pip", "-o", config, "--spec", legacy_spec],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"trusted-host = {NAME}:{PORT}\n    {NAME}\n" in (config / "pip.conf").read_text()
    port_only = tmp_path / "port-only.conf"
    port_only.write_text(f"[global]\nindex-url = {MIRROR}\ntrusted-host = {NAME}:{PORT}\n")
    venv, untrusted = tmp_path / "venv", tmp_path / "untrusted"
    expected = newest_for(pip_wheels, "3.6.0")
    done = offline(
        legacy_spec,
        tmp_path,
        _venv_script(python, untrusted, port_only)
        + f"""
        if {untrusted}/bin/python -m pip install om.dotted; then exit 3; fi
        """
        + _venv_script(python, venv, config / "pip.conf")
        + f"""
        {venv}/bin/python -m pip install --upgrade pip
        {venv}/bin/python -m pip --version
        {venv}/bin/python -m pip install om.dotted om-docopt om-cext
        {venv}/bin/python -c "{IMPORTS}"
        """,
        names=[NAME],
        no_proxy=f"127.0.0.1,localhost,{NAME}",
        NO_PROXY=f"127.0.0.1,localhost,{NAME}",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    out = done.stdout + done.stderr
    # pip 18.1 given host:port alone: the index is ignored (pypa/pip#6886)
    assert f"The repository located at {NAME} is not a trusted or secure host and is being ignored" in out
    versions = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("pip ")]
    assert versions == ["18.1", "18.1", expected]
    assert f"Successfully installed pip-{expected}" in done.stdout
    # pip 19.2's pkg_resources keys the wheel's om_dotted-1.0.dist-info as "om-dotted", not "om.dotted": it finds no
    # version to print for it (the import below shows it installed)
    assert "Successfully installed om-cext-1.0 om-docopt-0.6.2 om.dotted\n" in done.stdout
    assert done.stdout.rstrip().endswith("om.dotted")


@needs_namespace
@pytest.mark.parametrize(
    ("packages", "cp36_install", "cp36_builds"),
    [
        # the lock holds pip 19.2.3: pip 18.1 (< 20.3, no manylinux_2_N) upgrades itself first, as deploys do, and
        # then builds with PEP 517
        (
            PACKAGES,
            "installed linux-amd64-cp36.txt after the venv's pip 18.1 upgraded itself to the locked pip 19.2.3",
            "2 sdists built",
        ),
        # pip 18.1 throughout: no PEP 517 builds, no --use-pep517, `pip wheel` needs `wheel` in the venv; it proves
        # the sdists by installing them, as it does on the target
        (
            PACKAGES[1:],
            "installed linux-amd64-cp36.txt with the venv's bundled pip",
            "2 sdists built and installed with pip 18.1",
        ),
    ],
    ids=["pip-locked", "bundled-pip-only"],
)
def test_verify_installs_the_legacy_locks_with_each_venvs_own_pip(
    legacy_upstream: Upstream,
    interpreters: dict[str, Interpreter],
    tmp_path: Path,
    packages: list[str],
    cp36_install: str,
    cp36_builds: str,
) -> None:
    ok, data = verify_report(synced(legacy_upstream, tmp_path / "workspace", packages))
    assert ok, json.dumps(data, indent=1)[-5000:]
    assert step(data, "pip install", CENTOS7.name)["summary"] == cp36_install
    if DEBIAN10.name in interpreters:  # pip 22.0.4 reads every manylinux tag: no upgrade first
        summary = step(data, "pip install", DEBIAN10.name)["summary"]
        assert summary == "installed linux-amd64-cp37.txt with the venv's bundled pip"
    for target in [t for t in (CENTOS7, DEBIAN10) if t.name in interpreters]:
        for name in ("pip install", "uv pip install", "imports", "sdist builds"):
            assert step(data, name, target.name)["ok"] is True, name
    imports = step(data, "imports", CENTOS7.name)["summary"]
    # om_dotted, om_docopt, om_cext (and pip): read without importlib.metadata, which 3.6 does not have
    assert imports == f"{len(packages)} modules of {len(packages)} distributions imported"
    assert step(data, "sdist builds", CENTOS7.name)["summary"] == cp36_builds
    if DEBIAN10.name in interpreters:  # pip 22.0.4 of 3.7: --use-pep517
        assert step(data, "sdist builds", DEBIAN10.name)["summary"] == "2 sdists built"


@pytest.mark.network
@needs_namespace
def test_pip_9_0_3_of_centos_7_installs_from_the_mirror(
    legacy_spec: Path, interpreters: dict[str, Interpreter], tmp_path: Path
) -> None:
    """pip 9.0.3 (CentOS 7's python3-pip) comes from PyPI through this machine's pip configuration; then, with no
    route out, it installs the set from the mirror reached by name."""
    python = interpreters[CENTOS7.name].path
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", venv], check=True)
    got = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "pip==9.0.3"],
        capture_output=True,
        text=True,
        check=False,
    )
    if got.returncode != 0:
        pytest.skip(f"pip 9.0.3 could not be installed from this machine's index: {got.stderr.strip()[-300:]}")
    config = tmp_path / "client-config"
    subprocess.run(
        [BIN / "mirror", "config", "--url", MIRROR, "--for", "pip", "-o", config, "--spec", legacy_spec],
        capture_output=True,
        check=True,
    )
    done = offline(
        legacy_spec,
        tmp_path,
        f"""
        export PIP_CONFIG_FILE={config / "pip.conf"}
        {venv}/bin/python -m pip --version
        {venv}/bin/python -m pip install om.dotted om-docopt om-cext
        {venv}/bin/python -c "{IMPORTS}"
        """,
        names=[NAME],
        no_proxy=f"127.0.0.1,localhost,{NAME}",
        NO_PROXY=f"127.0.0.1,localhost,{NAME}",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    assert done.stdout.startswith("pip 9.0.3 ")
    assert "Successfully installed om-cext-1.0 om-docopt-0.6.2 om.dotted\n" in done.stdout  # (see pip 18.1's test)
    assert done.stdout.rstrip().endswith("om.dotted")


@pytest.mark.network
def test_real_pypi_lock_for_centos_7_and_debian_10(tmp_path: Path) -> None:
    """uv resolves for CPython 3.6 and 3.7 (``--python-version 3.6``): the last pip, setuptools and wheel for each,
    and zope.interface's cp36m wheel (the ``m`` ABI)."""
    (tmp_path / "mirror.toml").write_text(
        '[[target]]\nplatform = "manylinux_2_17_x86_64"\npython = "3.6"\n\n'
        '[[target]]\nplatform = "linux/amd64"\npython = "3.7"\n\n'
        '[sources]\npackages = ["pip", "zope.interface", "docopt==0.6.2"]\n'
    )
    manifest = Workspace.open(tmp_path / "mirror.toml").lock().manifest
    entries = {entry.name: entry for entry in manifest.targets}

    def pinned(target: str, name: str, role: str = "runtime") -> str:
        (package,) = [p for p in entries[target].packages if p.name == name and p.role == role]
        return package.version

    assert pinned("linux-amd64-cp36", "pip") == "21.3.1"  # pip 22.0 dropped 3.6
    assert pinned("linux-amd64-cp37", "pip") == "24.0"  # pip 24.1 dropped 3.7
    assert pinned("linux-amd64-cp36", "setuptools") == "59.6.0"  # zope.interface needs it at run time
    assert pinned("linux-amd64-cp36", "setuptools", "build") == "59.6.0"  # docopt's build closure, for 3.6
    assert pinned("linux-amd64-cp36", "wheel", "build") == "0.37.1"
    zope = {e: next(p for p in entries[e].packages if p.name == "zope-interface") for e in entries}
    assert zope["linux-amd64-cp36"].version == "5.5.2"  # 6.0 dropped 3.6
    assert zope["linux-amd64-cp36"].files == (
        "zope.interface-5.5.2-cp36-cp36m-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_12_x86_64"
        ".manylinux2010_x86_64.whl",
    )
    # 6.4.post2, the last for 3.7, has a cp37m wheel for macOS only: the Linux target builds it from the sdist
    assert zope["linux-amd64-cp37"].version == "6.4.post2"
    assert zope["linux-amd64-cp37"].files == ("zope.interface-6.4.post2.tar.gz",)
