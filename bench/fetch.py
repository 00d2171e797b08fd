"""Benchmark ``mirror fetch`` (4 targets) against ``pip download`` run once per target, from one local upstream.

Run from the repository root (the venv must have offline-mirror installed; pip comes with it)::

    .venv/bin/python bench/fetch.py [--runs 3] [--timeout 600] [--upstream-cache DIR] [--no-resolve-anchor]

Step 0 (untimed) makes a local upstream so that network noise does not decide the result: ``mirror lock`` of a
~20-package web-service set (Django, Celery, FastAPI, boto3, numpy, lxml, pillow, cryptography, ...) for the four
targets against PyPI, ``mirror fetch`` of it into ``--upstream-cache`` (kept between runs, so PyPI is asked
for nothing new the second time), then a PEP 503 ``simple/<project>/index.html`` tree (``#sha256=`` links) over
those files, served by a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (HTTP/1.1 keep-alive, ``sendfile``). The
set is locked again against that server, so the manifest's URLs -- and pip's ``--index-url`` -- point at it:
both sides download the same files from the same server. The server counts requests and bytes per run.

Timed variants, each with cold caches (a fresh output directory per run, ``--no-cache-dir`` for pip, no uv):

* ``mirror fetch`` of the 4 targets into an empty wheelhouse, ``--jobs 8`` (the default) and ``--jobs 1``;
* the warm re-run: ``mirror fetch`` again in the wheelhouse the ``--jobs 8`` run just filled (goal: <= 2 s, and
  the server sees no request);
* the anchor: ``pip download --only-binary=:all: --platform ... --python-version X.Y --implementation cp
  --abi cpXY --no-deps --require-hashes -r <target lockfile> -d DIR --no-cache-dir``, run once per target
  (4 sequential runs into one directory, as a user would; pip skips a file already there after checking its
  hash), timed in total. ``--no-deps`` with the complete pinned list: pip does no resolution work that mirror
  does not do either. ``--platform`` lists every platform tag the target accepts (``mirror targets --json``);
* a reference (``--no-resolve-anchor`` drops it): the same 4 pip runs without ``--no-deps`` (pip resolves the
  pinned set, as a plain ``pip download -r`` would).

Every variant runs ``--runs`` times (order rotated per round) after one untimed warm-up round; medians are
reported. Output goes to the work directory's disk (mirror fsyncs every file, pip does not; ``os.sync()`` runs
before each timed run so one run's writeback does not land in the next); ``--workdir /dev/shm/...`` shows the
same on tmpfs, where fsync costs nothing. The host's pip/uv configuration is kept out of every subprocess:
each ``PIP_*`` / ``UV_*`` variable is removed, ``PIP_CONFIG_FILE=/dev/null`` and ``UV_NO_CONFIG=1``.

The goal (docs/benchmarks.md): pip download (4 runs) / mirror fetch >= 4x; a warm re-run <= 2 s with zero
downloads.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import http.server
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIREMENTS = """\
# A Django + Celery + FastAPI web service, with the usual heavy binary wheels.
requests>=2.31
django>=4.2,<5.2
celery[redis]>=5.3
fastapi>=0.110
uvicorn>=0.27
sqlalchemy>=2.0
psycopg2-binary>=2.9
pydantic>=2.5
boto3>=1.34
cryptography>=42
pillow>=10.2
lxml>=5.1
numpy>=1.26
pyyaml>=6.0
gunicorn>=21.2
redis>=5.0
httpx>=0.26
jinja2>=3.1
"""

TARGETS = (("linux/amd64", "3.11"), ("linux/arm64", "3.12"), ("linux/amd64/musl", "3.12"), ("windows/amd64", "3.11"))

GOAL_RATIO = 4.0
GOAL_WARM_SECONDS = 2.0
_DOWNLOADED = re.compile(r"^downloaded (\d+) files", re.MULTILINE)


# -- environment and subprocesses --------------------------------------------------------------------------------


def clean_env(cache_home: Path) -> dict[str, str]:
    """The environment of every subprocess: no host pip/uv configuration, a private XDG cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env["XDG_CACHE_HOME"] = str(cache_home)
    return env


class StepFailed(Exception):
    pass


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float, log: Path) -> float:
    """Run ``command`` (its own session, output appended to ``log``); its wall time, or :class:`StepFailed`."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise StepFailed(f"timed out after {timeout:.0f}s (log: {log})") from None
        elapsed = time.perf_counter() - start
    if code != 0:
        tail = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:])
        raise StepFailed(f"exit {code}: {tail} (log: {log})")
    return elapsed


def output(command: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise StepFailed(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


# -- the local upstream -------------------------------------------------------------------------------------------


@dataclass
class ServerStats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    file_requests: int = 0
    nbytes: int = 0

    def snapshot(self) -> tuple[int, int, int]:
        with self.lock:
            return self.requests, self.file_requests, self.nbytes


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # 8 concurrent connections must never wait for a SYN retry
    stats: ServerStats

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its pool is not news
            super().handle_error(request, client_address)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with keep-alive and sendfile; counts every request it answers."""

    protocol_version = "HTTP/1.1"
    # headers and body are two writes: without TCP_NODELAY, Nagle + delayed ACK stall every small response ~40 ms
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        stats = self.server.stats
        with stats.lock:
            stats.requests += 1
            stats.file_requests += self.path.startswith("/files/")
        return super().send_head()

    def copyfile(self, source: Any, outputfile: Any) -> None:
        sent = self.connection.sendfile(source)
        with self.server.stats.lock:
            self.server.stats.nbytes += sent


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_simple_tree(files_dir: Path, root: Path) -> int:
    """``root/simple/<project>/index.html`` linking ``root/files`` (a symlink to ``files_dir``); file count."""
    if root.exists():
        shutil.rmtree(root)
    (root / "simple").mkdir(parents=True)
    (root / "files").symlink_to(files_dir.resolve(), target_is_directory=True)
    count = 0
    projects = []
    for project_dir in sorted(p for p in files_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in project_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            continue
        projects.append(project_dir.name)
        links = [
            f'<a href="../../files/{project_dir.name}/{html.escape(f.name)}#sha256={sha256_of(f)}">'
            f"{html.escape(f.name)}</a><br>"
            for f in files
        ]
        page = root / "simple" / project_dir.name / "index.html"
        page.parent.mkdir()
        page.write_text("<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n", encoding="utf-8")
        count += len(files)
    index = "\n".join(f'<a href="{name}/">{name}</a><br>' for name in projects)
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{index}\n</body></html>\n")
    return count


def start_server(root: Path) -> tuple[_Server, ServerStats]:
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.stats = ServerStats()
    threading.Thread(target=server.serve_forever, name="upstream", daemon=True).start()
    return server, server.stats


# -- workspaces ---------------------------------------------------------------------------------------------------


def spec_text(upstream: str, wheelhouse: str = "wheelhouse", lockfiles: str = "lockfiles") -> str:
    lines = ["[mirror]", f'upstream = "{upstream}"', f'wheelhouse = "{wheelhouse}"', f'lockfiles = "{lockfiles}"']
    for plat, python in TARGETS:
        lines += ["", "[[target]]", f'platform = "{plat}"', f'python = "{python}"']
    lines += ["", "[sources]", 'requirements = ["requirements.txt"]', ""]
    lines += ["[policy]", 'sdists = "never"', "build-wheels = false", ""]
    return "\n".join(lines)


def make_workspace(directory: Path, upstream: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    (directory / "mirror.toml").write_text(spec_text(upstream), encoding="utf-8")


def manifest_files(workspace: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((workspace / "lockfiles" / "mirror.lock.json").read_text(encoding="utf-8"))
    files: dict[str, dict[str, Any]] = data["files"]
    return files


def tree_files(directory: Path) -> dict[str, int]:
    """Distribution files (name -> size) under ``directory`` (flat or one level of project folders)."""
    out: dict[str, int] = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and path.suffix in (".whl", ".gz", ".zip"):
            out[path.name] = path.stat().st_size
    return out


@dataclass(frozen=True)
class PipTarget:
    name: str
    python: str  # "3.11"
    platforms: tuple[str, ...]  # every platform tag the target accepts, best first


def pip_targets(py: str, workspace: Path, env: dict[str, str]) -> list[PipTarget]:
    report = json.loads(output([py, "-m", "mirror", "targets", "--json", "--tags", "100000"], env, cwd=workspace))
    out = []
    for entry in report:
        platforms: list[str] = []
        for tag in entry["tags"]:
            plat = tag.rsplit("-", 1)[1]
            if plat != "any" and plat not in platforms:
                platforms.append(plat)
        out.append(PipTarget(name=entry["name"], python=entry["python"], platforms=tuple(platforms)))
    return out


# -- variants -----------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    files: int
    nbytes: int
    requests: int
    file_requests: int
    served: int
    names: frozenset[str] = frozenset()
    downloaded: int | None = None  # mirror's own count


@dataclass
class Variant:
    label: str
    execute: Callable[[Path], Sample]  # a fresh directory in, one measurement out
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self) -> float | None:
        return statistics.median(s.seconds for s in self.samples) if self.samples else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per subprocess (default 600)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with offline-mirror and pip")
    parser.add_argument("--pypi", default="https://pypi.org/simple", help="where step 0 gets the files once")
    parser.add_argument(
        "--upstream-cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "offline-mirror-bench" / "fetch",
        help="step 0's workspace: the files fetched once from --pypi, kept between runs (default %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-jobs1", action="store_true", help="skip the mirror fetch --jobs 1 variant")
    parser.add_argument("--no-resolve-anchor", action="store_true", help="skip pip download with resolution")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-fetch-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache = args.upstream_cache.resolve()
    env = clean_env(work / "xdg-cache")
    py = args.python
    timeout = args.timeout
    log = work / "step0.log"

    # -- step 0: the local upstream (untimed) --
    print("# bench/fetch.py — mirror fetch (4 targets) vs pip download (once per target)", flush=True)
    step0_start = time.perf_counter()
    try:
        make_workspace(cache, args.pypi)
        cache_env = clean_env(cache / "xdg-cache")
        print(f"step 0: mirror lock + fetch from {args.pypi} into {cache} (untimed) ...", file=sys.stderr, flush=True)
        run([py, "-m", "mirror", "lock"], cwd=cache, env=cache_env, timeout=timeout, log=log)
        run([py, "-m", "mirror", "fetch", "--no-build"], cwd=cache, env=cache_env, timeout=timeout, log=log)
        upstream_root = work / "upstream"
        served_files = write_simple_tree(cache / "wheelhouse" / "files", upstream_root)
        server, stats = start_server(upstream_root)
        local_index = f"http://127.0.0.1:{server.server_address[1]}/simple"
        lockspace = work / "local-lock"
        make_workspace(lockspace, local_index)
        print(f"step 0: mirror lock against {local_index} ...", file=sys.stderr, flush=True)
        run([py, "-m", "mirror", "lock"], cwd=lockspace, env=env, timeout=timeout, log=log)
        pypi_files, local_files = manifest_files(cache), manifest_files(lockspace)
        if set(pypi_files) != set(local_files):
            raise StepFailed(
                f"the lock against the local upstream differs from PyPI's: {len(set(pypi_files) ^ set(local_files))}"
                f" files (compare {cache}/lockfiles and {lockspace}/lockfiles)"
            )
        remote = sorted(n for n, f in local_files.items() if not str(f.get("url")).startswith(local_index[:-6]))
        if remote:
            raise StepFailed(f"{len(remote)} locked URLs do not point at {local_index}, e.g. {remote[0]}")
        targets = pip_targets(py, lockspace, env)
        pip_version = output([py, "-m", "pip", "--version"], env).split()[1]
        mirror_version = output([py, "-m", "mirror", "--version"], env).strip()
    except (StepFailed, OSError, ValueError, KeyError) as exc:
        print(f"step 0 failed: {exc}", file=sys.stderr)
        print(f"work directory kept: {work}")
        return 1
    step0 = time.perf_counter() - step0_start
    cached = tree_files(cache / "wheelhouse" / "files")
    locked_bytes = sum(cached.get(name, 0) for name in local_files)
    per_target = {
        t.name: sum(1 for line in (lockspace / "lockfiles" / f"{t.name}.txt").read_text().splitlines() if "==" in line)
        for t in targets
    }

    # -- the variants --
    def measure(start: tuple[int, int, int], seconds: float, out_dir: Path, downloaded: int | None = None) -> Sample:
        requests, file_requests, served = (b - a for a, b in zip(start, stats.snapshot(), strict=True))
        present = tree_files(out_dir)
        return Sample(
            seconds=seconds,
            files=len(present),
            nbytes=sum(present.values()),
            requests=requests,
            file_requests=file_requests,
            served=served,
            names=frozenset(present),
            downloaded=downloaded,
        )

    def fetch_once(directory: Path, jobs: int) -> tuple[float, int | None]:
        before = (directory / "run.log").stat().st_size if (directory / "run.log").exists() else 0
        seconds = run(
            [py, "-m", "mirror", "fetch", "--jobs", str(jobs)],
            cwd=directory,
            env=env,
            timeout=timeout,
            log=directory / "run.log",
        )
        with (directory / "run.log").open("rb") as handle:
            handle.seek(before)
            match = _DOWNLOADED.search(handle.read().decode("utf-8", "replace"))
        return seconds, int(match.group(1)) if match else None

    def prepare_mirror(directory: Path) -> None:
        make_workspace(directory, local_index)
        shutil.copytree(lockspace / "lockfiles", directory / "lockfiles")

    warm: list[Sample] = []

    def mirror_variant(jobs: int, with_warm: bool) -> Callable[[Path], Sample]:
        def execute(directory: Path) -> Sample:
            prepare_mirror(directory)
            start = stats.snapshot()
            seconds, downloaded = fetch_once(directory, jobs)
            sample = measure(start, seconds, directory / "wheelhouse" / "files", downloaded)
            if with_warm:
                start = stats.snapshot()
                seconds, downloaded = fetch_once(directory, jobs)
                warm.append(measure(start, seconds, directory / "wheelhouse" / "files", downloaded))
            return sample

        return execute

    def pip_variant(no_deps: bool) -> Callable[[Path], Sample]:
        def execute(directory: Path) -> Sample:
            directory.mkdir(parents=True)
            dest = directory / "downloads"
            start = stats.snapshot()
            total = 0.0
            for target in targets:
                abi = "cp" + target.python.replace(".", "")
                command = [py, "-m", "pip", "download", "--only-binary=:all:"]
                for plat in target.platforms:
                    command += ["--platform", plat]
                command += ["--python-version", target.python, "--implementation", "cp", "--abi", abi]
                command += [*(["--no-deps"] if no_deps else []), "--require-hashes"]
                command += ["-r", str(lockspace / "lockfiles" / f"{target.name}.txt"), "-d", str(dest)]
                command += ["--index-url", local_index, "--no-cache-dir", "--disable-pip-version-check", "-q"]
                total += run(command, cwd=directory, env=env, timeout=timeout, log=directory / "run.log")
            return measure(start, total, dest)

        return execute

    variants = [
        Variant("pip download --no-deps, 4 runs (anchor)", pip_variant(True)),
        Variant("mirror fetch --jobs 8, 4 targets", mirror_variant(8, True)),
    ]
    if not args.no_jobs1:
        variants.append(Variant("mirror fetch --jobs 1, 4 targets", mirror_variant(1, False)))
    if not args.no_resolve_anchor:
        variants.append(Variant("pip download with resolution, 4 runs", pip_variant(False)))
    anchor, main_variant = variants[0], variants[1]

    print(f"command:    {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:    {platform.platform()}, nproc {os.cpu_count()}, work dir on {_fs(work)}")
    print(f"python:     {platform.python_version()} ({py}); pip {pip_version}; {mirror_version}")
    print(
        f"input:      {len(re.findall(r'^[a-z]', REQUIREMENTS, re.MULTILINE))} top-level requirements -> pins per"
        f" target: " + ", ".join(f"{n} {c}" for n, c in per_target.items())
    )
    print(
        f"locked:     {len(local_files)} distinct files, {locked_bytes / 1e6:.1f} MB, for "
        + ", ".join(f"{p} {v}" for p, v in TARGETS)
    )
    print(
        f"upstream:   {local_index} (stdlib ThreadingHTTPServer, HTTP/1.1, sendfile) serving {served_files} files"
        f" fetched once from {args.pypi}; both sides lock/download from it only"
    )
    print(f"step 0:     {step0:.1f}s untimed (lock from PyPI, fetch into {cache}, index, lock against 127.0.0.1)")
    print(
        "pip:        --only-binary=:all: --platform <every platform tag of the target> --python-version X.Y"
        " --implementation cp --abi cpXY --no-deps --require-hashes -r <target lockfile> -d <one dir>"
        " --no-cache-dir; --no-deps: pip resolves nothing (mirror does not either), the pinned list is complete"
    )
    print("env:        PIP_* and UV_* removed, PIP_CONFIG_FILE=/dev/null, UV_NO_CONFIG=1")
    print(
        f"runs:       1 warm-up + {args.runs} timed rounds, fresh directory per run, timeout {timeout:.0f}s", flush=True
    )

    failed = False
    for round_no in range(args.runs + 1):
        name = "warm-up" if round_no == 0 else f"round {round_no}/{args.runs}"
        shift = round_no % len(variants)
        if round_no == 1:
            warm.clear()
        for variant in variants[shift:] + variants[:shift]:
            directory = work / "runs" / f"r{round_no}-v{variants.index(variant)}"
            os.sync()  # the previous run's dirty pages must not be written back during this one (mirror fsyncs)
            try:
                sample = variant.execute(directory)
            except (StepFailed, OSError) as exc:
                variant.failures.append(str(exc))
                print(f"  {name}: {variant.label}: FAILED {exc}", file=sys.stderr, flush=True)
                failed = True
                continue
            finally:
                if not args.keep and directory.exists():
                    shutil.rmtree(directory, ignore_errors=True)
            if round_no > 0:
                variant.samples.append(sample)
            print(
                f"  {name}: {variant.label}: {sample.seconds:.2f}s, {sample.files} files,"
                f" {sample.served / 1e6:.1f} MB served in {sample.requests} requests",
                file=sys.stderr,
                flush=True,
            )

    # -- report --
    rows: list[tuple[str, list[Sample]]] = [(v.label, v.samples) for v in variants]
    rows.insert(2, ("mirror fetch warm re-run (nothing new)", warm))
    width = max(len(label) for label, _ in rows)
    print()
    print(f"| {'variant':<{width}} | median s | min s | runs | files | MB on disk | MB served | requests |")
    print(f"| {'-' * width} | -------: | ----: | ---: | ----: | ---------: | --------: | -------: |")
    for label, samples in rows:
        if not samples:
            print(f"| {label:<{width}} | {'n/a':>8} | {'n/a':>5} | {0:>4} |")
            continue
        last = samples[-1]
        print(
            f"| {label:<{width}} | {statistics.median(s.seconds for s in samples):8.2f} |"
            f" {min(s.seconds for s in samples):5.2f} | {len(samples):>4} | {last.files:>5} |"
            f" {last.nbytes / 1e6:10.1f} | {statistics.median(s.served for s in samples) / 1e6:9.1f} |"
            f" {statistics.median(s.requests for s in samples):8.0f} |"
        )
    print()

    def ratio(slow: Variant, fast: Variant) -> float | None:
        a, b = slow.median(), fast.median()
        return a / b if a is not None and b else None

    for slow, fast in [(anchor, v) for v in variants[1:] if v.label.startswith("mirror")] + [
        (v, main_variant) for v in variants[2:] if v.label.startswith("pip")
    ]:
        value = ratio(slow, fast)
        print(f"{slow.label} / {fast.label}: {'n/a' if value is None else f'{value:.2f}x'}")
    goal = ratio(anchor, main_variant)
    if goal is not None:
        same = anchor.samples[-1].names == main_variant.samples[-1].names
        print(f"same files on both sides: {'yes' if same else 'NO'} ({len(main_variant.samples[-1].names)} files)")
        verdict = "met" if goal >= GOAL_RATIO else "MISSED"
        print(f"goal (pip download, 4 runs / mirror fetch >= {GOAL_RATIO:.0f}x): {verdict} ({goal:.2f}x)")
    if warm:
        seconds = statistics.median(s.seconds for s in warm)
        requests = max(s.requests for s in warm)
        downloads = max((s.downloaded or 0) for s in warm)
        ok = seconds <= GOAL_WARM_SECONDS and requests == 0 and downloads == 0
        print(
            f"goal (warm re-run <= {GOAL_WARM_SECONDS:.0f} s, zero downloads): {'met' if ok else 'MISSED'}"
            f" ({seconds:.2f}s median, {requests} requests to the server, {downloads} files downloaded)"
        )

    for variant in variants:
        for failure in variant.failures:
            print(f"failure: {variant.label}: {failure}", file=sys.stderr)
    server.shutdown()
    if args.keep or args.workdir is not None or failed:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _fs(path: Path) -> str:
    """The filesystem type holding ``path`` (Linux /proc/mounts), for the report."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown fs"
    best = max((m for m in mounts if str(path).startswith(m[1])), key=lambda m: len(m[1]), default=None)
    return f"{best[2]} ({best[1]})" if best else "unknown fs"


if __name__ == "__main__":
    sys.exit(main())
