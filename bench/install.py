"""Benchmark installs from ``mirror serve`` against the same tree behind nginx and in devpi-server, with uv and pip.

Run from the repository root (the venv must have offline-mirror, uv, pip and devpi-server -- the ``test`` extra;
``nginx`` comes from apt)::

    .venv/bin/python bench/install.py [--runs 5] [--pip-runs 3] [--upstream-cache DIR] [--workdir DIR] [--keep]

Step 0 (untimed): ``mirror sync`` of bench/lock.py's requirement set (Django + Celery + FastAPI, 21 top-level
requirements, about 62 pins; docopt ships only an sdist, so its wheel is built here) for this host's target from
PyPI into ``--upstream-cache`` (kept between runs; ``--refresh`` syncs again). That one tree is then served on
127.0.0.1, each server on a free port, all three running for the whole benchmark:

* **embedded**: ``python -m mirror serve --root TREE`` (access log lines to a file, as a user running it with
  output redirected would have);
* **nginx**: the config ``mirror nginx-config --root TREE --listen 127.0.0.1:PORT`` writes, included in a minimal
  ``nginx.conf`` (``worker_processes auto``, buffered access log), ``nginx -p PREFIX -c CONF``;
* **devpi-server**: ``python -m mirror devpi-serve`` (devpi-init without a PyPI mirror, the wheelhouse uploaded
  into an index with no bases).

Timed, each into a fresh venv (created untimed, ``--without-pip``) with its own empty cache, no configuration and
only the local index:

* ``uv pip install --no-cache --python VENV --index-url URL -r <target lockfile>`` (hashes in the lock are
  verified);
* ``python -m pip --python VENV install --no-cache-dir --require-hashes --index-url URL -r <target lockfile>``
  (this venv's pip).

One untimed warm-up round runs every (client, server) pair; then ``--runs`` rounds for uv and ``--pip-runs`` for
pip (pip is slow; its pairs run in the first rounds), the pair order rotated per round; median and minimum wall
time. After each install the venv must hold every pinned distribution. Every ``PIP_*`` / ``UV_*`` variable is
removed, ``PIP_CONFIG_FILE=/dev/null``, ``UV_NO_CONFIG=1``, ``XDG_CACHE_HOME`` and ``UV_CACHE_DIR`` point into the
run's own empty directory, and no proxy is used for 127.0.0.1. Nothing but step 0 leaves the machine.

The goal (docs/benchmarks.md): installing from the embedded server takes at most 1.2x the time from nginx.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _common import StepFailed, clean_env, load_average, run
from lock import REQUIREMENTS  # bench/lock.py: the same ~60-package set
from serve import free_port, stop, wait_for

GOAL = 1.2
SERVERS = ("embedded", "nginx", "devpi")
CLIENTS = ("uv", "pip")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def output(command: Sequence[str | Path], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        list(map(str, command)), capture_output=True, text=True, timeout=120, check=False, env=env or clean_env()
    )
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[-1] if done.returncode == 0 else "unknown"


def popen(command: Sequence[str | Path], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(map(str, command)),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )


# -- step 0: the tree -----------------------------------------------------------------------------------------


def make_tree(cache: Path, py: str, refresh: bool, timeout: float) -> tuple[Path, Path]:
    """``mirror sync`` of the requirement set for this host into ``cache``; (its wheelhouse, the target lockfile)."""
    from mirror.targets import host_target

    host = host_target()
    cache.mkdir(parents=True, exist_ok=True)
    spec = cache / "mirror.toml"
    lockfile = cache / "lockfiles" / f"{host.name}.txt"
    wheelhouse = cache / "wheelhouse"
    (cache / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    spec.write_text(
        '[mirror]\nupstream = "https://pypi.org/simple"\n\n'
        f'[[target]]\nplatform = "{host.platform}"\npython = "{host.python}"\n\n'
        '[sources]\nrequirements = ["requirements.txt"]\n',
        encoding="utf-8",
    )
    if refresh or not lockfile.is_file() or not (wheelhouse / "simple" / "index.html").is_file():
        print(f"step 0: mirror sync from PyPI into {cache} (untimed) ...", file=sys.stderr, flush=True)
        run([py, "-m", "mirror", "sync", "--spec", spec], log=cache / "sync.log", timeout=timeout)
    else:
        run([py, "-m", "mirror", "index", "--spec", spec], log=cache / "sync.log", timeout=timeout)
    return wheelhouse, lockfile


# -- the servers --------------------------------------------------------------------------------------------


@dataclass
class Server:
    key: str
    label: str
    version: str
    index_url: str
    process: subprocess.Popen[bytes]


NGINX_CONF = """\
{user}worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/conf.d/*.conf;
}}
"""


def start_embedded(py: str, tree: Path, work: Path) -> Server:
    port = free_port()
    log = work / "embedded.log"
    process = popen([py, "-m", "mirror", "serve", "--root", tree, "--port", str(port)], log)
    server = Server("embedded", "mirror serve", output([py, "-m", "mirror", "--version"]), "", process)
    server.index_url = f"http://127.0.0.1:{port}/simple/"
    wait_for(server.index_url, process)
    return server


def start_nginx(py: str, tree: Path, work: Path) -> Server:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).is_file():
        raise StepFailed("nginx is not installed (apt-get install -y nginx)")
    prefix = work / "nginx"
    for sub in ("conf.d", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work / "nginx.log"
    config: list[str | Path] = [py, "-m", "mirror", "nginx-config", "--root", tree, "--listen", f"127.0.0.1:{port}"]
    run([*config, "-o", prefix / "conf.d" / "mirror.conf"], log=log, timeout=60)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers as nobody could not read a tree under /root
    (prefix / "nginx.conf").write_text(NGINX_CONF.format(user=user, prefix=prefix), encoding="utf-8")
    run([binary, "-p", prefix, "-c", prefix / "nginx.conf", "-t"], log=log, timeout=60)
    process = popen([binary, "-p", prefix, "-c", prefix / "nginx.conf", "-g", "daemon off;"], log)
    server = Server("nginx", "nginx", output([binary, "-v"]), f"http://127.0.0.1:{port}/simple/", process)
    wait_for(server.index_url, process)
    return server


def start_devpi(py: str, spec: Path, work: Path, timeout: float) -> Server:
    port = free_port()
    log = work / "devpi.log"
    serverdir = work / "devpi-server"
    shutil.rmtree(serverdir, ignore_errors=True)
    process = popen(
        [py, "-m", "mirror", "devpi-serve", "--spec", spec, "--serverdir", serverdir, "--port", str(port)], log
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # devpi-serve prints the index URL once the wheelhouse is uploaded
        match = re.search(r"^index: (\S+)", log.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
        if match:
            bin_dir = Path(py).parent
            version = output([bin_dir / "devpi-server", "--version"])
            return Server("devpi", "devpi-server", f"devpi-server {version}", match.group(1), process)
        if process.poll() is not None:
            raise StepFailed(f"mirror devpi-serve exited {process.returncode} (log: {log})")
        time.sleep(0.5)
    stop(process)
    raise StepFailed(f"mirror devpi-serve printed no index URL within {timeout:.0f}s (log: {log})")


# -- the installs ---------------------------------------------------------------------------------------------


@dataclass
class Variant:
    client: str
    server: Server
    runs: int
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.client} from {self.server.label}"


def installed(venv: Path) -> set[str]:
    code = (
        "import importlib.metadata as m, re\n"
        "print('\\n'.join(sorted(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() for d in m.distributions())))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    return set(done.stdout.split())


def install_once(variant: Variant, directory: Path, *, py: str, uv: str, lockfile: Path, timeout: float) -> float:
    """Create a fresh venv (untimed) and install the lock into it from the variant's server; the install's time."""
    directory.mkdir(parents=True)
    venv = directory / "venv"
    env = clean_env(directory / "cache")
    log = directory / "install.log"
    run([py, "-m", "venv", "--without-pip", venv], log=log, timeout=timeout, env=env)
    target = venv / "bin" / "python"
    url = variant.server.index_url
    if variant.client == "uv":
        command: list[str | Path] = [uv, "pip", "install", "--no-cache", "--python", target, "--index-url", url]
        command += ["-r", lockfile]
    else:
        command = [py, "-m", "pip", "--python", target, "install", "--no-cache-dir", "--require-hashes"]
        command += ["--index-url", url, "--disable-pip-version-check", "--no-input", "-q", "-r", lockfile]
    return run(command, log=log, timeout=timeout, env=env)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed rounds for uv (default 5)")
    parser.add_argument("--pip-runs", type=int, default=3, help="timed rounds for pip (default 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per step (default 600)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with offline-mirror, pip and devpi")
    parser.add_argument(
        "--upstream-cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "offline-mirror-bench" / "install",
        help="step 0's workspace: the tree synced once from PyPI, kept between runs (default %(default)s)",
    )
    parser.add_argument("--refresh", action="store_true", help="sync the tree from PyPI again")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--only", action="append", choices=SERVERS, help="servers to run (default: all)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pip_runs < 0:
        parser.error("--runs must be at least 1 and --pip-runs at least 0")
    py = args.python
    uv = str(Path(py).parent / "uv") if (Path(py).parent / "uv").exists() else shutil.which("uv")
    if uv is None:
        print("uv is not installed next to --python nor on PATH", file=sys.stderr)
        return 1

    load_start = load_average()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-install-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache = args.upstream_cache.resolve()
    servers: list[Server] = []
    failed = False
    print("# bench/install.py — uv and pip installs from mirror serve, nginx and devpi-server", flush=True)
    try:
        tree, lockfile = make_tree(cache, py, args.refresh, args.timeout)
        pins = dict(_PIN.findall(lockfile.read_text(encoding="utf-8")))
        wanted = {re.sub(r"[-_.]+", "-", name).lower() for name in pins}
        starters: dict[str, Callable[[], Server]] = {
            "embedded": lambda: start_embedded(py, tree, work),
            "nginx": lambda: start_nginx(py, tree, work),
            "devpi": lambda: start_devpi(py, cache / "mirror.toml", work, args.timeout),
        }
        for key in SERVERS:
            if key in (args.only or SERVERS):
                print(f"starting {key} ...", file=sys.stderr, flush=True)
                servers.append(starters[key]())

        variants = [
            Variant(client, server, args.runs if client == "uv" else args.pip_runs)
            for client in CLIENTS
            for server in servers
        ]
        variants = [v for v in variants if v.runs > 0]
        rounds = max(v.runs for v in variants)
        print(f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(f"machine:  {platform.platform()}, nproc {os.cpu_count()}, load average {load_start} at the start")
        print(
            f"python:   {platform.python_version()} ({py}); {output([uv, '--version'])};"
            f" pip {output([py, '-m', 'pip', '--version']).split()[1]}"
        )
        for server in servers:
            print(f"server:   {server.label}: {server.version}, {server.index_url}")
        print(f"input:    {lockfile} ({len(pins)} pins), tree {tree}")
        print(
            f"runs:     1 warm-up + {args.runs} timed rounds for uv, {args.pip_runs} for pip; order rotated per round;"
            " fresh venv (untimed) and empty caches per install",
            flush=True,
        )

        for round_no in range(rounds + 1):
            name = "warm-up" if round_no == 0 else f"round {round_no}/{rounds}"
            todo = [v for v in variants if round_no == 0 or len(v.times) < v.runs]
            shift = round_no % len(todo)
            for variant in todo[shift:] + todo[:shift]:
                directory = work / "runs" / f"r{round_no}-{variant.client}-{variant.server.key}"
                try:
                    seconds = install_once(variant, directory, py=py, uv=uv, lockfile=lockfile, timeout=args.timeout)
                    missing = wanted - installed(directory / "venv")
                    if missing:
                        raise StepFailed(f"not installed: {', '.join(sorted(missing))}")
                except (StepFailed, OSError) as exc:
                    variant.failures.append(str(exc))
                    print(f"  {name}: {variant.label}: FAILED {exc}", file=sys.stderr, flush=True)
                    failed = True
                    continue
                finally:
                    if not args.keep:
                        shutil.rmtree(directory, ignore_errors=True)
                if round_no > 0:
                    variant.times.append(seconds)
                print(f"  {name}: {variant.label}: {seconds:.2f}s", file=sys.stderr, flush=True)
    except (StepFailed, OSError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        print(f"work directory kept: {work}")
        return 1
    finally:
        for server in servers:
            stop(server.process)

    width = max(len(v.label) for v in variants)
    print()
    print(f"| {'variant':<{width}} | median s | min s | runs ok |")
    print(f"| {'-' * width} | -------: | ----: | ------: |")
    for v in variants:
        if v.times:
            med, low = statistics.median(v.times), min(v.times)
            print(f"| {v.label:<{width}} | {med:8.2f} | {low:5.2f} | {len(v.times):>3}/{v.runs:<3} |")
        else:
            print(f"| {v.label:<{width}} | {'n/a':>8} | {'n/a':>5} | {0:>3}/{v.runs:<3} |")
    print()
    medians = {(v.client, v.server.key): statistics.median(v.times) for v in variants if v.times}
    verdicts = []
    for client in CLIENTS:
        mine = medians.get((client, "embedded"))
        for other in ("nginx", "devpi"):
            theirs = medians.get((client, other))
            if mine is not None and theirs:
                print(f"{client}: embedded / {other}: {mine / theirs:.2f}x")
                if other == "nginx":
                    verdicts.append((client, mine / theirs))
    for client, value in verdicts:
        print(f"goal ({client}: embedded <= {GOAL:g}x nginx): {'met' if value <= GOAL else 'MISSED'} ({value:.2f}x)")
    for v in variants:
        for failure in v.failures:
            print(f"failure: {v.label}: {failure}", file=sys.stderr)
    print(f"load average at the end: {load_average()}")
    if args.keep or args.workdir is not None or failed:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
