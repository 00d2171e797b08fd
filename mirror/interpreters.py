"""Local CPython interpreters: which ones this host has, and which one can build wheels for a target.

Candidates come from three places:

* ``PATH``: every ``python3.X``, ``python3`` and ``python`` in every directory — except directories named
  ``shims`` (pyenv, asdf): a shim only runs when its tool has that version activated;
* pyenv: ``$PYENV_ROOT`` (default ``~/.pyenv``) ``/versions/*/bin/python3``;
* uv-managed Pythons: ``*/bin/python3`` under the directory ``uv python dir`` prints (the ``uv`` package's own
  binary; it honours ``UV_PYTHON_INSTALL_DIR``), else under ``$UV_PYTHON_INSTALL_DIR``, ``$XDG_DATA_HOME/uv/python``
  or ``~/.local/share/uv/python``. Not ``uv python list --only-installed``: even with ``--managed-python`` it
  first queries every interpreter on ``PATH`` (1.4 s on a host with pyenv shims), and its paths are then
  inspected here once more anyway. An empty or missing directory simply yields nothing.

Nothing about a candidate is guessed from its path: each one is run once (``-I -S -c``, with a script that needs
only the standard library of Python 3.6+) and reports its version, implementation, ``sysconfig`` platform,
machine, pointer size and C library. The C library version comes from ``os.confstr("CS_GNU_LIBC_VERSION")``, as
``packaging`` reads it: ``platform.libc_ver()`` reports the newest glibc symbol the *executable* references, not
the host's glibc. musl's version is read from its dynamic loader, as ``packaging._musllinux`` does.
Candidates are deduplicated by real path, and each inspection is cached for the life of the process.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mirror._process import Runner, run_command
from mirror.targets import PLATFORMS, Target

log = logging.getLogger(__name__)

#: Run by every candidate: standard library only, valid Python 3.6 (pyenv keeps old versions around).
INSPECT_SCRIPT = r"""
import glob, json, os, platform, re, struct, subprocess, sys, sysconfig
libc = None
libc_version = None
if sys.platform.startswith("linux"):
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, OSError, ValueError):
        found = ""
    parts = found.split()
    if len(parts) == 2 and parts[0] == "glibc":
        libc, libc_version = "glibc", parts[1]
    else:
        for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):
            libc = "musl"
            try:
                proc = subprocess.Popen([loader], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                text = proc.communicate()[1].decode("utf-8", "replace")
            except OSError:
                text = ""
            match = re.search(r"Version (\d+)\.(\d+)", text)
            if match:
                libc_version = match.group(1) + "." + match.group(2)
            break
print(json.dumps({
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "sys_platform": sys.platform,
    "sysconfig_platform": sysconfig.get_platform(),
    "machine": platform.machine(),
    "bits": struct.calcsize("P") * 8,
    "libc": libc,
    "libc_version": libc_version,
}))
"""

_PATH_NAME = re.compile(r"^python(?:3(?:\.\d+)?)?(?:\.exe)?$")
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_WINDOWS_ARCHES = {"win-amd64": "amd64", "win-arm64": "arm64", "win32": "386"}
_MACOS_PLATFORM = re.compile(r"^macosx-(\d+)\.(\d+)-")

_cache: dict[tuple[Runner, str], Interpreter | None] = {}


@dataclass(frozen=True, kw_only=True, slots=True)
class Interpreter:
    """One Python interpreter of this host, as it described itself."""

    path: Path  # its real path (symlinks resolved)
    version: tuple[int, int, int]
    implementation: str  # sys.implementation.name: "cpython", "pypy", …
    platform: str  # a mirror.targets PLATFORMS key such as "linux/amd64", or "" if none fits
    libc: str | None  # "glibc", "musl", or None off Linux
    libc_version: tuple[int, int] | None
    sysconfig_platform: str = ""  # sysconfig.get_platform(): "linux-x86_64", "macosx-11.0-arm64", "win-amd64"

    @property
    def macos_deployment_target(self) -> tuple[int, int] | None:
        """The oldest macOS the interpreter's extensions are built for (``macosx-11.0-arm64`` → 11.0)."""
        m = _MACOS_PLATFORM.match(self.sysconfig_platform)
        return (int(m[1]), int(m[2])) if m else None

    def describe(self) -> str:
        """``CPython 3.11.7 linux/amd64 (glibc 2.36) at /usr/bin/python3.11``."""
        name = {"cpython": "CPython", "pypy": "PyPy"}.get(self.implementation, self.implementation)
        libc = (
            f" ({self.libc} {self.libc_version[0]}.{self.libc_version[1]})" if self.libc and self.libc_version else ""
        )
        version = ".".join(map(str, self.version))
        return f"{name} {version} {self.platform or self.sysconfig_platform or 'unknown platform'}{libc} at {self.path}"


def clear_cache() -> None:
    """Forget every inspection (interpreters installed or removed while the process runs)."""
    _cache.clear()


def discover(*, runner: Runner = run_command, env: Mapping[str, str] | None = None) -> list[Interpreter]:
    """Every Python interpreter found on ``PATH``, under pyenv and among uv's managed Pythons.

    ``env`` (default ``os.environ``) supplies ``PATH``, ``HOME``, ``PYENV_ROOT``, ``XDG_DATA_HOME`` and
    ``UV_PYTHON_INSTALL_DIR``. Candidates that fail to run or to describe themselves are skipped (and logged).
    The result is sorted by platform, version and path.
    """
    environ = dict(os.environ if env is None else env)
    paths = list(dict.fromkeys(os.path.realpath(candidate) for candidate in _candidates(environ, runner)))
    missing = [path for path in paths if (runner, path) not in _cache]
    if missing:  # each inspection is one interpreter start-up: run them side by side
        with ThreadPoolExecutor(max_workers=min(8, len(missing))) as pool:
            inspected = pool.map(lambda path: _inspect(path, runner, environ), missing)
            _cache.update({(runner, path): found for path, found in zip(missing, inspected, strict=True)})
    found = [interpreter for path in paths if (interpreter := _cache[(runner, path)]) is not None]
    return sorted(found, key=lambda i: (i.platform, i.version, str(i.path)))


def interpreter_for(target: Target, interpreters: Sequence[Interpreter]) -> Interpreter | None:
    """The interpreter that builds wheels for ``target`` here, or ``None`` when this host has none.

    It must be CPython on the target's platform (same OS, CPU and C library family), of the target's
    major.minor version and, when the target names a patch release, at least that release. The highest
    patch release wins (then the first path).

    glibc Linux: the host's glibc version is not compared with the target's. A wheel built here is tagged
    ``linux_<arch>`` — which the target's tag list accepts (pip ranks it first) — but it is linked against
    *this host's* glibc: built on a host with a newer glibc than the target's, an extension module can need
    symbols the target lacks and fail to import there. That is a limitation of building on this host, not
    something a tag records; build on a host (or container) with the target's glibc or older to be sure.
    The same holds for musl. macOS: the interpreter's deployment target (``sysconfig.get_platform()``) must not
    be newer than the target's macOS, since that is what the built wheel's tag says.
    """
    if target.implementation != "cp":
        return None
    major, minor = target.python_version
    wanted = tuple(int(p) for p in target.python_full_version.split("."))
    has_patch = target.python.count(".") == 2
    fitting = []
    for interpreter in interpreters:
        if interpreter.implementation != "cpython" or interpreter.platform != target.platform:
            continue
        if interpreter.version[:2] != (major, minor) or (has_patch and interpreter.version < wanted):
            continue
        if target.macos is not None:
            deployment = interpreter.macos_deployment_target
            if deployment is None or deployment > target.macos:
                continue
        fitting.append(interpreter)
    if not fitting:
        return None
    best = max(interpreter.version for interpreter in fitting)
    return min((i for i in fitting if i.version == best), key=lambda i: str(i.path))


# -- candidates ------------------------------------------------------------------------------------------------


def _candidates(env: Mapping[str, str], runner: Runner) -> Iterator[str]:
    yield from _on_path(env)
    yield from _under_pyenv(env)
    yield from _uv_managed(env, runner)


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _on_path(env: Mapping[str, str]) -> Iterator[str]:
    for entry in env.get("PATH", "").split(os.pathsep):
        directory = Path(entry)
        if not entry or directory.name == "shims":
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if _PATH_NAME.fullmatch(name) and _is_executable(directory / name):
                yield str(directory / name)


def _under_pyenv(env: Mapping[str, str]) -> Iterator[str]:
    root = env.get("PYENV_ROOT")
    home = _home(env)
    base = Path(root) if root else (home / ".pyenv" if home else None)
    if base is None:
        return
    for path in sorted((base / "versions").glob("*/bin/python3")):
        if _is_executable(path):
            yield str(path)


def _uv_install_dir(env: Mapping[str, str], runner: Runner) -> Path | None:
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except (ImportError, FileNotFoundError) as exc:
        log.debug("uv is not available to say where its Pythons live: %s", exc)
    else:
        done = runner([uv, "python", "dir", "--no-config"], env)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and len(lines) == 1 and lines[0]:
            return Path(lines[0])
        log.debug("uv python dir failed (exit status %s): %s", done.returncode, done.stderr.strip())
    if env.get("UV_PYTHON_INSTALL_DIR"):
        return Path(env["UV_PYTHON_INSTALL_DIR"])
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "uv" / "python"
    home = _home(env)
    return home / ".local" / "share" / "uv" / "python" if home else None


def _uv_managed(env: Mapping[str, str], runner: Runner) -> Iterator[str]:
    base = _uv_install_dir(env, runner)
    if base is None:
        return
    for pattern in ("*/bin/python3", "*/python.exe"):
        for path in sorted(base.glob(pattern)):
            if _is_executable(path):
                yield str(path)


# -- inspection ------------------------------------------------------------------------------------------------


def _inspect(path: str, runner: Runner, env: Mapping[str, str]) -> Interpreter | None:
    try:
        done = runner([path, "-I", "-S", "-c", INSPECT_SCRIPT], env)
    except OSError as exc:
        log.debug("%s: cannot run: %s", path, exc)
        return None
    if done.returncode != 0:
        log.debug("%s: inspection failed (exit status %s): %s", path, done.returncode, done.stderr.strip()[-300:])
        return None
    try:
        return parse_inspection(path, done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        log.debug("%s: unreadable inspection output %r: %s", path, done.stdout[-300:], exc)
        return None


def parse_inspection(path: str, text: str) -> Interpreter:
    """An :class:`Interpreter` from the JSON line :data:`INSPECT_SCRIPT` prints (``ValueError`` if malformed)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    major, minor, micro = (int(v) for v in data["version"])
    libc = data.get("libc")
    if libc not in (None, "glibc", "musl"):
        raise ValueError(f"unknown libc {libc!r}")
    raw_libc_version = data.get("libc_version")
    libc_version = None
    if isinstance(raw_libc_version, str) and (m := re.match(r"^(\d+)\.(\d+)", raw_libc_version)):
        libc_version = (int(m[1]), int(m[2]))
    sysconfig_platform = str(data.get("sysconfig_platform", ""))
    return Interpreter(
        path=Path(os.path.realpath(path)),
        version=(major, minor, micro),
        implementation=str(data["implementation"]),
        platform=platform_key(
            sys_platform=str(data["sys_platform"]),
            machine=str(data.get("machine", "")),
            bits=int(data.get("bits", 64)),
            sysconfig_platform=sysconfig_platform,
            libc=libc,
        ),
        libc=libc,
        libc_version=libc_version,
        sysconfig_platform=sysconfig_platform,
    )


def platform_key(*, sys_platform: str, machine: str, bits: int, sysconfig_platform: str, libc: str | None) -> str:
    """The :data:`~mirror.targets.PLATFORMS` key of an interpreter, or ``""`` when no target platform fits.

    The CPU is the interpreter's, not the machine's: a 32-bit interpreter on a 64-bit Linux fits no platform.
    """
    if sys_platform.startswith("linux"):
        os_ = "linux"
    elif sys_platform == "darwin":
        os_ = "macos"
    elif sys_platform == "win32":
        os_ = "windows"
    else:
        return ""
    if os_ == "windows":
        arch = _WINDOWS_ARCHES.get(sysconfig_platform)
    else:
        arch = _ARCHES.get(machine.lower()) if bits == 64 else None
    if arch is None or (os_ == "linux" and libc is None):  # a Linux with neither glibc nor musl: no target fits
        return ""
    key = f"{os_}/{arch}" + ("/musl" if libc == "musl" else "")
    return key if key in PLATFORMS else ""
