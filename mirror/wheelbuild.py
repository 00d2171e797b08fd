"""Build one wheel from one sdist, with build isolation fed only from local files.

This is the first proof that a lock's build closure is complete: the isolated build environment (the sdist's
``build-system.requires``, then what its backend asks for — ``setup_requires`` included — recursively through
build requirements that are sdists themselves) is installed from one flat directory of wheels and sdists and
from nothing else.

The frontend is ``uv build --wheel <sdist>`` (the ``uv`` package's own binary), not ``pip wheel``, because:

* uv accepts a source distribution archive as the thing to build (``uv build --help``: "a source distribution
  archive to build into a wheel"), resolves the whole build closure with ``--no-index --find-links`` only, and
  builds requirements that are themselves sdists in their own isolated environments;
* it needs nothing installed in the chosen interpreter, where ``python -m pip wheel`` needs a pip there (not a
  given for a bare, distribution-managed or uv-managed Python) whose version then decides how builds behave;
* when a build requirement is missing, its message names it ("Because om-dynamic was not found in the provided
  package locations …"), which the error passes on.

Nothing of the host leaks in: no uv or pip configuration (``--no-config``, :func:`~mirror._process.clean_environment`),
no cache (``--no-cache`` and a temporary ``UV_CACHE_DIR``, so no build environment is reused), no index
(``--no-index``; ``PIP_NO_INDEX`` and ``PIP_FIND_LINKS`` for a backend that runs pip itself), and every HTTP(S)
request goes through a proxy at 127.0.0.1:9 where nothing listens — a backend that downloads anything fails here
as it would behind the air gap. The wheel is built into a temporary directory next to ``out_dir`` and moved into
place, so ``out_dir`` never holds half a wheel.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mirror._process import Runner, TimedOut, clean_environment, log_tail, runner_with_timeout
from mirror._verified import sha256_file
from mirror.errors import MirrorError
from mirror.targets import Target

log = logging.getLogger(__name__)

DEAD_PROXY = "http://127.0.0.1:9"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
#: What uv and pip print when a build requirement is not among the local files, most specific first.
_MISSING = (
    # uv: "Because om-dynamic was not found in the provided package locations and you require om-dynamic, …"
    re.compile(rf"Because ({_NAME}) was not found in the provided package locations"),
    # uv: "Because there is no version of om-backend==2.0 and you require om-backend==2.0, …"
    re.compile(rf"Because there is no version of ({_NAME}\S*?)(?: and|,|$)"),
    # uv: "Because only om-backend<=1.0 is available and you require om-backend>=2, …"
    re.compile(rf"Because only {_NAME}\S* is available and you require ({_NAME}\S*?)(?:,|$)"),
    # pip: "ERROR: No matching distribution found for om-dynamic"
    re.compile(rf"No matching distribution found for ({_NAME}\S*)"),
    # uv, when nothing more precise was said and only one requirement was being resolved
    re.compile(rf"No solution found when resolving: `({_NAME}[^`]*)`$"),
)


class WheelBuildError(MirrorError):
    """Building a wheel from an sdist failed (or produced no wheel).

    ``missing`` names the build requirement that was not among the local files, when the output said so.
    """

    def __init__(self, message: str, *, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildResult:
    """A wheel built here, in ``out_dir``."""

    wheel: Path
    sha256: str
    log_tail: str  # the last lines of the build's output, joined with " | "


def zig_environment(target: Target, *, python: str = sys.executable) -> dict[str, str]:
    """The compiler settings that make a C/C++ build link against ``target``'s glibc floor instead of this host's:
    ``zig cc -target <arch>-linux-gnu.<glibc>`` (the ``ziglang`` package ships zig) as ``CC``, ``CXX`` and the
    linkers setuptools, meson and CMake read. Only for glibc Linux targets of this host's architecture (the build's
    interpreter runs here); auditwheel still checks the result."""
    if importlib.util.find_spec("ziglang") is None:
        raise WheelBuildError(
            "policy.compiler = \"zig\" needs the ziglang package where mirror runs: pip install 'offline-mirror[zig]'"
        )
    if target.glibc is None or target.info.os != "linux":
        return {}
    zig = f"{python} -m ziglang"
    triple = f"{target.info.tag_arch}-linux-gnu.{target.glibc[0]}.{target.glibc[1]}"
    cc, cxx = f"{zig} cc -target {triple}", f"{zig} c++ -target {triple}"
    return {"CC": cc, "CXX": cxx, "LDSHARED": f"{cc} -shared", "LDCXXSHARED": f"{cxx} -shared", "AR": f"{zig} ar"}


def build_environment(find_links: Path, cache: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an offline build: no host configuration, no cache, no index, no network."""
    env = clean_environment(base, proxies=False)
    for key in ("http_proxy", "https_proxy", "all_proxy"):
        env[key] = env[key.upper()] = DEAD_PROXY
    env.update(
        UV_NO_CACHE="1",
        UV_CACHE_DIR=str(cache),
        UV_OFFLINE="1",
        UV_PYTHON_DOWNLOADS="never",
        NO_COLOR="1",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(find_links),
        PIP_NO_CACHE_DIR="1",
    )
    return env


def build_command(uv: str, sdist: Path, *, python: Path, find_links: Path, out_dir: Path) -> list[str]:
    """The ``uv build`` command line that builds ``sdist`` into ``out_dir``."""
    return [
        uv,
        "build",
        str(sdist),
        "--wheel",
        "--python",
        str(python),
        "--no-config",
        "--no-index",
        "--find-links",
        str(find_links),
        "--no-cache",
        "--out-dir",
        str(out_dir),
        "--color",
        "never",
    ]


def missing_requirement(output: str) -> str | None:
    """The build requirement that ``output`` (uv's or pip's) says could not be found, if it says so."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    for pattern in _MISSING:
        for line in lines:
            match = pattern.search(line)
            if match:
                return match[1]
    return None


def build_wheel(
    sdist: Path,
    *,
    python: Path,
    find_links: Path,
    out_dir: Path,
    label: str,
    runner: Runner | None = None,
    timeout: float = 900,
    uv: str | None = None,
    compiler: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build ``sdist`` into a wheel in ``out_dir`` with ``python``, installing build requirements only from
    ``find_links`` (one flat directory of wheels and sdists).

    ``label`` names what the build is for in errors (a target name). ``runner`` defaults to running uv for real,
    killed with everything it started after ``timeout`` seconds; an injected runner keeps its own time.
    ``compiler``: environment settings of the C/C++ toolchain (:func:`zig_environment`).
    An existing wheel of the same name in ``out_dir`` is replaced. Raises :class:`WheelBuildError`.
    """
    if uv is None:
        from uv import find_uv_bin

        uv = find_uv_bin()
    run = runner if runner is not None else runner_with_timeout(timeout)
    failed = f"{sdist.name}: wheel build for {label} failed"
    if not sdist.is_file():
        raise WheelBuildError(f"{failed}: no such file {sdist}")
    if not find_links.is_dir():
        raise WheelBuildError(f"{failed}: no such directory {find_links}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="mirror-build-cache-") as cache,
        tempfile.TemporaryDirectory(prefix=".mirror-build-", dir=out_dir) as staging,
    ):
        command = build_command(uv, sdist, python=python, find_links=find_links, out_dir=Path(staging))
        log.info("building a wheel of %s for %s with %s", sdist.name, label, python)
        try:
            done = run(command, {**build_environment(find_links, Path(cache)), **(compiler or {})})
        except TimedOut as exc:
            raise WheelBuildError(
                f"{failed}: timed out after {timeout:g} s; last lines: {log_tail(exc.output)}"
            ) from None
        except OSError as exc:
            raise WheelBuildError(f"{failed}: cannot run {command[0]}: {exc}") from None
        output = f"{done.stdout}\n{done.stderr}".replace(staging, str(out_dir))
        tail = log_tail(output)
        if done.returncode != 0:
            missing = missing_requirement(output)
            reason = (
                f"build requirement {missing} is not in {find_links}" if missing else f"exit status {done.returncode}"
            )
            raise WheelBuildError(f"{failed}: {reason}; last lines: {tail}", missing=missing)
        wheels = sorted(Path(staging).glob("*.whl"))
        if len(wheels) != 1:
            found = ", ".join(w.name for w in wheels) or "none"
            raise WheelBuildError(f"{failed}: expected one wheel, found {found}; last lines: {tail}")
        final = out_dir / wheels[0].name
        digest = sha256_file(wheels[0])
        os.replace(wheels[0], final)
    log.info("built %s (sha256 %s)", final.name, digest)
    return BuildResult(wheel=final, sha256=digest, log_tail=tail)
