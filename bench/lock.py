"""Benchmark ``mirror lock`` against ``pip-compile --generate-hashes`` on one ~60-package requirements set.

Run from the repository root (the venv must have offline-mirror, uv and pip-tools installed)::

    .venv/bin/python bench/lock.py [--runs 5] [--index URL] [--timeout 900]

Variants, all on the same ``requirements.txt`` (Django + Celery + FastAPI; ``docopt`` ships only an sdist, so
mirror's build closure is exercised):

* anchor: ``python -m piptools compile --generate-hashes`` for this host;
* reference: the same without ``--generate-hashes`` (resolution only; not the goal's anchor);
* ``mirror lock`` with 1 target (this host's platform and Python) and with 4 targets, each with a *cold*
  build-requirement cache (a fresh ``wheelhouse/`` per run: the sdist is downloaded and its backend asked every
  time) and a *warm* one (one ``wheelhouse/`` shared by every run, so its sha256-keyed
  ``.cache/build-requirements`` answers).

Every run gets a fresh directory, so neither tool finds a previous output to use as preferences. One untimed
warm-up round runs every variant first; then ``--runs`` rounds are timed (variant order rotated per round) and
the median and minimum wall times are reported. The HTTP/resolver caches of uv, pip and pip-tools are private
to the benchmark (``XDG_CACHE_HOME`` inside the work directory; ``--host-caches`` uses yours) and warm after the
warm-up round. The host's pip/uv configuration is kept out: every ``PIP_*`` / ``UV_*`` variable is removed,
``PIP_CONFIG_FILE=/dev/null`` and ``UV_NO_CONFIG=1``.

The goal (docs/benchmarks.md): ``mirror lock`` for 4 targets, build closure included, in at most 1.0x the time
pip-compile takes for one target.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REQUIREMENTS = """\
# A Django + Celery + FastAPI service; docopt ships only an sdist (its build requirements get locked).
django>=4.2,<5.2
djangorestframework>=3.14
celery[redis]>=5.3
fastapi>=0.110
uvicorn[standard]>=0.27
sqlalchemy>=2.0
psycopg2-binary>=2.9
pydantic>=2.5
requests>=2.31
httpx>=0.26
boto3>=1.34
gunicorn>=21.2
redis>=5.0
jinja2>=3.1
pyyaml>=6.0
python-dotenv>=1.0
pyjwt>=2.8
cryptography>=42
pillow>=10.2
lxml>=5.1
docopt==0.6.2
"""

#: the other three of the four targets (the host is the first)
OTHER_TARGETS = (("linux/arm64", "3.12"), ("linux/amd64/musl", "3.12"), ("windows/amd64", "3.11"))

ANCHOR = "pip-compile --generate-hashes"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==", re.MULTILINE)


def host_platform() -> str:
    """This machine as a ``mirror.toml`` platform (glibc assumed on Linux)."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform)
    if arch is None or system is None:
        sys.exit(f"bench/lock.py: no mirror platform for {sys.platform}/{machine}")
    return f"{system}/{arch}"


def clean_env(cache_home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
    return env


def spec_text(index: str, targets: Sequence[tuple[str, str]], wheelhouse: Path | None) -> str:
    lines = ["[mirror]", f'upstream = "{index}"']
    if wheelhouse is not None:
        lines.append(f'wheelhouse = "{wheelhouse.as_posix()}"')
    for plat, python in targets:
        lines += ["", "[[target]]", f'platform = "{plat}"', f'python = "{python}"']
    lines += ["", "[sources]", 'requirements = ["requirements.txt"]', ""]
    return "\n".join(lines)


def load_average() -> str:
    """The 1/5/15-minute load averages (a busy machine makes the timings noisy), or "n/a"."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def count_pins(text: str) -> int:
    return len(_PIN.findall(text))


@dataclass
class Variant:
    """One way of locking the requirements; ``prepare`` fills a fresh run directory and returns the command."""

    label: str
    prepare: Callable[[Path], list[str]]
    pins: Callable[[Path], str]
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    last_pins: set[str] = field(default_factory=set)


def run_once(variant: Variant, directory: Path, env: dict[str, str], timeout: float) -> float | str:
    """Run the variant in ``directory``; its wall time, or a one-line failure."""
    directory.mkdir(parents=True)
    (directory / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    command = variant.prepare(directory)
    log = directory / "output.log"
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: uv and build hooks go with it
            process.wait()
            return f"timed out after {timeout:.0f}s (log: {log})"
        elapsed = time.perf_counter() - start
    if code != 0:
        tail = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:])
        return f"exit {code}: {tail} (log: {log})"
    variant.last_pins.add(variant.pins(directory))
    return elapsed


def tool_version(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[-1] if done.returncode == 0 else "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed rounds after the warm-up (default 5)")
    parser.add_argument("--index", default="https://pypi.org/simple", help="the simple index both sides use")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per run (default 900)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with offline-mirror and pip-tools")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--host-caches", action="store_true", help="use your own uv/pip caches, not private ones")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-lock-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache_home = None if args.host_caches else work / "cache"
    env = clean_env(cache_home)
    py = args.python
    host_python = tool_version([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], env)
    host = (host_platform(), host_python)
    shared_wheelhouse = work / "shared-wheelhouse"

    def pip_compile(hashes: bool) -> Callable[[Path], list[str]]:
        def prepare(directory: Path) -> list[str]:
            return [
                py,
                "-m",
                "piptools",
                "compile",
                *(["--generate-hashes"] if hashes else []),
                "--index-url",
                args.index,
                "--no-emit-index-url",
                "--quiet",
                "--output-file",
                "requirements.lock.txt",
                "requirements.txt",
            ]

        return prepare

    def pip_compile_pins(directory: Path) -> str:
        return str(count_pins((directory / "requirements.lock.txt").read_text(encoding="utf-8")))

    def mirror(targets: Sequence[tuple[str, str]], warm: bool) -> Callable[[Path], list[str]]:
        def prepare(directory: Path) -> list[str]:
            text = spec_text(args.index, targets, shared_wheelhouse if warm else None)
            (directory / "mirror.toml").write_text(text, encoding="utf-8")
            return [py, "-m", "mirror", "lock", "--spec", "mirror.toml"]

        return prepare

    def mirror_pins(directory: Path) -> str:
        runtime: list[str] = []
        build: list[str] = []
        for path in sorted((directory / "lockfiles").glob("*.txt")):
            if path.name.endswith(".build-unhashed.txt"):  # the build lock again, for older pips
                continue
            n = count_pins(path.read_text(encoding="utf-8"))
            (build if path.name.endswith(".build.txt") else runtime).append(str(n))
        return f"{'/'.join(runtime)} + {'/'.join(build)} build"

    four = [host, *OTHER_TARGETS]
    variants = [
        Variant(label=ANCHOR, prepare=pip_compile(True), pins=pip_compile_pins),
        Variant(label="pip-compile (no hashes; reference)", prepare=pip_compile(False), pins=pip_compile_pins),
        Variant(label="mirror lock, 1 target, cold build-cache", prepare=mirror([host], False), pins=mirror_pins),
        Variant(label="mirror lock, 1 target, warm build-cache", prepare=mirror([host], True), pins=mirror_pins),
        Variant(label="mirror lock, 4 targets, cold build-cache", prepare=mirror(four, False), pins=mirror_pins),
        Variant(label="mirror lock, 4 targets, warm build-cache", prepare=mirror(four, True), pins=mirror_pins),
    ]

    print("# bench/lock.py — mirror lock vs pip-compile")
    executable = Path(sys.executable)
    if executable.is_relative_to(Path.cwd()):
        executable = executable.relative_to(Path.cwd())
    print(f"command:    {' '.join([str(executable), *sys.argv])}")
    print(f"machine:    {platform.platform()}, nproc {os.cpu_count()}, load average {load_average()}")
    print(f"python:     {host_python} ({py})")
    print(f"uv:         {tool_version([py, '-m', 'uv', '--version'], env)}")
    pip_tools = tool_version([py, "-c", "import importlib.metadata as m; print(m.version('pip-tools'))"], env)
    print(f"pip-tools:  {pip_tools}; pip {tool_version([py, '-m', 'pip', '--version'], env).split()[1]}")
    print(f"mirror:     {tool_version([py, '-m', 'mirror', '--version'], env)}")
    print(f"index:      {args.index}")
    print(f"targets:    1 = {host[0]} {host[1]}; 4 = " + ", ".join(f"{p} {v}" for p, v in four))
    roots = [line for line in REQUIREMENTS.splitlines() if line.strip() and not line.startswith("#")]
    print(f"input:      {len(roots)} top-level requirements (docopt is sdist-only)")
    caches = "your own (--host-caches)" if cache_home is None else f"private, {cache_home}"
    print(f"caches:     uv/pip/pip-tools: {caches}; warm after the untimed warm-up round")
    print(f"build-cache: cold = fresh wheelhouse per run; warm = one shared wheelhouse ({shared_wheelhouse})")
    print("env:        PIP_* and UV_* removed, PIP_CONFIG_FILE=/dev/null, UV_NO_CONFIG=1")
    print(
        f"runs:       1 warm-up + {args.runs} timed rounds, fresh output directory per run, "
        f"timeout {args.timeout:.0f}s; work dir {work}",
        flush=True,
    )

    failed = False
    for round_no in range(args.runs + 1):
        name = "warm-up" if round_no == 0 else f"round {round_no}/{args.runs}"
        shift = round_no % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            index = variants.index(variant)
            result = run_once(variant, work / "runs" / f"r{round_no}-v{index}", env, args.timeout)
            if isinstance(result, str):
                variant.failures.append(result)
                print(f"  {name}: {variant.label}: FAILED {result}", file=sys.stderr, flush=True)
                if round_no == 0:
                    failed = True
            else:
                if round_no > 0:
                    variant.times.append(result)
                print(f"  {name}: {variant.label}: {result:.2f}s", file=sys.stderr, flush=True)
        if failed:
            print("the warm-up failed; nothing to measure", file=sys.stderr)
            break

    anchor = variants[0]
    anchor_median = statistics.median(anchor.times) if anchor.times else None
    width = max(len(v.label) for v in variants)
    print()
    print(f"| {'variant':<{width}} | median s |  min s | runs ok | / anchor | pins (runtime + build, per target) |")
    print(f"| {'-' * width} | -------: | -----: | ------: | -------: | --- |")
    for variant in variants:
        ok = f"{len(variant.times)}/{args.runs}"
        if variant.times:
            median, best = statistics.median(variant.times), min(variant.times)
            rel = f"{median / anchor_median:.2f}x" if anchor_median else "n/a"
            cells = f"{median:8.2f} | {best:6.2f} | {ok:>7} | {rel:>8}"
        else:
            cells = f"{'n/a':>8} | {'n/a':>6} | {ok:>7} | {'n/a':>8}"
        pins = ", ".join(sorted(variant.last_pins)) or "n/a"
        if len(variant.last_pins) > 1:
            pins += " (differed between runs)"
        print(f"| {variant.label:<{width}} | {cells} | {pins} |")

    def ratio(variant: Variant, against: Variant) -> float | None:
        if not variant.times or not against.times:
            return None
        return statistics.median(variant.times) / statistics.median(against.times)

    print()
    reference = variants[1]
    for variant in variants[2:]:
        r, ref = ratio(variant, anchor), ratio(variant, reference)
        text = "n/a" if r is None else f"{r:.2f}x"
        text += "" if ref is None else f"   (vs pip-compile without hashes: {ref:.2f}x)"
        print(f"{variant.label} / {ANCHOR}: {text}")
    goal = [ratio(v, anchor) for v in variants[4:]]
    if all(r is not None for r in goal):
        worst = max(r for r in goal if r is not None)
        verdict = "met" if worst <= 1.0 else "MISSED"
        print(f"goal (4 targets with build closure <= 1.0x pip-compile, one target): {verdict} (worst {worst:.2f}x)")

    for variant in variants:
        for failure in variant.failures:
            print(f"failure: {variant.label}: {failure}", file=sys.stderr)
    print(f"load average at the end: {load_average()} (other work on the machine widens the spread)")
    failed = failed or any(v.failures for v in variants)
    if args.keep or args.workdir is not None or failed:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
