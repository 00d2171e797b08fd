"""Targets: which real wheel filenames a target accepts, its marker environment, and its uv platform."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.tags import Tag, sys_tags

from mirror.errors import InvalidTarget
from mirror.interpreters import discover
from mirror.targets import (
    Target,
    host_target,
    manylinux_platforms,
    musllinux_platforms,
    parse_platform_tag,
)

AMD64_311 = Target.create("linux/amd64", "3.11")
AMD64_312 = Target.create("linux/amd64", "3.12")
ARM64_312 = Target.create("linux/arm64", "3.12")
MUSL_312 = Target.create("linux/amd64/musl", "3.12")
MAC_ARM_312 = Target.create("macos/arm64", "3.12")
MAC_X86_311 = Target.create("macos/amd64", "3.11", macos="10.15")
WIN_311 = Target.create("windows/amd64", "3.11")
OLD_GLIBC_311 = Target.create("linux/amd64", "3.11", glibc="2.17")

# Real filenames published on PyPI.
CHARSET_ARM = "charset_normalizer-3.4.2-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
CHARSET_X86 = "charset_normalizer-3.4.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
CHARSET_MUSL = "charset_normalizer-3.4.2-cp312-cp312-musllinux_1_2_x86_64.whl"
CRYPTO_ABI3 = "cryptography-45.0.4-cp311-abi3-manylinux_2_28_x86_64.whl"
CRYPTO_ABI3_34 = "cryptography-45.0.4-cp311-abi3-manylinux_2_34_x86_64.whl"
PYDANTIC_MAC = "pydantic_core-2.33.2-cp312-cp312-macosx_11_0_arm64.whl"
NUMPY_MAC_X86 = "numpy-1.26.4-cp311-cp311-macosx_10_9_x86_64.whl"
NUMPY_UNIVERSAL = "numpy-1.21.0-cp39-cp39-macosx_10_9_universal2.whl"
GREENLET_WIN = "greenlet-3.2.3-cp311-cp311-win_amd64.whl"
MYPY_MANYLINUX1 = "mypy-0.910-cp39-cp39-manylinux1_x86_64.whl"
REQUESTS = "requests-2.32.4-py3-none-any.whl"
SIX = "six-1.17.0-py2.py3-none-any.whl"
PY2_ONLY = "futures-3.4.0-py2-none-any.whl"
NUMPY_CP36 = "numpy-1.19.5-cp36-cp36m-manylinux1_x86_64.whl"
NUMPY_CP37 = "numpy-1.21.6-cp37-cp37m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
CRYPTO_CP36_ABI3 = "cryptography-3.3.2-cp36-abi3-manylinux2010_x86_64.whl"
CENTOS7_36 = Target.create("linux/amd64", "3.6", glibc="2.17")
DEBIAN10_37 = Target.create("linux/amd64", "3.7", glibc="2.28")


@pytest.mark.parametrize(
    ("target", "filename", "fits"),
    [
        (ARM64_312, CHARSET_ARM, True),
        (AMD64_312, CHARSET_ARM, False),
        (AMD64_312, CHARSET_X86, True),
        (AMD64_311, CHARSET_X86, False),  # cp312 ABI does not load on 3.11
        (AMD64_312, CRYPTO_ABI3, True),  # cp311-abi3 fits 3.12
        (AMD64_311, CRYPTO_ABI3, True),
        (Target.create("linux/amd64", "3.10"), CRYPTO_ABI3, False),  # abi3 built for 3.11 needs >= 3.11
        (AMD64_312, CRYPTO_ABI3_34, False),  # needs glibc 2.34, target has 2.28
        (Target.create("linux/amd64", "3.12", glibc="2.34"), CRYPTO_ABI3_34, True),
        (AMD64_312, CHARSET_MUSL, False),  # musllinux never fits glibc
        (MUSL_312, CHARSET_MUSL, True),
        (MUSL_312, CHARSET_X86, False),  # manylinux never fits musl
        (MAC_ARM_312, PYDANTIC_MAC, True),
        (MAC_ARM_312, NUMPY_UNIVERSAL, False),  # cp39
        (Target.create("macos/arm64", "3.9"), NUMPY_UNIVERSAL, True),  # universal2 runs on arm64
        (MAC_X86_311, NUMPY_MAC_X86, True),
        (Target.create("macos/amd64", "3.11", macos="10.8"), NUMPY_MAC_X86, False),  # built for 10.9+
        (WIN_311, GREENLET_WIN, True),
        (AMD64_311, GREENLET_WIN, False),
        (Target.create("linux/amd64", "3.9"), MYPY_MANYLINUX1, True),  # manylinux1 == manylinux_2_5
        (Target.create("linux/arm64", "3.9"), MYPY_MANYLINUX1, False),
        (WIN_311, REQUESTS, True),
        (MAC_ARM_312, SIX, True),
        (AMD64_312, PY2_ONLY, False),
        (AMD64_312, "not-a-wheel.tar.gz", False),
        (CENTOS7_36, NUMPY_CP36, True),  # before 3.8 the ABI carries the pymalloc flag: cp36m
        (CENTOS7_36, "numpy-1.19.5-cp36-cp36-manylinux1_x86_64.whl", False),  # no such ABI on 3.6
        (DEBIAN10_37, NUMPY_CP36, False),
        (DEBIAN10_37, NUMPY_CP37, True),
        (CENTOS7_36, NUMPY_CP37, False),
        (CENTOS7_36, CRYPTO_CP36_ABI3, True),
        (DEBIAN10_37, CRYPTO_CP36_ABI3, True),  # abi3 built for 3.6 loads on 3.7
        (CENTOS7_36, SIX, True),
        (CENTOS7_36, CHARSET_X86, False),
    ],
)
def test_target_accepts_real_wheels(target: Target, filename: str, fits: bool) -> None:
    assert target.accepts(filename) is fits


def test_best_wheel_prefers_the_most_specific_tag() -> None:
    files = [
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
    ]
    assert AMD64_312.best_wheel(files) == "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert OLD_GLIBC_311.best_wheel(files) == "pkg-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"
    assert ARM64_312.best_wheel(files) == "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.whl"
    assert WIN_311.best_wheel(files) == "pkg-1.0-py3-none-any.whl"
    assert WIN_311.best_wheel(files[1:]) is None


def test_manylinux_ladder_x86_64_goes_down_to_2_5_with_legacy_aliases() -> None:
    ladder = manylinux_platforms("x86_64", (2, 28))
    assert ladder[:2] == ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64"]
    assert ladder[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    assert ladder.index("manylinux2014_x86_64") == ladder.index("manylinux_2_17_x86_64") + 1
    assert ladder.index("manylinux2010_x86_64") == ladder.index("manylinux_2_12_x86_64") + 1
    assert len(ladder) == 24 + 3


def test_manylinux_ladder_aarch64_stops_at_2_17() -> None:
    ladder = manylinux_platforms("aarch64", (2, 28))
    assert ladder[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("2010" in t or "manylinux1" in t for t in ladder)


def test_musllinux_ladder() -> None:
    assert musllinux_platforms("aarch64", (1, 2)) == [
        "musllinux_1_2_aarch64",
        "musllinux_1_1_aarch64",
        "musllinux_1_0_aarch64",
    ]


def test_linux_platform_tags_rank_native_then_ladder() -> None:
    assert AMD64_311.platform_tags()[:3] == ["linux_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64"]
    assert MUSL_312.platform_tags() == ["linux_x86_64", *musllinux_platforms("x86_64", (1, 2))]


def test_macos_tags_include_universal2_and_the_version_ladder() -> None:
    platforms = MAC_ARM_312.platform_tags()
    assert platforms[:2] == ["macosx_13_0_arm64", "macosx_13_0_universal2"]
    assert "macosx_11_0_arm64" in platforms
    assert "macosx_10_9_universal2" in platforms
    assert "macosx_10_9_arm64" not in platforms  # arm64 macOS started at 11


def test_windows_tags() -> None:
    assert WIN_311.tags()[0] == Tag("cp311", "cp311", "win_amd64")
    assert Target.create("windows/386", "3.11").platform_tags() == ["win32"]
    assert Target.create("windows/arm64", "3.11").platform_tags() == ["win_arm64"]


def test_host_target_tags_equal_packaging_sys_tags() -> None:
    host = host_target()
    expected = list(sys_tags())
    ours = list(host.tags())
    assert set(ours) == set(expected)
    # packaging < 26.3 ranks linux_<arch> last; from 26.3 (and here) first. Everything else keeps its order.
    not_native = [t for t in expected if not t.platform.startswith("linux_")]
    assert [t for t in ours if not t.platform.startswith("linux_")] == not_native


def test_host_target_marker_environment_matches_the_interpreter() -> None:
    host = host_target()
    env = host.marker_environment()
    real = default_environment()
    for key in (
        "sys_platform",
        "platform_machine",
        "os_name",
        "platform_system",
        "python_version",
        "implementation_name",
        "platform_python_implementation",
    ):
        assert env[key] == real[key], key
    assert host.python == f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize(
    ("marker", "target", "expected"),
    [
        ('sys_platform == "win32"', AMD64_311, False),
        ('sys_platform == "win32"', WIN_311, True),
        ('platform_system == "Windows"', WIN_311, True),
        ('os_name == "nt"', MAC_ARM_312, False),
        ('platform_machine == "aarch64"', ARM64_312, True),
        ('platform_machine == "aarch64"', AMD64_312, False),
        ('platform_machine == "arm64"', MAC_ARM_312, True),
        ('platform_machine == "AMD64"', WIN_311, True),
        ('python_version < "3.12"', AMD64_311, True),
        ('python_version < "3.12"', AMD64_312, False),
        ('python_full_version >= "3.11.1"', AMD64_311, False),  # "3.11" means 3.11.0, as uv reads it
        ('python_full_version >= "3.11.1"', Target.create("linux/amd64", "3.11.4"), True),
        ('sys_platform == "darwin" and platform_machine == "x86_64"', MAC_X86_311, True),
        ('implementation_name == "cpython"', WIN_311, True),
        ('platform_python_implementation == "PyPy"', AMD64_311, False),
        ('python_version < "3.7"', CENTOS7_36, True),
        ('python_version < "3.7"', DEBIAN10_37, False),
        ('python_full_version >= "3.6.0"', CENTOS7_36, True),
    ],
)
def test_markers_evaluate_for_the_target_not_the_host(marker: str, target: Target, expected: bool) -> None:
    assert target.evaluate(Marker(marker)) is expected


def test_marker_environment_is_complete() -> None:
    # every key packaging knows, so Marker.evaluate never falls back to the host's value
    assert set(WIN_311.marker_environment()) >= set(default_environment())


def test_extra_markers() -> None:
    assert AMD64_311.evaluate('extra == "socks"', extras=["socks"])
    assert not AMD64_311.evaluate('extra == "socks"')


@pytest.mark.parametrize(
    ("target", "uv_platform", "uv_env"),
    [
        (AMD64_311, "x86_64-manylinux_2_28", {}),
        (OLD_GLIBC_311, "x86_64-manylinux_2_17", {}),
        (Target.create("linux/amd64", "3.11", glibc="2.30"), "x86_64-manylinux_2_28", {}),  # uv knows no 2_29/2_30
        (Target.create("linux/arm64", "3.11", glibc="2.45"), "aarch64-manylinux_2_40", {}),
        (MUSL_312, "x86_64-unknown-linux-musl", {}),
        (MAC_ARM_312, "aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "13.0"}),
        (MAC_X86_311, "x86_64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "10.15"}),
        (WIN_311, "x86_64-pc-windows-msvc", {}),
        (Target.create("windows/386", "3.11"), "i686-pc-windows-msvc", {}),
    ],
)
def test_uv_python_platform(target: Target, uv_platform: str, uv_env: dict[str, str]) -> None:
    assert target.uv_python_platform == uv_platform
    assert target.uv_environment() == uv_env


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("manylinux_2_28_aarch64", Target.create("linux/arm64", "3.11", glibc="2.28")),
        ("manylinux2014_x86_64", Target.create("linux/amd64", "3.11", glibc="2.17")),
        ("musllinux_1_1_x86_64", Target.create("linux/amd64/musl", "3.11", musl="1.1")),
        ("macosx_11_0_arm64", Target.create("macos/arm64", "3.11", macos="11.0")),
        ("win_amd64", WIN_311),
    ],
)
def test_explicit_platform_tag(platform: str, expected: Target) -> None:
    assert Target.create(platform, "3.11") == expected


def test_parse_platform_tag_unknown() -> None:
    assert parse_platform_tag("linux_x86_64") is None
    assert parse_platform_tag("manylinux_2_17_ppc64le") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"platform": "linux/amd65", "python": "3.11"},
            "target[0].platform: 'linux/amd65' is not a known platform; known: linux/amd64, ",
        ),
        ({"python": "3.11"}, "target[0].platform: missing; it is required"),
        ({"platform": "linux/amd64"}, "target[0].python: missing; it is required"),
        (
            {"platform": "linux/amd64", "python": "2.7"},
            "target[0].python: '2.7' is not supported; expected 3.6 or newer",
        ),
        (
            {"platform": "linux/amd64", "python": "cp27"},
            "target[0].python: 'cp27' is not supported; expected 3.6 or newer",
        ),
        (
            {"platform": "linux/amd64", "python": "3.5"},
            "target[0].python: '3.5' is not supported; expected 3.6 or newer",
        ),
        (
            {"platform": "linux/amd64", "python": "4.0"},
            "target[0].python: '4.0' is not a Python version; expected e.g. '3.11'",
        ),
        ({"platform": "linux/amd64", "python": 3.11}, "target[0].python: expected a string, got float 3.11"),
        (
            {"platform": "linux/amd64", "python": "3.11", "implementation": "pp"},
            "target[0].implementation: 'pp' is not supported; expected 'cp' (CPython)",
        ),
        (
            {"platform": "linux/amd64", "python": "3.11", "glibc": "2"},
            "target[0].glibc: '2' is not a version; expected MAJOR.MINOR such as '2.28'",
        ),
        (
            {"platform": "linux/amd64", "python": "3.11", "glibc": "2.12"},
            "target[0].glibc: glibc 2.12 is older than 2.17, the oldest glibc that can be resolved for",
        ),
        (
            {"platform": "windows/amd64", "python": "3.11", "glibc": "2.28"},
            "target[0].glibc: does not apply to platform 'windows/amd64'",
        ),
        (
            {"platform": "linux/amd64", "python": "3.11", "musl": "1.2"},
            "target[0].musl: does not apply to platform 'linux/amd64'",
        ),
        (
            {"platform": "manylinux_2_28_x86_64", "python": "3.11", "glibc": "2.31"},
            "target[0].glibc: '2.31' contradicts platform 'manylinux_2_28_x86_64' (glibc 2.28)",
        ),
        (
            {"platform": "linux/amd64", "python": "3.11", "name": "a b"},
            "target[0].name: 'a b' is not a valid name; expected letters, digits, '.', '_' and '-'",
        ),
        (
            {"platform": "linux/amd64", "python": "3.11", "arch": "x"},
            "target[0].arch: unknown key; expected one of: platform, python, implementation, glibc, musl, macos, name",
        ),
    ],
)
def test_invalid_targets_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTarget) as info:
        Target.from_dict(data, where="target[0]")
    assert str(info.value).startswith(message)


def test_target_round_trips_through_to_dict() -> None:
    for target in (AMD64_311, MUSL_312, MAC_X86_311, WIN_311, Target.create("linux/arm64", "3.12.4", name="edge")):
        assert Target.from_dict(target.to_dict()) == target


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (AMD64_311, "linux-amd64-cp311"),
        (MUSL_312, "linux-amd64-musl-cp312"),
        (MAC_ARM_312, "macos-arm64-cp312"),
        (Target.create("windows/386", "3.13"), "windows-386-cp313"),
    ],
)
def test_default_names(target: Target, name: str) -> None:
    assert target.name == name


@pytest.mark.parametrize(("python", "abi"), [("3.6", "cp36m"), ("3.7", "cp37m"), ("3.8", "cp38"), ("3.12", "cp312")])
def test_abi_has_the_pymalloc_flag_before_38(python: str, abi: str) -> None:
    target = Target.create("linux/amd64", python)
    assert target.abi == abi
    assert target.report(tag_limit=1)["abi"] == abi  # mirror targets --json
    assert str(target.tags()[0]) == f"cp3{python[2:]}-{abi}-linux_x86_64"


# The real pip of an old CPython computes its own tags: the target's must agree with them.
_TAGS_OF_OLD_PIP = {
    # pip 22.0.4 (bundled with 3.7) vendors packaging 21.3
    "3.7": "from pip._vendor.packaging.tags import sys_tags; print('\\n'.join(map(str, sys_tags())))",
    # pip 18.1 (bundled with 3.6) predates packaging.tags: pep425tags, manylinux1 at most
    "3.6": (
        "from pip._internal.pep425tags import get_supported; print('\\n'.join('-'.join(t) for t in get_supported()))"
    ),
}


@pytest.mark.parametrize("python", ["3.6", "3.7"])
def test_legacy_target_tags_agree_with_the_targets_own_pip(python: str, tmp_path: Path) -> None:
    found = [i for i in discover() if i.implementation == "cpython" and i.version[:2] == (3, int(python[2:]))]
    if not found or found[0].platform != "linux/amd64" or found[0].libc_version is None:
        pytest.skip(f"no CPython {python} for linux/amd64 on this host")
    interpreter = found[0]
    subprocess.run([str(interpreter.path), "-m", "venv", str(tmp_path / "venv")], check=True)
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", _TAGS_OF_OLD_PIP[python]],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = {Tag(*line.split("-")) for line in done.stdout.split()}
    glibc = interpreter.libc_version
    target = Target.create("linux/amd64", python, glibc=f"{glibc[0]}.{glibc[1]}")
    ours = set(target.tags())
    if python == "3.7":  # packaging >= 22 adds the interpreter's own <cp37>-none-any, as pip does today
        assert ours - theirs == {Tag("cp37", "none", "any")}
        assert theirs <= ours
    else:  # pip 18.1 knows manylinux1 and linux_x86_64 only; every one of its tags but its odd cp3-none-any is ours
        assert theirs - {Tag("cp3", "none", "any")} <= ours
        assert {t.abi for t in theirs if t.interpreter == "cp36"} == {"cp36m", "abi3", "none"}
