"""mirror.interpreters: finding this host's Pythons, and choosing one to build wheels for a target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from mirror import interpreters
from mirror.interpreters import Interpreter, discover, interpreter_for, parse_inspection, platform_key
from mirror.targets import Target, host_target


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    interpreters.clear_cache()
    yield
    interpreters.clear_cache()


# --- the real host -------------------------------------------------------------------------------------------


PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"


def _pyenv_pythons() -> dict[str, Path]:
    return {
        d.name: d / "bin" / "python3" for d in sorted(PYENV_VERSIONS.glob("3.*")) if (d / "bin" / "python3").is_file()
    }


def test_discovers_every_pyenv_python_for_real() -> None:
    pyenv = _pyenv_pythons()
    if not {"3.11", "3.12"} <= {".".join(v.split(".")[:2]) for v in pyenv}:
        pytest.skip("needs CPython 3.11 and 3.12 under pyenv")
    found = discover()
    by_path = {i.path: i for i in found}
    host = host_target()
    for version, python in pyenv.items():
        interpreter = by_path[Path(os.path.realpath(python))]
        assert ".".join(map(str, interpreter.version)) == version  # the inspection script runs on 3.6+ too
        assert interpreter.implementation == "cpython"
        assert interpreter.platform == host.platform
        assert interpreter.libc == host.info.libc
    assert not [i for i in found if "shims" in i.path.parts]
    assert len({i.path for i in found}) == len(found)
    for minor in (11, 12):
        chosen = interpreter_for(Target.create(host.platform, f"3.{minor}"), found)
        assert chosen is not None and chosen.version[:2] == (3, minor)
        assert chosen.version == max(i.version for i in found if i.version[:2] == (3, minor))


def test_the_running_interpreter_describes_itself() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", interpreters.INSPECT_SCRIPT], capture_output=True, text=True, check=True
    )
    interpreter = parse_inspection(sys.executable, done.stdout)
    assert interpreter.version == tuple(sys.version_info[:3])
    assert interpreter.path == Path(os.path.realpath(sys.executable))
    assert interpreter.platform == host_target().platform
    if sys.platform == "linux":
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
        assert glibc is not None
        assert interpreter.libc_version == tuple(int(p) for p in glibc.split()[1].split(".")[:2])


# --- discovery with a fake host ------------------------------------------------------------------------------


def _description(version: str, **overrides: object) -> str:
    data: dict[str, object] = {
        "version": [int(p) for p in version.split(".")],
        "implementation": "cpython",
        "sys_platform": "linux",
        "sysconfig_platform": "linux-x86_64",
        "machine": "x86_64",
        "bits": 64,
        "libc": "glibc",
        "libc_version": "2.36",
    }
    data.update(overrides)
    return json.dumps(data)


class FakeHost:
    """Answers inspections by real path, and ``uv python dir``; records every command."""

    def __init__(self, answers: Mapping[str, str], uv_dir: Path | None) -> None:
        self.answers = dict(answers)
        self.uv_dir = uv_dir
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        if list(args[1:3]) == ["python", "dir"]:
            if self.uv_dir is None:
                return subprocess.CompletedProcess(list(args), 2, "", "error: no\n")
            return subprocess.CompletedProcess(list(args), 0, f"{self.uv_dir}\n", "")
        answer = self.answers.get(args[0])
        if answer is None:
            return subprocess.CompletedProcess(list(args), 1, "", "Traceback: boom\n")
        return subprocess.CompletedProcess(list(args), 0, answer + "\n", "")

    def inspected(self) -> list[str]:
        return sorted(c[0] for c in self.calls if c[1:2] == ["-I"])


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_tree(tmp_path: Path) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    python311 = _executable(bin_dir / "python3.11")
    (bin_dir / "python3").symlink_to("python3.11")  # the same interpreter twice
    _executable(bin_dir / "python3.11-config")  # not an interpreter
    _executable(bin_dir / "python2.7")  # not a name we look for
    (bin_dir / "python3.10").write_text("not executable")
    shims = tmp_path / "pyenv" / "shims"
    _executable(shims / "python3.12")  # a shim: never run
    pyenv312 = _executable(tmp_path / "pyenv" / "versions" / "3.12.1" / "bin" / "python3")
    broken = _executable(tmp_path / "pyenv" / "versions" / "3.9.0" / "bin" / "python3")
    uv313 = _executable(tmp_path / "uv-pythons" / "cpython-3.13.0-linux-x86_64-gnu" / "bin" / "python3")
    return {
        "bin": bin_dir,
        "shims": shims,
        "pyenv": tmp_path / "pyenv",
        "uv": tmp_path / "uv-pythons",
        "python311": python311,
        "pyenv312": pyenv312,
        "broken": broken,
        "uv313": uv313,
    }


def _env(tree: Mapping[str, Path], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(tree["shims"]), str(tree["bin"]), str(tmp_path / "missing")]),
        "PYENV_ROOT": str(tree["pyenv"]),
        "HOME": str(tmp_path / "home"),
        **extra,
    }


def test_discover_finds_path_pyenv_and_uv_pythons_once_each(fake_tree: dict[str, Path], tmp_path: Path) -> None:
    host = FakeHost(
        {
            str(fake_tree["python311"]): _description("3.11.4"),
            str(fake_tree["pyenv312"]): _description("3.12.1"),
            str(fake_tree["uv313"]): _description("3.13.0"),
        },
        uv_dir=fake_tree["uv"],
    )
    found = discover(runner=host, env=_env(fake_tree, tmp_path))
    assert [(i.path, i.version) for i in found] == [
        (fake_tree["python311"], (3, 11, 4)),
        (fake_tree["pyenv312"], (3, 12, 1)),
        (fake_tree["uv313"], (3, 13, 0)),
    ]
    assert found[0] == Interpreter(
        path=fake_tree["python311"],
        version=(3, 11, 4),
        implementation="cpython",
        platform="linux/amd64",
        libc="glibc",
        libc_version=(2, 36),
        sysconfig_platform="linux-x86_64",
    )
    # every real path once (python3 -> python3.11 is one), the broken one too, the shim never
    assert host.inspected() == sorted(str(fake_tree[k]) for k in ("python311", "pyenv312", "broken", "uv313"))

    again = discover(runner=host, env=_env(fake_tree, tmp_path))
    assert again == found
    assert len(host.inspected()) == 4  # cached for the process


def test_discover_without_uv_falls_back_to_the_default_uv_directory(fake_tree: dict[str, Path], tmp_path: Path) -> None:
    host = FakeHost({str(fake_tree["uv313"]): _description("3.13.0")}, uv_dir=None)
    env = _env(fake_tree, tmp_path, UV_PYTHON_INSTALL_DIR=str(fake_tree["uv"]))
    assert [i.version for i in discover(runner=host, env=env)] == [(3, 13, 0)]

    interpreters.clear_cache()
    data_home = tmp_path / "data"
    (data_home / "uv").mkdir(parents=True)
    (data_home / "uv" / "python").symlink_to(fake_tree["uv"])
    env = _env(fake_tree, tmp_path, XDG_DATA_HOME=str(data_home))
    assert [i.version for i in discover(runner=host, env=env)] == [(3, 13, 0)]


def test_discover_with_nothing_installed(tmp_path: Path) -> None:
    host = FakeHost({}, uv_dir=tmp_path / "nothing-here")
    assert discover(runner=host, env={"PATH": "", "HOME": str(tmp_path)}) == []


@pytest.mark.parametrize(
    "output",
    [
        "",
        "not json",
        "[1, 2]",
        json.dumps({"version": [3, 11, 0]}),
        _description("3.11.0", libc="bionic"),
    ],
)
def test_an_interpreter_that_cannot_describe_itself_is_skipped(tmp_path: Path, output: str) -> None:
    python = _executable(tmp_path / "bin" / "python3")
    host = FakeHost({str(python): output}, uv_dir=None)
    assert discover(runner=host, env={"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}) == []


# --- what an interpreter says about its platform -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sys_platform", "machine", "bits", "sysconfig_platform", "libc", "expected"),
    [
        ("linux", "x86_64", 64, "linux-x86_64", "glibc", "linux/amd64"),
        ("linux", "aarch64", 64, "linux-aarch64", "glibc", "linux/arm64"),
        ("linux", "x86_64", 64, "linux-x86_64", "musl", "linux/amd64/musl"),
        ("linux", "aarch64", 64, "linux-aarch64", "musl", "linux/arm64/musl"),
        ("linux", "x86_64", 32, "linux-x86_64", "glibc", ""),  # a 32-bit interpreter on a 64-bit kernel
        ("linux", "riscv64", 64, "linux-riscv64", "glibc", ""),
        ("linux", "x86_64", 64, "linux-x86_64", None, ""),  # neither glibc nor musl
        ("darwin", "arm64", 64, "macosx-11.0-arm64", None, "macos/arm64"),
        ("darwin", "x86_64", 64, "macosx-10.9-universal2", None, "macos/amd64"),
        ("win32", "AMD64", 64, "win-amd64", None, "windows/amd64"),
        ("win32", "AMD64", 32, "win32", None, "windows/386"),
        ("win32", "ARM64", 64, "win-arm64", None, "windows/arm64"),
        ("freebsd14", "amd64", 64, "freebsd-14.0-amd64", None, ""),
    ],
)
def test_platform_key(
    sys_platform: str, machine: str, bits: int, sysconfig_platform: str, libc: str | None, expected: str
) -> None:
    assert (
        platform_key(
            sys_platform=sys_platform, machine=machine, bits=bits, sysconfig_platform=sysconfig_platform, libc=libc
        )
        == expected
    )


# --- choosing one for a target -------------------------------------------------------------------------------


def _interpreter(
    version: str,
    platform: str = "linux/amd64",
    *,
    implementation: str = "cpython",
    libc: str | None = "glibc",
    libc_version: tuple[int, int] | None = (2, 36),
    sysconfig_platform: str = "linux-x86_64",
    path: str | None = None,
) -> Interpreter:
    major, minor, micro = (int(p) for p in version.split("."))
    return Interpreter(
        path=Path(path or f"/opt/python{version}/bin/python3"),
        version=(major, minor, micro),
        implementation=implementation,
        platform=platform,
        libc=libc,
        libc_version=libc_version,
        sysconfig_platform=sysconfig_platform,
    )


HOST = [
    _interpreter("3.11.2", path="/usr/bin/python3.11"),
    _interpreter("3.11.7"),
    _interpreter("3.11.7", path="/a/python3.11"),  # same version: the first path wins
    _interpreter("3.12.1"),
    _interpreter("3.12.4", implementation="pypy"),
    _interpreter("3.13.0", "linux/amd64/musl", libc="musl", libc_version=(1, 2)),
    _interpreter("3.12.3", "macos/arm64", libc=None, libc_version=None, sysconfig_platform="macosx-11.0-arm64"),
    _interpreter("3.11.9", "macos/arm64", libc=None, libc_version=None, sysconfig_platform="macosx-14.0-arm64"),
    _interpreter("3.11.8", "", libc=None, libc_version=None, sysconfig_platform="freebsd-14.0-amd64"),
]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target.create("linux/amd64", "3.11"), "/a/python3.11"),  # the highest patch release
        (Target.create("linux/amd64", "3.11.2"), "/a/python3.11"),
        (Target.create("linux/amd64", "3.11.7"), "/a/python3.11"),
        (Target.create("linux/amd64", "3.11.8"), None),  # older than the target's patch release
        (Target.create("linux/amd64", "3.11", glibc="2.17"), "/a/python3.11"),  # host glibc newer: still builds
        (Target.create("linux/amd64", "3.12"), "/opt/python3.12.1/bin/python3"),  # never PyPy
        (Target.create("linux/amd64", "3.13"), None),  # only a musl 3.13 here
        (Target.create("linux/amd64/musl", "3.13"), "/opt/python3.13.0/bin/python3"),
        (Target.create("linux/arm64", "3.11"), None),
        (Target.create("linux/amd64", "3.10"), None),
        (Target.create("macos/arm64", "3.12", macos="13.0"), "/opt/python3.12.3/bin/python3"),
        (Target.create("macos/arm64", "3.11", macos="13.0"), None),  # built for macOS 14: tagged too new
        (Target.create("macos/arm64", "3.11", macos="14.0"), "/opt/python3.11.9/bin/python3"),
        (Target.create("windows/amd64", "3.11"), None),
    ],
    ids=lambda v: v.name + "-" + v.python + (f"-glibc{v.glibc}" if v.glibc else "") if isinstance(v, Target) else "",
)
def test_interpreter_for(target: Target, expected: str | None) -> None:
    chosen = interpreter_for(target, HOST)
    assert (str(chosen.path) if chosen else None) == expected


def test_interpreter_for_nothing() -> None:
    assert interpreter_for(Target.create("linux/amd64", "3.11"), []) is None
