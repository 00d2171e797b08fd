"""Helpers shared by bench/index.py and bench/install.py (the older scripts keep their own copies)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class StepFailed(Exception):
    """A step of a benchmark failed; the message is one line."""


def clean_env(cache_home: Path | None = None) -> dict[str, str]:
    """The environment of every subprocess: no host pip/uv configuration, no proxy, optionally private caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
        env["UV_CACHE_DIR"] = str(cache_home / "uv")
    return env


def load_average() -> str:
    """The 1/5/15-minute load averages (a busy machine makes the timings noisy), or "n/a"."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def run(
    command: Sequence[str | Path], *, log: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Run ``command`` in its own session; (its wall time, its output, also appended to ``log``) or StepFailed."""
    start = time.perf_counter()
    process = subprocess.Popen(
        list(map(str, command)),
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StepFailed(f"{' '.join(map(str, command[:4]))}: timed out after {timeout:.0f}s (log: {log})") from None
    elapsed = time.perf_counter() - start
    text = out.decode("utf-8", "replace")
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(map(str, command))}\n{text}")
    if process.returncode != 0:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise StepFailed(f"{' '.join(map(str, command[:4]))}: exit {process.returncode}: {tail} (log: {log})")
    return elapsed, text
