"""Subprocesses, once: the injectable runner, a runner with a deadline, and the environment without this host's
package-tool configuration.

Every subprocess offline-mirror starts (uv, pip-compile, build backends, venvs' pips, devpi-server, interpreters
being inspected) goes through a :data:`Runner` so that tests can run it for real or fake it, and gets an
environment from :func:`clean_environment` so that only the spec decides: no ``PIP_*``/``UV_*`` setting, no
pip.conf, and no CPython downloaded by uv behind the user's back.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence

Runner = Callable[[Sequence[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]

#: uv settings from the environment that are about the machine, not about what gets resolved or installed.
UV_MACHINE_SETTINGS = (
    "UV_CACHE_DIR",
    "UV_NATIVE_TLS",
    "UV_HTTP_TIMEOUT",
    "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS",
)
#: Proxy settings (matched case-insensitively: HTTP_PROXY as well).
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Settings that put another Python's packages or environment in front of the one being run.
PYTHON_PATH_VARIABLES = frozenset(
    {"PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONSTARTUP"}
)


class TimedOut(Exception):
    """A command ran past its deadline and was killed with everything it started; ``output`` is what it said."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def run_command(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The default runner: run a command, capture text output, never raise on a non-zero exit."""
    return subprocess.run(list(args), env=dict(env), capture_output=True, text=True, check=False)


def runner_with_timeout(timeout: float) -> Runner:
    """A runner like :func:`run_command` that kills the command's whole process group after ``timeout`` seconds
    (a build backend runs compilers and helpers of its own) and raises :class:`TimedOut`."""

    def run(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        posix = os.name == "posix"
        with subprocess.Popen(
            list(args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=posix,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    if posix:
                        os.killpg(process.pid, signal.SIGKILL)
                    else:  # pragma: no cover - Windows
                        process.kill()
                stdout, stderr = process.communicate()
                raise TimedOut(f"{stdout}\n{stderr}") from None
        return subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)

    return run


def clean_environment(
    base: Mapping[str, str] | None = None,
    *,
    keep: Collection[str] = UV_MACHINE_SETTINGS,
    proxies: bool = True,
    python_paths: bool = True,
) -> dict[str, str]:
    """``base`` (default: this process's environment) without this host's pip and uv configuration.

    Every ``PIP_*`` and ``UV_*`` variable goes but those in ``keep``; pip reads no configuration file, uv downloads
    no CPython and draws no progress. ``proxies=False`` also drops the proxy settings and ``python_paths=False`` the
    variables that point a Python at other packages (``PYTHONPATH``, ``VIRTUAL_ENV``, …).
    """
    env = {
        key: value
        for key, value in (base if base is not None else os.environ).items()
        if not key.startswith(("PIP_", "MIRROR_INDEX_"))  # an index's credentials never reach a subprocess
        and not (key.startswith("UV_") and key not in keep)
        and (proxies or key.lower() not in PROXY_VARIABLES)
        and (python_paths or key not in PYTHON_PATH_VARIABLES)
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_PROGRESS"] = "1"
    # uv would otherwise fetch a CPython of the target's version from the internet
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if any(key.lower() in PROXY_VARIABLES and key.lower() != "no_proxy" for key in env):
        # the lock's router listens on 127.0.0.1: never through a proxy
        for key in ("NO_PROXY", "no_proxy"):
            present = [host for host in env.get(key, "").split(",") if host.strip()]
            env[key] = ",".join([*present, *(h for h in ("127.0.0.1", "localhost", "::1") if h not in present)])
    return env


def log_tail(output: str, *, lines: int = 6, limit: int = 800) -> str:
    """The last non-empty lines of a command's output, joined with ``" | "`` (at most ``limit`` characters)."""
    kept = [stripped for line in output.splitlines() if (stripped := _ANSI.sub("", line).strip())]
    text = " | ".join(kept[-lines:]) or "no output"
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
