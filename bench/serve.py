"""Benchmark ``mirror serve`` against devpi-server, pypiserver and nginx on one wheelhouse tree, with wrk.

Run from the repository root (the venv must have offline-mirror installed; ``wrk`` and ``nginx`` come from apt)::

    .venv/bin/python bench/serve.py [--duration 5] [--tree WHEELHOUSE] [--workdir DIR] [--keep]

The tree: ``--tree`` (any ``mirror index`` output), or by default a ``mirror sync`` of a few real packages
(requests and its dependencies, packaging, click) from PyPI for this host into the work directory. Every server
gets the same files, binds to 127.0.0.1 on a free port and runs alone while it is measured:

* the embedded server: ``python -m mirror serve --root TREE`` (access log lines written to a file, as a user
  running it with output redirected would have), and with ``-q`` (no access log);
* devpi-server (its own venv in the work directory; ``devpi-init --no-root-pypi``, an index ``root/bench`` with
  no bases, the files uploaded with ``devpi upload``);
* pypiserver (its own venv; ``pypi-server run`` over the files directory, its default server backend);
* nginx (``nginx -p PREFIX -c CONF``: the tree as static files, ``index.json`` chosen when Accept names the PEP 691
  JSON type, one worker per core).

Requests: ``/simple/requests/`` as HTML (``Accept: text/html``), as JSON (uv's Accept header) and one wheel, each at
1 and 8 connections, ``wrk -t1 -d DURATION`` after a 1 s warm-up, loopback only. A server that cannot be installed
or does not answer a request kind is reported as n/a and skipped. The goal: the embedded server at least 10x
devpi-server's requests per second on ``/simple/<project>/`` at 8 connections.
"""

from __future__ import annotations

import argparse
import contextlib
import html.parser
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

PROJECT = "requests"
PACKAGES = ("requests", "packaging", "click")
UV_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
KINDS = ("page HTML", "page JSON", "file")
CONNECTIONS = (1, 8)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str, accept: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode} before answering {url}")
        with contextlib.suppress(OSError):
            if fetch(url)[0] < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f}s")


def run(command: Sequence[str | Path], log: Path, env: dict[str, str] | None = None) -> None:
    """Run a setup command; its output goes to ``log``; a failure raises with the last lines."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(map(str, command))}\n".encode())
        out.flush()
        code = subprocess.call(list(map(str, command)), stdout=out, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(map(str, command[:3]))} exited {code}: {tail} (log: {log})")


def version_of(command: Sequence[str | Path]) -> str:
    try:
        done = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return "not installed"
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[-1] if text else "unknown"


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def wheel_url(page_url: str, wheel: str) -> str:
    """The absolute URL of ``wheel`` on the server's HTML project page (each server lays out files its own way)."""
    status, _, body = fetch(page_url, "text/html")
    if status != 200:
        raise RuntimeError(f"{page_url}: HTTP {status}")
    links = _Links()
    links.feed(body.decode("utf-8", errors="replace"))
    for href in links.hrefs:
        if href.split("#", 1)[0].endswith("/" + wheel):
            return urljoin(page_url, href.split("#", 1)[0])
    raise RuntimeError(f"{page_url} does not link {wheel}")


# --- the servers ------------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One server: ``start`` launches it on ``port`` and returns the process and its project page URL."""

    label: str
    start: Callable[[int], tuple[subprocess.Popen[bytes], str]] | None  # None: not available here
    version: str = ""
    results: dict[tuple[str, int], float | str] = field(default_factory=dict)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (it was started in a new session), SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def popen(command: Sequence[str | Path], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            list(map(str, command)), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=clean_env()
        )
    finally:
        out.close()


def make_venv(directory: Path, packages: Sequence[str], log: Path) -> Path:
    """A venv with ``packages`` installed with pip (reused if it already has them); its bin directory."""
    bin_dir = directory / "bin"
    marker = directory / ".bench-installed"
    if marker.is_file() and marker.read_text() == " ".join(packages):
        return bin_dir
    run([sys.executable, "-m", "venv", "--clear", directory], log)
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", *packages], log)
    marker.write_text(" ".join(packages))
    return bin_dir


def embedded(tree: Path, work: Path, quiet: bool) -> Subject:
    def start(port: int) -> tuple[subprocess.Popen[bytes], str]:
        command: list[str | Path] = [
            sys.executable,
            "-m",
            "mirror",
            "serve",
            "--root",
            tree,
            "--port",
            str(port),
            *(["-q"] if quiet else []),
        ]
        process = popen(command, work / f"embedded{'-q' if quiet else ''}.log")
        url = f"http://127.0.0.1:{port}/simple/{PROJECT}/"
        return process, url

    return Subject(
        label="mirror serve -q" if quiet else "mirror serve",
        start=start,
        version=version_of([sys.executable, "-m", "mirror", "--version"]),
    )


def devpi(tree: Path, work: Path, venvs: Path) -> Subject:
    log = work / "devpi.log"
    bin_dir = make_venv(venvs / "devpi", ["devpi-server", "devpi-client"], log)
    files = sorted(p for p in (tree / "files").glob("*/*") if p.name.endswith((".whl", ".tar.gz", ".zip")))

    def start(port: int) -> tuple[subprocess.Popen[bytes], str]:
        serverdir, clientdir = work / "devpi-server", work / "devpi-client"
        shutil.rmtree(serverdir, ignore_errors=True)
        shutil.rmtree(clientdir, ignore_errors=True)
        run([bin_dir / "devpi-init", "--serverdir", serverdir, "--no-root-pypi"], log, env=clean_env())
        command: list[str | Path] = [
            bin_dir / "devpi-server",
            "--serverdir",
            serverdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        process = popen(command, log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{url}/+api", process)
            devpi_cli: list[str | Path] = [bin_dir / "devpi", "--clientdir", clientdir]
            run([*devpi_cli, "use", url], log, env=clean_env())
            run([*devpi_cli, "login", "root", "--password", ""], log, env=clean_env())
            run([*devpi_cli, "index", "-c", "bench", "bases=", "volatile=False"], log, env=clean_env())
            run([*devpi_cli, "upload", "--index", "root/bench", *files], log, env=clean_env())
        except BaseException:
            stop(process)
            raise
        return process, f"{url}/root/bench/+simple/{PROJECT}/"

    return Subject(label="devpi-server", start=start, version=version_of([bin_dir / "devpi-server", "--version"]))


def pypiserver(tree: Path, work: Path, venvs: Path) -> Subject:
    log = work / "pypiserver.log"
    bin_dir = make_venv(venvs / "pypiserver", ["pypiserver"], log)

    def start(port: int) -> tuple[subprocess.Popen[bytes], str]:
        command: list[str | Path] = [
            bin_dir / "pypi-server",
            "run",
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "--disable-fallback",
        ]
        process = popen([*command, tree / "files"], log)
        return process, f"http://127.0.0.1:{port}/simple/{PROJECT}/"

    version = version_of([bin_dir / "pypi-server", "--version"])
    return Subject(label="pypiserver", start=start, version=f"{version} (default server backend)")


NGINX_CONF = """\
user root;
worker_processes auto;
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
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/html html; application/octet-stream whl; application/gzip gz; text/plain metadata; }}
    default_type application/octet-stream;
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ /\\. {{ return 404; }}
        location /simple/ {{
            index $simple_index;
            add_header Vary Accept;
            location ~ \\.json$ {{ types {{ }} default_type application/vnd.pypi.simple.v1+json; }}
        }}
        location /files/ {{ expires max; }}
    }}
}}
"""


def nginx(tree: Path, work: Path) -> Subject:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).is_file():
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    prefix = work / "nginx"

    def start(port: int) -> tuple[subprocess.Popen[bytes], str]:
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, root=tree.resolve()))
        run([binary, "-p", prefix, "-c", conf, "-t"], work / "nginx.log")
        process = popen([binary, "-p", prefix, "-c", conf, "-g", "daemon off;"], work / "nginx.log")
        return process, f"http://127.0.0.1:{port}/simple/{PROJECT}/"

    return Subject(label="nginx", start=start, version=version_of([binary, "-v"]))


# --- load ---------------------------------------------------------------------------------------------------


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=30, check=False)
    return (done.stdout + done.stderr).strip().splitlines()[0].split(" Copyright")[0]


def wrk(url: str, connections: int, duration: float, accept: str | None) -> float | str:
    """Requests per second, or why there is no number (non-2xx answers, socket errors, a wrk failure)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s"]
    if accept:
        command += ["-H", f"Accept: {accept}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        return f"wrk failed: {done.stderr.strip()[:200]}"
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    if rate is None:
        return f"no rate in wrk output: {done.stdout[-200:]}"
    if bad:
        return f"{bad.group(1)} non-2xx answers"
    if errors:
        return f"socket errors ({errors.group(1).strip()}) at {float(rate.group(1)):.0f} req/s"
    return float(rate.group(1))


def measure(subject: Subject, wheel: str, duration: float) -> None:
    assert subject.start is not None
    port = free_port()
    try:
        process, page_url = subject.start(port)
    except Exception as exc:
        for kind in KINDS:
            for connections in CONNECTIONS:
                subject.results[(kind, connections)] = f"did not start: {exc}"
        return
    try:
        wait_for(page_url, process)
        file_url = wheel_url(page_url, wheel)
        checks: dict[str, tuple[str, str | None]] = {
            "page HTML": (page_url, "text/html"),
            "page JSON": (page_url, UV_ACCEPT),
            "file": (file_url, None),
        }
        for kind, (url, accept) in checks.items():
            status, content_type, _ = fetch(url, accept)
            if status != 200:
                reason: str | None = f"HTTP {status}"
            elif kind == "page JSON" and "json" not in content_type:
                reason = f"answers {content_type.split(';')[0]}, not JSON"
            else:
                reason = None
            for connections in CONNECTIONS:
                if reason is not None:
                    subject.results[(kind, connections)] = reason
                    continue
                wrk(url, connections, 1, accept)  # warm-up
                subject.results[(kind, connections)] = wrk(url, connections, duration, accept)
                print(
                    f"  {subject.label}: {kind} x{connections}: {cell(subject.results[(kind, connections)])}",
                    flush=True,
                )
    except Exception as exc:
        for kind in KINDS:
            for connections in CONNECTIONS:
                subject.results.setdefault((kind, connections), f"failed: {exc}")
    finally:
        stop(process)


def ratio(mine: float | str | None, anchor: Subject | None, key: tuple[str, int]) -> str:
    theirs = anchor.results.get(key) if anchor else None
    if isinstance(mine, float) and isinstance(theirs, float) and theirs > 0:
        return f"{mine / theirs:.1f}x"
    return "n/a"


def cell(value: float | str | None) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    return "n/a"


def make_tree(work: Path) -> Path:
    """``mirror sync`` of PACKAGES from PyPI for this host into ``work/workspace``; its wheelhouse."""
    workspace = work / "workspace"
    wheelhouse = workspace / "wheelhouse"
    if (wheelhouse / "simple" / PROJECT / "index.html").is_file():
        return wheelhouse
    workspace.mkdir(parents=True, exist_ok=True)
    from mirror.targets import host_target

    host = host_target()
    packages = ", ".join(f'"{p}"' for p in PACKAGES)
    (workspace / "mirror.toml").write_text(
        '[mirror]\nupstream = "https://pypi.org/simple"\n'
        f'[[target]]\nplatform = "{host.platform}"\npython = "{host.python}"\n'
        f"[sources]\npackages = [{packages}]\n"
    )
    run(
        [sys.executable, "-m", "mirror", "sync", "--spec", workspace / "mirror.toml"],
        work / "sync.log",
        env=clean_env(),
    )
    return wheelhouse


@contextlib.contextmanager
def work_directory(path: Path | None, keep: bool) -> Iterator[Path]:
    work = (path or Path(tempfile.mkdtemp(prefix="bench-serve-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if keep or path is not None:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per measurement (default 5)")
    parser.add_argument("--tree", type=Path, help="a wheelhouse to serve (default: mirror sync a few packages)")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--venvs", type=Path, help="where devpi-server and pypiserver venvs live (reused if present)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--only", action="append", choices=["embedded", "devpi", "pypiserver", "nginx"], help="servers to run"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 60:
        parser.error("--duration must be between 1 and 60 seconds")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 1
    only = set(args.only or ["embedded", "devpi", "pypiserver", "nginx"])

    with work_directory(args.workdir, args.keep) as work:
        tree = args.tree.resolve() if args.tree else make_tree(work)
        venvs = (args.venvs or work / "venvs").resolve()
        page = tree / "simple" / PROJECT / "index.html"
        if not page.is_file():
            print(f"{tree} has no {PROJECT} project (simple/{PROJECT}/index.html)", file=sys.stderr)
            return 1
        wheel = re.findall(r">([^<]+\.whl)</a>", page.read_text())[-1]

        subjects: list[Subject] = []
        factories: list[tuple[str, Callable[[], Subject]]] = [
            ("embedded", lambda: embedded(tree, work, quiet=False)),
            ("embedded", lambda: embedded(tree, work, quiet=True)),
            ("devpi", lambda: devpi(tree, work, venvs)),
            ("pypiserver", lambda: pypiserver(tree, work, venvs)),
            ("nginx", lambda: nginx(tree, work)),
        ]
        labels = {"devpi": "devpi-server", "pypiserver": "pypiserver", "nginx": "nginx"}
        for key, factory in factories:
            if key not in only:
                continue
            try:
                subjects.append(factory())
            except Exception as exc:
                print(f"skipped {labels.get(key, key)}: {exc}", file=sys.stderr)
                subjects.append(Subject(label=labels.get(key, key), start=None, version=f"not available: {exc}"))

        print("# bench/serve.py — mirror serve vs devpi-server, pypiserver, nginx")
        print(f"machine:  {platform.platform()}, nproc {os.cpu_count()}; python {platform.python_version()}")
        print(f"tree:     {tree} ({len(list((tree / 'simple').glob('*/index.html')))} projects)")
        print(f"requests: /simple/{PROJECT}/ (HTML: Accept text/html; JSON: uv's Accept), file {wheel}")
        print(f"load:     {wrk_version()}; wrk -t1 -cN -d{args.duration:g}s after 1 s warm-up")
        for subject in subjects:
            print(f"server:   {subject.label}: {subject.version}")
        print(flush=True)
        for subject in subjects:
            if subject.start is not None:
                measure(subject, wheel, args.duration)

        devpi_subject = next((s for s in subjects if s.label == "devpi-server"), None)
        head = "| request | conns | " + " | ".join(s.label for s in subjects)
        ratios = [s for s in subjects if s.label.startswith("mirror serve")] if devpi_subject else []
        head += "".join(f" | {s.label} / devpi" for s in ratios) + " |"
        print()
        print(head)
        print("| --- | ---: |" + " ---: |" * (len(subjects) + len(ratios)))
        for kind in KINDS:
            for connections in CONNECTIONS:
                cells = [cell(s.results.get((kind, connections))) for s in subjects]
                for s in ratios:
                    cells.append(ratio(s.results.get((kind, connections)), devpi_subject, (kind, connections)))
                print(f"| {kind} | {connections} | " + " | ".join(cells) + " |")
        for subject in subjects:
            for (kind, connections), value in subject.results.items():
                if isinstance(value, str):
                    print(f"n/a: {subject.label}, {kind} x{connections}: {value}")
        if devpi_subject:
            for s in ratios:
                rates = [
                    (s.results.get((kind, 8)), devpi_subject.results.get((kind, 8)))
                    for kind in ("page HTML", "page JSON")
                ]
                pairs = [(m, d) for m, d in rates if isinstance(m, float) and isinstance(d, float) and d > 0]
                if pairs:
                    worst = min(m / d for m, d in pairs)
                    verdict = "met" if worst >= 10 else "MISSED"
                    print(
                        f"goal ({s.label} >= 10x devpi-server on /simple/<project>/ at 8 connections):"
                        f" {verdict} ({worst:.1f}x)"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
