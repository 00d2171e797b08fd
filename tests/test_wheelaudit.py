"""Every wheel offered to a target loads there: wheels built here go through auditwheel and are offered only to
targets their true tag fits; nothing is built where an upstream wheel fits; policy.no-binary / only-binary.

The C-extension fixtures are compiled here for real (gcc, this host's glibc). ``om-cext`` starts a thread, so on a
glibc >= 2.34 host its extension needs ``pthread_create@GLIBC_2.34``; ``om-cyaml`` links libyaml, which no
manylinux policy allows, so auditwheel copies it into the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from mirror.builtwheels import to_build, unfit_reason
from mirror.errors import InvalidSpec
from mirror.lock import LockError
from mirror.resolve import ResolutionError
from mirror.spec import Policy, parse_spec
from mirror.targets import Target, host_target
from mirror.wheelaudit import Audit, audit_wheel, needs_audit
from mirror.workspace import Workspace
from tests.fixtures.dists import DEFAULT_REPACK, CExtensionSdist, Release, build_dists
from tests.fixtures.env import MakeWorkspace
from tests.fixtures.server import Upstream, serve_dir

HOST = host_target()
HOST_GLIBC = (
    tuple(int(p) for p in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split(".")[:2])  # type: ignore[union-attr]
    if sys.platform == "linux" and "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or "")
    else None
)
needs_glibc_host = pytest.mark.skipif(
    HOST_GLIBC is None or HOST.platform not in ("linux/amd64", "linux/arm64"), reason="builds on a glibc Linux host"
)
CEXT = Release(name="om-cext", version="1.0", wheel_tags=(), sdist=CExtensionSdist(threads=True))
CYAML = Release(name="om-cyaml", version="1.0", wheel_tags=(), sdist=CExtensionSdist(libraries=("yaml",)))
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def c_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    catalog = build_dists(tmp_path_factory.mktemp("c-upstream"), [CEXT, CYAML], DEFAULT_REPACK)
    with serve_dir(catalog.files_dir) as server:
        yield server


def auditwheel_show(wheel: Path) -> Mapping[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", "--json", str(wheel)], capture_output=True, text=True, check=True
    )
    report: Mapping[str, object] = json.loads(done.stdout)
    return report


def glibc_of(tag: str) -> tuple[int, int]:
    parts = tag.split("_")
    return int(parts[1]), int(parts[2])


@pytest.fixture(scope="module")
def built(c_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two targets of this host's platform and Python: glibc 2.28 ("old") and this host's glibc ("here")."""
    assert HOST_GLIBC is not None
    root = tmp_path_factory.mktemp("c-workspace")
    (root / "mirror.toml").write_text(
        f'[mirror]\nupstream = "{c_upstream.url}"\n'
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\nglibc = "2.28"\nname = "old"\n'
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n'
        f'glibc = "{HOST_GLIBC[0]}.{HOST_GLIBC[1]}"\nname = "here"\n'
        '[sources]\npackages = ["om-cext", "om-cyaml"]\n'
    )
    result = Workspace.open(root / "mirror.toml").sync()
    (root / "fetch.json").write_text(
        json.dumps(
            {
                "lines": result.fetch.render(),
                "warnings": result.fetch.warnings(),
                "builds": [[o.target, o.sdist, o.status] for o in result.fetch.builds or ()],
            }
        )
    )
    return root


def offered(root: Path, target: str, project: str) -> list[str]:
    manifest = Workspace.open(root / "mirror.toml").manifest()
    (package,) = [p for p in manifest.target(target).runtime() if p.name == project]
    return list(package.files)


@needs_glibc_host
def test_a_wheel_built_here_is_offered_only_where_its_true_tag_fits(built: Path) -> None:
    assert HOST_GLIBC is not None
    (wheel,) = (built / "wheelhouse" / "files" / "om-cext").glob("*.whl")
    report = auditwheel_show(wheel)
    needed = glibc_of(str(report["sym_tag"]))
    # the wheel's name says what auditwheel found: the manylinux tag, never linux_<arch>
    assert wheel.name == f"om_cext-1.0-{CP}-{CP}-{report['sym_tag']}.whl"
    assert not needs_audit(wheel.name)
    assert offered(built, "here", "om-cext") == ["om_cext-1.0.tar.gz", wheel.name]
    # the one index every target shares lists it by its true tag: a pip on an older glibc passes it over
    page = json.loads((built / "wheelhouse" / "simple" / "om-cext" / "index.json").read_text())
    assert sorted(f["filename"] for f in page["files"]) == sorted(["om_cext-1.0.tar.gz", wheel.name])
    lock_here = (built / "lockfiles" / "here.txt").read_text()
    lock_old = (built / "lockfiles" / "old.txt").read_text()
    sha = json.loads((built / "wheelhouse" / "built-wheels.json").read_text())["wheels"][0]["sha256"]
    assert f"--hash=sha256:{sha}" in lock_here
    if needed > (2, 28):  # this host's glibc is newer than 2.28 and the thread made the extension need it
        assert offered(built, "old", "om-cext") == ["om_cext-1.0.tar.gz"]
        assert f"--hash=sha256:{sha}" not in lock_old
        compile_report = json.loads((built / "wheelhouse" / "compile-report.json").read_text())
        (entry,) = [e for e in compile_report["old"] if e["name"] == "om-cext"]
        assert entry["built_here"] == (f"{wheel.name} needs glibc {needed[0]}.{needed[1]}; old runs glibc 2.28")
        fetched = json.loads((built / "fetch.json").read_text())
        assert ["old", "om_cext-1.0.tar.gz", "unfit"] in fetched["builds"]
        assert ["here", "om_cext-1.0.tar.gz", "reused"] in fetched["builds"]
        assert any(w.startswith(f"warning: {wheel.name} needs glibc") for w in fetched["warnings"])
    else:
        assert offered(built, "old", "om-cext") == ["om_cext-1.0.tar.gz", wheel.name]


@needs_glibc_host
def test_every_wheel_offered_to_a_target_needs_no_newer_glibc_than_it_has(built: Path) -> None:
    manifest = Workspace.open(built / "mirror.toml").manifest()
    files = built / "wheelhouse" / "files"
    for entry in manifest.targets:
        assert entry.target.glibc is not None
        for name in entry.filenames():
            file = manifest.files[name]
            if file.built_from is None or file.kind != "wheel":
                continue
            needed = glibc_of(str(auditwheel_show(files / file.project / name)["sym_tag"]))
            assert needed <= entry.target.glibc, (entry.name, name)


@needs_glibc_host
def test_a_linked_library_is_copied_into_the_wheel(built: Path, tmp_path: Path) -> None:
    (wheel,) = (built / "wheelhouse" / "files" / "om-cyaml").glob("*.whl")
    platforms = wheel.name.removesuffix(".whl").split("-")[-1].split(".")
    assert platforms and all(p.startswith("manylinux") for p in platforms), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        copied = [n for n in archive.namelist() if n.startswith("om_cyaml.libs/libyaml")]
        archive.extractall(tmp_path)
    assert copied, "auditwheel repair copies libyaml into the wheel"
    report = auditwheel_show(wheel)
    assert report["external_libs"] == {}  # nothing left outside the wheel
    done = subprocess.run(
        [sys.executable, "-c", "import om_cyaml; print(om_cyaml.answer())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
    # libyaml needs far less than 2.28: the repaired wheel is offered to both targets
    assert len(offered(built, "old", "om-cyaml")) == 2


@needs_glibc_host
def test_zig_builds_a_wheel_that_loads_on_an_older_glibc_target(c_upstream: Upstream, tmp_path: Path) -> None:
    pytest.importorskip("ziglang", reason="the test extra installs ziglang")
    (tmp_path / "mirror.toml").write_text(
        f'[mirror]\nupstream = "{c_upstream.url}"\n'
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\nglibc = "2.17"\nname = "centos7"\n'
        '[sources]\npackages = ["om-cext"]\n[policy]\ncompiler = "zig"\n'
    )
    result = Workspace.open(tmp_path / "mirror.toml").sync()
    assert [(o.sdist, o.status) for o in result.fetch.builds or ()] == [("om_cext-1.0.tar.gz", "built")]
    (wheel,) = (tmp_path / "wheelhouse" / "files" / "om-cext").glob("*.whl")
    needed = glibc_of(str(auditwheel_show(wheel)["sym_tag"]))
    assert needed <= (2, 17)  # linked against glibc 2.17's symbols, not this host's
    assert offered(tmp_path, "centos7", "om-cext") == ["om_cext-1.0.tar.gz", wheel.name]
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "unpacked")
    done = subprocess.run(
        [sys.executable, "-c", "import om_cext; print(om_cext.answer())"],
        cwd=tmp_path / "unpacked",
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr


@needs_glibc_host
def test_fetch_says_how_many_builds_were_made_here_and_left_to_the_targets(built: Path) -> None:
    lines = json.loads((built / "fetch.json").read_text())["lines"]
    (line,) = [line for line in lines if line.startswith("wheels from sdists")]
    statuses = [s for _, _, s in json.loads((built / "fetch.json").read_text())["builds"]]
    left = statuses.count("unfit")
    expected = (
        f"wheels from sdists (sdist x target): {statuses.count('built')} built here,"
        f" {statuses.count('reused')} already built; {left} left to the targets"
    )
    assert line == expected + (f" ({left} built here but would not load there)" if left else "")


def test_no_wheel_is_built_where_an_upstream_wheel_fits(make_workspace: MakeWorkspace) -> None:
    # policy.sdists = "always" keeps om-native's sdist next to its manylinux wheel, and builds nothing from it
    workspace = make_workspace(
        ["om-native", "om-sdistonly"], targets=[("linux/amd64", "3.11")], extra='[policy]\nsdists = "always"\n'
    )
    result = Workspace.open(workspace / "mirror.toml").sync()
    built = {o.sdist for o in result.fetch.builds or ()}
    assert "om_native-1.0.tar.gz" not in built
    (native,) = [p for p in result.lock.manifest.targets[0].runtime() if p.name == "om-native"]
    assert native.files == (
        "om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "om_native-1.0.tar.gz",
    )
    assert not list((workspace / "wheelhouse" / "files" / "om-native").glob("*linux_x86_64.whl"))


# -- pure pieces -----------------------------------------------------------------------------------------------


def target(glibc: str = "2.28", platform: str = "linux/amd64") -> Target:
    return parse_spec(
        f'[[target]]\nplatform = "{platform}"\npython = "3.11"\nglibc = "{glibc}"\n', Path("/w/mirror.toml")
    ).targets[0]


@pytest.mark.parametrize(
    ("wheel", "glibc", "reason"),
    [
        ("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2.28", None),
        ("a-1-cp311-cp311-manylinux_2_34_x86_64.whl", "2.28", "needs glibc 2.34; linux-amd64-cp311 runs glibc 2.28"),
        ("a-1-cp311-cp311-manylinux_2_34_x86_64.whl", "2.36", None),
        ("a-1-cp311-cp311-linux_x86_64.whl", "2.36", "has no manylinux tag: what it needs from the target's glibc"),
        ("a-1-py3-none-any.whl", "2.17", None),
        ("a-1-cp311-cp311-manylinux_2_17_aarch64.whl", "2.28", "does not fit linux/amd64 (glibc 2.28) CPython 3.11"),
    ],
)
def test_unfit_reason(wheel: str, glibc: str, reason: str | None) -> None:
    found = unfit_reason(wheel, target(glibc))
    assert (found is None) == (reason is None)
    if reason is not None:
        assert found is not None and found.startswith(wheel) and reason in found


class FakeAuditwheel:
    """Answers ``show --json`` with ``report`` (or fails) and makes ``repair`` write ``repaired`` into ``-w``."""

    def __init__(self, report: object, *, repaired: str | None = None, show_fails: bool = False) -> None:
        self.report, self.repaired, self.show_fails = report, repaired, show_fails
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        if args[3] == "show":
            code = 1 if self.show_fails else 0
            return subprocess.CompletedProcess(list(args), code, json.dumps(self.report), "cannot read the wheel")
        if self.repaired is None:
            return subprocess.CompletedProcess(list(args), 1, "", "patchelf: not found")
        (Path(args[args.index("-w") + 1]) / self.repaired).write_bytes(b"repaired")
        return subprocess.CompletedProcess(list(args), 0, "", "")


REPORT = {"sym_tag": "manylinux_2_17_x86_64", "unsupported_isa": False, "external_libs": {"libyaml-0.so.2": "/x"}}


@pytest.mark.parametrize(
    ("fake", "problem"),
    [
        (FakeAuditwheel(REPORT, show_fails=True), "auditwheel show failed: cannot read the wheel"),
        (
            FakeAuditwheel({**REPORT, "unsupported_isa": True}),
            "it uses instructions beyond its architecture's baseline",
        ),
        (
            FakeAuditwheel({**REPORT, "sym_tag": "linux_x86_64", "versioned_symbols": {"libc.so.6": ["GLIBC_2.99"]}}),
            "its symbol versions (GLIBC_2.99) fit no manylinux policy",
        ),
        (FakeAuditwheel(REPORT), "auditwheel repair --plat manylinux_2_17_x86_64 failed: patchelf: not found"),
        (FakeAuditwheel("not json"), "auditwheel show said something unexpected"),
    ],
)
def test_a_wheel_auditwheel_cannot_retag_keeps_its_tag_and_says_why(
    fake: FakeAuditwheel, problem: str, tmp_path: Path
) -> None:
    wheel = tmp_path / "a-1.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"wheel")
    audit = audit_wheel(wheel, runner=fake)
    assert audit.wheel == wheel and wheel.read_bytes() == b"wheel" and audit.tag is None
    assert audit.problem is not None and audit.problem.startswith(problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == [wheel.name]  # no staging left behind


def test_a_repaired_wheel_replaces_the_built_one(tmp_path: Path) -> None:
    wheel = tmp_path / "a-1.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"wheel")
    fake = FakeAuditwheel(REPORT, repaired="a-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    audit = audit_wheel(wheel, runner=fake, python="py")
    assert audit == Audit(
        wheel=tmp_path / fake.repaired,  # type: ignore[operator]
        tag="manylinux_2_17_x86_64",
        libraries=("libyaml-0.so.2",),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [fake.repaired]
    assert [c[:4] for c in fake.calls] == [["py", "-m", "auditwheel", "show"], ["py", "-m", "auditwheel", "repair"]]
    assert fake.calls[1][4:6] == ["--plat", "manylinux_2_17_x86_64"]


def test_pure_and_non_linux_wheels_are_not_audited(tmp_path: Path) -> None:
    fake = FakeAuditwheel(REPORT)
    for name in ("a-1-py3-none-any.whl", "a-1-cp311-cp311-macosx_11_0_arm64.whl", "a-1-cp311-cp311-win_amd64.whl"):
        assert audit_wheel(tmp_path / name, runner=fake) == Audit(wheel=tmp_path / name)
    assert fake.calls == []


# -- policy.no-binary / only-binary ----------------------------------------------------------------------------


def policy(text: str) -> Policy:
    return parse_spec(
        f'[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n[policy]\n{text}', Path("/w/m.toml")
    ).policy


@pytest.mark.parametrize(
    ("text", "source", "binary"),
    [
        ('no-binary = ["Om_Native"]', {"om-native"}, set()),
        ('only-binary = ["om-native"]', set(), {"om-native"}),
        ('no-binary = [":all:"]\nonly-binary = ["om-native"]', {"om-pure", "om-dep"}, {"om-native"}),
        ('only-binary = [":all:"]\nno-binary = ["om-native"]', {"om-native"}, {"om-pure", "om-dep"}),
        ("", set(), set()),
    ],
)
def test_no_binary_and_only_binary_read_as_pip_reads_them(text: str, source: set[str], binary: set[str]) -> None:
    read = policy(text)
    names = ("om-native", "om-pure", "om-dep")
    assert {n for n in names if read.source_only(n)} == source
    assert {n for n in names if read.binary_only(n)} == binary


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('no-binary = ["a"]\nonly-binary = ["A"]', "policy.only-binary: 'a' is also in policy.no-binary"),
        ('no-binary = ["a b"]', "policy.no-binary[0]: 'a b' is not a project name or ':all:'"),
        ('only-binary = "x"', "policy.only-binary: expected an array of strings"),
        ('compiler = "clang"', "policy.compiler: 'clang' is not a compiler; expected one of: host, zig"),
    ],
)
def test_policy_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("[", r"\[").replace("]", r"\]")):
        policy(text)


def test_no_binary_takes_the_sdist_and_its_build_closure_and_builds_nothing_here(
    make_workspace: MakeWorkspace,
) -> None:
    workspace = make_workspace(
        ["om-native", "om-pure==1.0"], targets=[("linux/amd64", "3.11")], extra='[policy]\nno-binary = ["om-native"]\n'
    )
    result = Workspace.open(workspace / "mirror.toml").sync()
    entry = result.lock.manifest.targets[0]
    runtime = {p.name: p.files for p in entry.runtime()}
    assert runtime["om-native"] == ("om_native-1.0.tar.gz",)
    assert runtime["om-pure"] == ("om_pure-1.0-py3-none-any.whl",)  # everything else as before
    assert [b.requirer for b in entry.builds] == ["om_native-1.0.tar.gz"]
    assert [p.pin for p in entry.build()] == ["om-backend==1.0"]
    outcomes = [(o.sdist, o.status) for o in result.fetch.builds or ()]
    assert outcomes == [("om_native-1.0.tar.gz", "policy")]
    assert not list((workspace / "wheelhouse" / "files" / "om-native").glob("*.whl"))
    (package,) = [e for e in result.fetch.compile_report["linux-amd64-cp311"] if e["name"] == "om-native"]  # type: ignore[index]
    assert package["sdist"] == "om_native-1.0.tar.gz"


def test_only_binary_never_takes_an_sdist(make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(
        ["om-native"],
        targets=[("linux/amd64", "3.11")],
        extra='[policy]\nsdists = "always"\nonly-binary = ["om-native"]\n',
    )
    manifest = Workspace.open(workspace / "mirror.toml").lock().manifest
    (native,) = manifest.targets[0].runtime()
    assert native.files == ("om_native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",)


def test_only_binary_for_a_package_without_a_wheel_is_an_error(make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(
        ["om-sdistonly"], targets=[("linux/amd64", "3.11")], extra='[policy]\nonly-binary = [":all:"]\n'
    )
    with pytest.raises((ResolutionError, LockError)) as info:
        Workspace.open(workspace / "mirror.toml").lock()
    assert "om-sdistonly" in str(info.value)
    assert not (workspace / "lockfiles" / "mirror.lock.json").exists()


def test_to_build_skips_packages_with_an_upstream_wheel(make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(
        ["om-native", "om-sdistonly"], targets=[("linux/amd64", "3.11")], extra='[policy]\nsdists = "always"\n'
    )
    manifest = Workspace.open(workspace / "mirror.toml").lock().manifest
    names = [f.filename for f in to_build(manifest.targets[0], manifest)]
    assert "om_native-1.0.tar.gz" not in names and "om_sdistonly-1.0.tar.gz" in names


def test_a_record_of_unaudited_wheels_is_not_used(tmp_path: Path) -> None:
    from mirror.builtwheels import Registry

    path = tmp_path / "built-wheels.json"
    old = {
        "target": "t",
        "sdist": "a-1.0.tar.gz",
        "sdist_sha256": "0" * 64,
        "wheel": "a-1.0-cp311-cp311-linux_x86_64.whl",
    }
    path.write_text(json.dumps({"version": 1, "wheels": [{**old, "sha256": "1" * 64, "size": 1}]}))
    assert Registry(path).wheels == []  # version 1 recorded linux_<arch> wheels: they are built (and audited) again


def test_the_zig_toolchain_targets_the_glibc_floor() -> None:
    pytest.importorskip("ziglang", reason="the test extra installs ziglang")
    from mirror.wheelbuild import zig_environment

    env = zig_environment(target("2.28", "linux/arm64"), python="/py")
    assert env["CC"] == "/py -m ziglang cc -target aarch64-linux-gnu.2.28"
    assert env["LDSHARED"] == "/py -m ziglang cc -target aarch64-linux-gnu.2.28 -shared"
    assert env["CXX"] == "/py -m ziglang c++ -target aarch64-linux-gnu.2.28"
    assert zig_environment(Target.from_dict({"platform": "windows/amd64", "python": "3.11"})) == {}
