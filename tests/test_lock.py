"""mirror lock against the local upstream fixture: per-target files, the build closure, outputs, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.pylock import Pylock, is_valid_pylock_path

from mirror.errors import MirrorError
from mirror.lock import LockOptions, choose_files
from mirror.lockfile import pylock_name, write_lock
from mirror.manifest import load_manifest
from mirror.simple import DistFile, classify
from mirror.spec import Policy
from mirror.targets import Target, host_target
from mirror.workspace import Workspace
from tests.fixtures.dists import NATIVE_TAGS
from tests.fixtures.env import Cli, MakeWorkspace, isolated_env, pip_command, synced_workspace
from tests.fixtures.server import Upstream

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HOST = host_target()
TARGETS = [("linux/amd64", "3.11"), ("linux/arm64", "3.12"), ("windows/amd64", "3.11"), ("linux/amd64/musl", "3.12")]
AMD64 = TARGETS[:1]


def pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "==" in line and not line.startswith(("#", " ")):
            name, version = line.split(" ")[0].split("==")
            out[name] = version
    return out


def hashes(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}=="))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("    --hash="):
            break
        out.append(line.split("sha256:")[1].rstrip(" \\"))
    return out


@pytest.fixture(scope="module")
def locked(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace locked for four targets; the tests below read its outputs."""
    packages = ["om-pure==2.0", "om-native", "om-sdistonly"]
    return synced_workspace(tmp_path_factory.mktemp("locked"), upstream, packages, targets=TARGETS, stage="lock")


def test_marker_gated_dependency_only_on_windows(locked: Path) -> None:
    lockfiles = locked / "lockfiles"
    assert "om-winhelper" in pins((lockfiles / "windows-amd64-cp311.txt").read_text())
    for name in ("linux-amd64-cp311", "linux-arm64-cp312", "linux-amd64-musl-cp312"):
        assert "om-winhelper" not in pins((lockfiles / f"{name}.txt").read_text()), name


def test_platform_wheels_chosen_per_target(locked: Path) -> None:
    manifest = json.loads((locked / "lockfiles" / "mirror.lock.json").read_text())

    def native_files(target: str) -> list[str]:
        (package,) = [p for p in manifest["targets"][target]["packages"]
                      if p["name"] == "om-native" and p["role"] == "runtime"]
        return package["files"]

    assert native_files("linux-amd64-cp311") == [
        "om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert native_files("windows-amd64-cp311") == ["om_native-1.0-cp311-cp311-win_amd64.whl"]
    # no cp312 aarch64 or musllinux wheel: the sdist, built on the target (or here)
    assert native_files("linux-arm64-cp312") == ["om_native-1.0.tar.gz"]
    assert native_files("linux-amd64-musl-cp312") == ["om_native-1.0.tar.gz"]


def test_each_target_hashes_only_its_own_files(locked: Path, upstream_catalog: object) -> None:
    lockfiles = locked / "lockfiles"
    manifest = json.loads((lockfiles / "mirror.lock.json").read_text())
    amd = hashes((lockfiles / "linux-amd64-cp311.txt").read_text(), "om-native")
    win = hashes((lockfiles / "windows-amd64-cp311.txt").read_text(), "om-native")
    assert len(amd) == len(win) == 1
    assert amd != win
    assert amd == [manifest["files"]["om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
                   ["sha256"]]


def test_two_level_build_closure_with_dynamic_requirement(locked: Path) -> None:
    manifest = json.loads((locked / "lockfiles" / "mirror.lock.json").read_text())
    builds = {b["for"]: b for b in manifest["targets"]["linux-amd64-cp311"]["builds"]}
    assert builds["om_sdistonly-1.0.tar.gz"]["static"] == ["om-backend", "om-buildhelper"]
    assert builds["om_sdistonly-1.0.tar.gz"]["dynamic"] == ["om-dynamic"]
    assert builds["om_sdistonly-1.0.tar.gz"]["pins"] == ["om-backend==1.0", "om-buildhelper==1.0", "om-dynamic==1.0"]
    # om-buildhelper is itself an sdist: its own build requirements are locked too
    assert builds["om_buildhelper-1.0.tar.gz"]["pins"] == ["om-backend==1.0"]
    build_txt = (locked / "lockfiles" / "linux-amd64-cp311.build.txt").read_text()
    assert pins(build_txt) == {"om-backend": "1.0", "om-buildhelper": "1.0", "om-dynamic": "1.0"}
    assert "#   om_sdistonly-1.0.tar.gz: om-backend==1.0, om-buildhelper==1.0, om-dynamic==1.0" in build_txt
    assert "#     PIP_CONSTRAINT=linux-amd64-cp311.build-unhashed.txt pip install ...\n" in build_txt
    unhashed = (locked / "lockfiles" / "linux-amd64-cp311.build-unhashed.txt").read_text()
    assert [line for line in unhashed.splitlines() if not line.startswith("#")] == [
        "om-backend==1.0", "om-buildhelper==1.0", "om-dynamic==1.0"]  # fmt: skip
    roles = {(p["name"], p["role"]) for p in manifest["targets"]["linux-amd64-cp311"]["packages"]}
    assert ("om-buildhelper", "build") in roles and ("om-buildhelper", "runtime") not in roles


def test_sdist_chosen_for_one_target_brings_its_build_closure_only_there(locked: Path) -> None:
    manifest = json.loads((locked / "lockfiles" / "mirror.lock.json").read_text())
    arm = {b["for"] for b in manifest["targets"]["linux-arm64-cp312"]["builds"]}
    amd = {b["for"] for b in manifest["targets"]["linux-amd64-cp311"]["builds"]}
    assert "om_native-1.0.tar.gz" in arm
    assert "om_native-1.0.tar.gz" not in amd


def test_requirements_txt_format(locked: Path) -> None:
    text = (locked / "lockfiles" / "linux-amd64-cp311.txt").read_text()
    assert text.startswith("#\n# This file is autogenerated by offline-mirror ")
    assert "#     pip install --require-hashes -r linux-amd64-cp311.txt\n" in text
    assert "om-dep==1.0 \\\n    --hash=sha256:" in text
    assert "    # via om-pure\n" in text
    assert "    # via mirror.toml packages[0]\n" in text


def test_pylock_is_valid_pep_751(locked: Path) -> None:
    for name in ("linux-amd64-cp311", "windows-amd64-cp311"):
        assert is_valid_pylock_path(locked / "lockfiles" / f"pylock.{name}.toml")
        text = (locked / "lockfiles" / f"pylock.{name}.toml").read_text()
        document = Pylock.from_dict(tomllib.loads(text))
        document.validate()
        by_name = {str(p.name): p for p in document.packages}
        assert set(by_name) == set(pins((locked / "lockfiles" / f"{name}.txt").read_text()))
        assert by_name["om-dep"].wheels and by_name["om-dep"].wheels[0].hashes["sha256"]


def test_lockfile_names(locked: Path) -> None:
    names = sorted(p.name for p in (locked / "lockfiles").iterdir())
    assert names == sorted(
        ["mirror.lock.json"]
        + [f"{t}{suffix}" for t in ("linux-amd64-cp311", "linux-arm64-cp312", "windows-amd64-cp311",
                                    "linux-amd64-musl-cp312") for suffix in (".txt", ".build.txt", ".build-unhashed.txt")]
        + [f"pylock.{t}.toml" for t in ("linux-amd64-cp311", "linux-arm64-cp312", "windows-amd64-cp311",
                                        "linux-amd64-musl-cp312")]
    )  # fmt: skip


def test_pylock_name_must_be_a_pep_751_name() -> None:
    assert pylock_name("linux-amd64-cp311") == "pylock.linux-amd64-cp311.toml"
    with pytest.raises(MirrorError) as caught:
        pylock_name("prod.v1")
    assert str(caught.value) == (
        "target 'prod.v1': pylock.prod.v1.toml is not a PEP 751 file name (pylock.<name>.toml, no '.' in the name);"
        " name the target without dots"
    )


def test_writing_the_lock_removes_the_pylock_an_older_version_named(locked: Path, tmp_path: Path) -> None:
    work = tmp_path / "ws"
    shutil.copytree(locked, work)
    lockfiles = work / "lockfiles"
    old = lockfiles / "linux-amd64-cp311.pylock.toml"
    old.write_text((lockfiles / "pylock.linux-amd64-cp311.toml").read_text())
    unrelated = lockfiles / "notes.pylock.toml"  # not a target's: left alone
    unrelated.write_text("")
    changed = write_lock(load_manifest(lockfiles), Workspace.open(work / "mirror.toml").layout)
    assert changed == [old]
    assert not old.exists() and unrelated.exists()
    assert write_lock(load_manifest(lockfiles), Workspace.open(work / "mirror.toml").layout) == []


def test_relock_changes_nothing(cli: Cli, locked: Path) -> None:
    before = {p.name: p.read_text() for p in (locked / "lockfiles").iterdir()}
    result = cli("lock", "--spec", str(locked / "mirror.toml"))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == f"lockfiles in {locked / 'lockfiles'} are up to date"
    assert {p.name: p.read_text() for p in (locked / "lockfiles").iterdir()} == before


def test_pip_installs_the_host_lock_with_require_hashes(
    make_workspace: MakeWorkspace, upstream: Upstream, tmp_path: Path
) -> None:
    spec = make_workspace(["om-pure==2.0", "om-native"]) / "mirror.toml"
    Workspace.open(spec).lock()
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [*pip_command("download", upstream.url, "--require-hashes", "--no-deps", "-d", str(tmp_path / "d"),
                      "-r", str(spec.parent / "lockfiles" / f"{HOST.name}.txt"))],
        env=isolated_env(home), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    native = HOST.best_wheel(f"om_native-1.0-{tags}.whl" for tags in NATIVE_TAGS)  # cp311, or abi3 elsewhere
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "om_dep-1.0-py3-none-any.whl",
        native,
        "om_pure-2.0-py3-none-any.whl",
    ]


def test_setup_requires_and_project_build_system_are_locked(make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-setupreq"], targets=AMD64, extra='projects = ["app"]\n')
    app = work / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=45", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "app"\nversion = "1.0"\ndependencies = ["om-dep"]\n'
    )
    Workspace.open(work / "mirror.toml").lock()
    manifest = json.loads((work / "lockfiles" / "mirror.lock.json").read_text())
    builds = {b["for"]: b for b in manifest["targets"]["linux-amd64-cp311"]["builds"]}
    assert [p.split("==")[0] for p in builds["om_setupreq-1.0.tar.gz"]["pins"]] == [
        "om-setuphelper", "packaging", "setuptools", "wheel"]
    assert [p.split("==")[0] for p in builds["project app"]["pins"]] == ["packaging", "setuptools", "wheel"]
    runtime = pins((work / "lockfiles" / "linux-amd64-cp311.txt").read_text())
    assert "app" not in runtime and runtime["om-dep"] == "1.0"


def test_sdist_policy_never_names_package_target_and_files(cli: Cli, make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-native"], targets=TARGETS, extra='[policy]\nsdists = "never"\n')
    result = cli("lock", "--spec", str(work / "mirror.toml"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: om-native 1.0 for linux-arm64-cp312: no wheel fits the target and policy.sdists is 'never';"
        " files: om_native-1.0-cp311-cp311-macosx_11_0_arm64.whl,"
        " om_native-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl,"
        " om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl,"
        " om_native-1.0-cp311-cp311-musllinux_1_2_x86_64.whl, om_native-1.0-cp311-cp311-win_amd64.whl,"
        " om_native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl,"
        " om_native-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl, om_native-1.0.tar.gz"
    )
    assert not (work / "lockfiles").exists()


def test_sdist_policy_always_keeps_sdists_next_to_wheels(make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-pure==1.0"], targets=AMD64, extra='[policy]\nsdists = "always"\n')
    Workspace.open(work / "mirror.toml").lock()
    manifest = json.loads((work / "lockfiles" / "mirror.lock.json").read_text())
    (package,) = [p for p in manifest["targets"]["linux-amd64-cp311"]["packages"] if p["name"] == "om-pure"]
    assert package["files"] == ["om_pure-1.0-py3-none-any.whl", "om_pure-1.0.tar.gz"]
    assert len(hashes((work / "lockfiles" / "linux-amd64-cp311.txt").read_text(), "om-pure")) == 2
    # the sdist is kept, so its build closure is locked too
    assert [b["for"] for b in manifest["targets"]["linux-amd64-cp311"]["builds"]] == ["om_pure-1.0.tar.gz"]


def test_unknown_package_is_one_line_and_leaves_previous_locks(cli: Cli, make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-dep"], targets=AMD64)
    spec = work / "mirror.toml"
    assert cli("lock", "--spec", str(spec)).exit_code == 0
    before = (work / "lockfiles" / "linux-amd64-cp311.txt").read_text()
    make_workspace(["om-dep", "om-nonexistent"], targets=AMD64, directory=work)
    result = cli("lock", "--spec", str(spec))
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: linux-amd64-cp311: uv could not resolve: ")
    assert "om-nonexistent" in last
    assert (work / "lockfiles" / "linux-amd64-cp311.txt").read_text() == before


def test_upgrade_package_moves_a_pin(make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-pure<2"], targets=AMD64)
    spec = work / "mirror.toml"
    Workspace.open(spec).lock()
    runtime = work / "lockfiles" / "linux-amd64-cp311.txt"
    assert pins(runtime.read_text())["om-pure"] == "1.0"
    make_workspace(["om-pure"], targets=AMD64, directory=work)
    Workspace.open(spec).lock()  # opened again: the spec changed
    assert pins(runtime.read_text())["om-pure"] == "1.0"  # the previous pin is kept
    upgraded = Workspace.open(spec).lock(LockOptions(upgrade_packages=("om-pure",)))
    assert pins(runtime.read_text())["om-pure"] == "2.0"
    assert runtime in upgraded.changed


def test_pip_tools_refuses_a_foreign_target(cli: Cli, make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-dep"], targets=TARGETS)
    result = cli("lock", "--spec", str(work / "mirror.toml"), "--resolver", "pip-tools")
    assert result.exit_code == 1
    assert "--resolver pip-tools resolves only for this host" in result.stderr.splitlines()[-1]
    assert "use the default uv resolver for other targets" in result.stderr


def test_pip_tools_resolves_the_host(make_workspace: MakeWorkspace) -> None:
    work = make_workspace(["om-pure==2.0"])
    Workspace.open(work / "mirror.toml").lock(LockOptions(resolver="pip-tools"))
    text = (work / "lockfiles" / f"{HOST.name}.txt").read_text()
    assert pins(text) == {"om-dep": "1.0", "om-pure": "2.0"}
    assert "resolved by pip-tools from" in text


def test_unreachable_upstream(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "mirror.toml"
    spec.write_text('[mirror]\nupstream = "http://127.0.0.1:9/simple"\n[[target]]\nplatform = "linux/amd64"\n'
                    'python = "3.11"\n[sources]\npackages = ["om-dep"]\n')
    result = cli("lock", "--spec", str(spec))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert "127.0.0.1:9" in result.stderr.splitlines()[-1]


def dist(filename: str, *, yanked: bool = False, requires_python: str | None = None) -> DistFile:
    parsed = classify(filename)
    assert parsed is not None
    name, version, kind = parsed
    return DistFile(filename=filename, url=f"http://x/{filename}", project=name, version=version, kind=kind,
                    sha256="0" * 64, yanked=yanked, requires_python=requires_python)


@pytest.mark.parametrize(
    ("files", "policy", "expected"),
    [
        (["a-1.0-py3-none-any.whl", "a-1.0.tar.gz"], "when-needed", ["a-1.0-py3-none-any.whl"]),
        (["a-1.0-py3-none-any.whl", "a-1.0.tar.gz"], "always", ["a-1.0-py3-none-any.whl", "a-1.0.tar.gz"]),
        (["a-1.0-cp311-cp311-win_amd64.whl", "a-1.0.tar.gz"], "when-needed", ["a-1.0.tar.gz"]),
        (["a-1.0.zip", "a-1.0.tar.gz"], "when-needed", ["a-1.0.tar.gz"]),
        (["a-1.0-py3-none-any.whl", "a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"], "never",
         ["a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]),
        (["a-1.0-py3-none-any.whl", "a-2.0-py3-none-any.whl"], "when-needed", ["a-1.0-py3-none-any.whl"]),
    ],
)
def test_choose_files(files: list[str], policy: str, expected: list[str]) -> None:
    target = Target.create("linux/amd64", "3.11")
    chosen = choose_files([dist(f) for f in files], name="a", version="1.0", target=target, policy=Policy(sdists=policy))  # type: ignore[arg-type]
    assert [f.filename for f in chosen] == expected


def test_choose_files_skips_yanked_and_wrong_requires_python() -> None:
    target = Target.create("linux/amd64", "3.11")
    files = [dist("a-1.0-py3-none-any.whl", yanked=True), dist("a-1.0-cp311-cp311-linux_x86_64.whl",
             requires_python=">=3.12"), dist("a-1.0.tar.gz")]
    chosen = choose_files(files, name="a", version="1.0", target=target, policy=Policy())
    assert [f.filename for f in chosen] == ["a-1.0.tar.gz"]
    only_yanked = [dist("a-1.0-py3-none-any.whl", yanked=True)]
    assert [f.filename for f in choose_files(only_yanked, name="a", version="1.0", target=target,
                                             policy=Policy())] == ["a-1.0-py3-none-any.whl"]
    with pytest.raises(MirrorError, match=r"^a 2.0 for linux-amd64-cp311: the upstream lists no files"):
        choose_files(only_yanked, name="a", version="2.0", target=target, policy=Policy())


def test_conflicting_build_versions_are_all_kept(make_upstream: object, make_workspace: MakeWorkspace) -> None:
    from tests.fixtures.dists import BackendSdist, Release

    releases = [
        Release(name="om-backend", version="1.0"),
        Release(name="om-backend", version="2.0"),
        Release(name="om-old", version="1.0", wheel_tags=(), sdist=BackendSdist(build_requires=("om-backend<2",))),
        Release(name="om-new", version="1.0", wheel_tags=(), sdist=BackendSdist(build_requires=("om-backend>=2",))),
    ]
    # om_backend.py ships in every om-backend wheel the fixture builds, so both versions are real backends
    up = make_upstream(releases)  # type: ignore[operator]
    work = make_workspace(["om-old", "om-new"], targets=AMD64, upstream=up)
    Workspace.open(work / "mirror.toml").lock()
    manifest = json.loads((work / "lockfiles" / "mirror.lock.json").read_text())
    builds = {b["for"]: b["pins"] for b in manifest["targets"]["linux-amd64-cp311"]["builds"]}
    assert builds == {"om_new-1.0.tar.gz": ["om-backend==2.0"], "om_old-1.0.tar.gz": ["om-backend==1.0"]}
    build_packages = [(p["name"], p["version"], p["needed_by"]) for p in manifest["targets"]["linux-amd64-cp311"]
                      ["packages"] if p["role"] == "build"]
    assert build_packages == [("om-backend", "1.0", ["om_old-1.0.tar.gz"]),
                              ("om-backend", "2.0", ["om_new-1.0.tar.gz"])]
    text = (work / "lockfiles" / "linux-amd64-cp311.build.txt").read_text()
    assert "# NOT CONSISTENT: builds need different versions of om-backend;" in text
    assert "\n# om-backend==1.0 \\\n#   --hash=sha256:" in text  # the older one is commented out
    assert "\nom-backend==2.0 \\\n    --hash=sha256:" in text
    assert pins(text) == {"om-backend": "2.0"}
    unhashed = (work / "lockfiles" / "linux-amd64-cp311.build-unhashed.txt").read_text()
    assert "# NOT CONSISTENT: builds need different versions of om-backend;" in unhashed
    assert "# the mirror holds all of them; only the newest of each is here.\n" in unhashed
    assert [line for line in unhashed.splitlines() if not line.startswith("#")] == ["om-backend==2.0"]
