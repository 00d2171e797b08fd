"""mirror.wheelbuild: wheels built from sdists with build requirements from local files only."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from mirror import interpreters
from mirror.targets import Target, host_target
from mirror.wheelbuild import BuildResult, WheelBuildError, build_wheel, log_tail, missing_requirement
from tests.fixtures.dists import Catalog

LABEL = "linux-amd64-cp312"


@pytest.fixture
def links(upstream_catalog: Catalog, tmp_path: Path) -> Path:
    """One flat directory of symlinks to every fixture file, as ``mirror fetch`` makes it."""
    directory = tmp_path / "links"
    directory.mkdir()
    for filename in upstream_catalog.filenames:
        (directory / filename).symlink_to(upstream_catalog.files_dir / filename)
    return directory


@pytest.fixture(scope="module")
def python312() -> Path:
    """A real CPython 3.12 of this host (not the test interpreter), else the test interpreter."""
    found = interpreters.interpreter_for(Target.create(host_target().platform, "3.12"), interpreters.discover())
    return found.path if found else Path(sys.executable)


def _imports(wheel: Path, module: str) -> str:
    """What ``module`` (from the pure wheel, on sys.path as a zip) says about itself."""
    code = (
        f"import sys; sys.path.insert(0, {str(wheel)!r}); import {module} as m; print(m.NAME, m.VERSION, m.BUILT_FOR)"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builds_a_two_level_build_closure_from_local_files(links: Path, tmp_path: Path, python312: Path) -> None:
    out = tmp_path / "out"
    result = build_wheel(
        links / "om_sdistonly-1.0.tar.gz", python=python312, find_links=links, out_dir=out, label=LABEL
    )
    assert result == BuildResult(
        wheel=out / "om_sdistonly-1.0-py3-none-any.whl",
        sha256=_sha256(out / "om_sdistonly-1.0-py3-none-any.whl"),
        log_tail=result.log_tail,
    )
    assert sorted(p.name for p in out.iterdir()) == ["om_sdistonly-1.0-py3-none-any.whl"]  # nothing left behind
    assert result.log_tail.endswith(f"Successfully built {out}/om_sdistonly-1.0-py3-none-any.whl")
    assert _imports(result.wheel, "om_sdistonly") == "om-sdistonly 1.0 source"  # the sources the sdist shipped


def test_a_missing_dynamic_build_requirement_is_named(links: Path, tmp_path: Path) -> None:
    for wheel in links.glob("om_dynamic-*.whl"):
        wheel.unlink()
    out = tmp_path / "out"
    with pytest.raises(WheelBuildError) as error:
        build_wheel(
            links / "om_sdistonly-1.0.tar.gz", python=Path(sys.executable), find_links=links, out_dir=out, label=LABEL
        )
    message = str(error.value)
    assert message.startswith(
        f"om_sdistonly-1.0.tar.gz: wheel build for {LABEL} failed: build requirement om-dynamic is not in {links};"
        " last lines: "
    )
    assert "om-dynamic was not found in the provided package locations" in message
    assert "\n" not in message
    assert list(out.iterdir()) == []


def test_a_legacy_setup_requires_build(links: Path, tmp_path: Path) -> None:
    result = build_wheel(
        links / "om_setupreq-1.0.tar.gz",
        python=Path(sys.executable),
        find_links=links,
        out_dir=tmp_path / "out",
        label="linux-amd64-cp311",
    )
    assert result.wheel.name == "om_setupreq-1.0-py3-none-any.whl"
    with zipfile.ZipFile(result.wheel) as archive:
        assert archive.read("om_setupreq/_stamp.py").decode() == "STAMP = 'om-setuphelper 1.0'\n"


def test_a_missing_setup_requires_is_named(links: Path, tmp_path: Path) -> None:
    for wheel in links.glob("om_setuphelper-*.whl"):
        wheel.unlink()
    with pytest.raises(WheelBuildError, match=r"failed: build requirement om-setuphelper is not in "):
        build_wheel(
            links / "om_setupreq-1.0.tar.gz",
            python=Path(sys.executable),
            find_links=links,
            out_dir=tmp_path / "out",
            label="t",
        )


# --- with a fake uv -----------------------------------------------------------------------------------------


class FakeUv:
    """Records the command and environment; writes ``wheels`` into --out-dir and exits ``returncode``."""

    def __init__(self, *, wheels: Sequence[str] = (), returncode: int = 0, stderr: str = "") -> None:
        self.wheels = wheels
        self.returncode = returncode
        self.stderr = stderr
        self.args: list[str] = []
        self.env: dict[str, str] = {}

    def __call__(self, args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        self.args, self.env = list(args), dict(env)
        out = Path(args[args.index("--out-dir") + 1])
        for name in self.wheels:
            (out / name).write_bytes(b"wheel bytes")
        return subprocess.CompletedProcess(list(args), self.returncode, "", self.stderr)


def _sdist(tmp_path: Path) -> Path:
    sdist = tmp_path / "demo-1.0.tar.gz"
    sdist.write_bytes(b"sdist")
    return sdist


def test_the_build_cannot_reach_any_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    monkeypatch.setenv("UV_INDEX_URL", "https://pypi.example/simple")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "host-cache"))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    uv = FakeUv(wheels=["demo-1.0-py3-none-any.whl"])
    links = tmp_path / "links"
    links.mkdir()
    result = build_wheel(
        _sdist(tmp_path),
        python=Path("/opt/py/bin/python3"),
        find_links=links,
        out_dir=tmp_path,
        label="t",
        runner=uv,
        uv="uv",
    )
    assert result.sha256 == hashlib.sha256(b"wheel bytes").hexdigest()
    assert uv.args[:3] == ["uv", "build", str(tmp_path / "demo-1.0.tar.gz")]
    for flag in ("--wheel", "--no-config", "--no-index", "--no-cache"):
        assert flag in uv.args
    assert uv.args[uv.args.index("--python") + 1] == "/opt/py/bin/python3"
    assert uv.args[uv.args.index("--find-links") + 1] == str(links)
    assert "PIP_INDEX_URL" not in uv.env and "UV_INDEX_URL" not in uv.env
    assert uv.env["UV_CACHE_DIR"] != str(tmp_path / "host-cache") and uv.env["UV_NO_CACHE"] == "1"
    assert uv.env["PIP_NO_INDEX"] == "1" and uv.env["PIP_FIND_LINKS"] == str(links)
    assert uv.env["HTTPS_PROXY"] == uv.env["https_proxy"] == "http://127.0.0.1:9"
    assert not os.path.exists(uv.env["UV_CACHE_DIR"])  # the temporary cache is gone


@pytest.mark.parametrize(
    ("uv", "expected"),
    [
        (
            FakeUv(returncode=2, stderr="error: Failed to build\n  cause: the backend crashed\n"),
            "demo-1.0.tar.gz: wheel build for t failed: exit status 2; last lines: error: Failed to build | cause: the backend crashed",
        ),
        (
            FakeUv(returncode=0, stderr="Successfully built nothing"),
            "demo-1.0.tar.gz: wheel build for t failed: expected one wheel, found none; last lines: Successfully built nothing",
        ),
        (
            FakeUv(wheels=["a-1-py3-none-any.whl", "b-1-py3-none-any.whl"]),
            "demo-1.0.tar.gz: wheel build for t failed: expected one wheel, found a-1-py3-none-any.whl, b-1-py3-none-any.whl; last lines: no output",
        ),
    ],
)
def test_failures(tmp_path: Path, uv: FakeUv, expected: str) -> None:
    with pytest.raises(WheelBuildError) as error:
        build_wheel(
            _sdist(tmp_path),
            python=Path("python"),
            find_links=tmp_path,
            out_dir=tmp_path / "out",
            label="t",
            runner=uv,
            uv="uv",
        )
    assert str(error.value) == expected
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(WheelBuildError, match=r"^nope-1.0.tar.gz: wheel build for t failed: no such file "):
        build_wheel(
            tmp_path / "nope-1.0.tar.gz",
            python=Path("python"),
            find_links=tmp_path,
            out_dir=tmp_path,
            label="t",
            uv="uv",
        )
    with pytest.raises(WheelBuildError, match=r"^demo-1.0.tar.gz: wheel build for t failed: no such directory "):
        build_wheel(
            _sdist(tmp_path), python=Path("python"), find_links=tmp_path / "x", out_dir=tmp_path, label="t", uv="uv"
        )


def test_a_build_that_hangs_is_killed(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\necho 'Building wheel from source distribution...' >&2\nsleep 30 &\nwait\n")
    uv.chmod(0o755)
    with pytest.raises(WheelBuildError) as error:
        build_wheel(
            _sdist(tmp_path),
            python=Path("python"),
            find_links=tmp_path,
            out_dir=tmp_path / "out",
            label="t",
            uv=str(uv),
            timeout=0.5,
        )
    assert str(error.value) == (
        "demo-1.0.tar.gz: wheel build for t failed: timed out after 0.5 s;"
        " last lines: Building wheel from source distribution..."
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "  cause: Because om-dynamic was not found in the provided package locations and you require om-dynamic, we can conclude …",
            "om-dynamic",
        ),
        (
            "  ╰─▶ Because there is no version of om-backend==2.0 and you require om-backend==2.0, we can conclude …",
            "om-backend==2.0",
        ),
        ("Because only om-backend<=1.0 is available and you require om-backend>=2, we can conclude …", "om-backend>=2"),
        ("ERROR: No matching distribution found for setuptools>=61", "setuptools>=61"),
        ("  cause: No solution found when resolving: `setuptools>=40.8.0`", "setuptools>=40.8.0"),
        ("  cause: No solution found when resolving: `om-backend`, `om-buildhelper`", None),  # which one is unclear
        ("error: the backend crashed", None),
        (
            "cause: No solution found when resolving: `a`, `b`\ncause: Because b was not found in the provided package locations",
            "b",
        ),
    ],
)
def test_missing_requirement(output: str, expected: str | None) -> None:
    assert missing_requirement(output) == expected


def test_log_tail() -> None:
    assert log_tail("") == "no output"
    assert log_tail("\x1b[31merror\x1b[0m: x\n\n  b  \n") == "error: x | b"
    assert log_tail("\n".join(str(i) for i in range(10))) == "4 | 5 | 6 | 7 | 8 | 9"
    long = log_tail("x" * 2000)
    assert len(long) == 800 and long.startswith("…")
