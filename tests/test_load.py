"""Load: ``mirror serve`` (a subprocess) answers 10,000 requests over 64 concurrent keep-alive connections on
127.0.0.1 with zero errors, and its memory stays bounded (VmRSS from /proc before and after).

The mix is what installers ask plus what attackers try: negotiated pages, files whole and by Range, HEAD,
conditional requests, unknown projects and traversal attempts — each with the status it must get. The figures are
printed (pytest -s) for docs/reliability.md; time is recorded, not asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirror.serve import JSON_V1
from tests.fixtures.env import synced_workspace
from tests.fixtures.server import Upstream, free_port

REQUESTS = 10_000
CONNECTIONS = 64
RSS_GROWTH_LIMIT_KB = 64 * 1024  # generous: the page cache of a small tree is a few hundred kB


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


@pytest.fixture(scope="module")
def served(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.Popen[bytes], int, Path]:
    workspace = synced_workspace(tmp_path_factory.mktemp("load"), upstream, ["om-pure==2.0", "om-native"])
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mirror", "serve", "--spec", str(workspace / "mirror.toml"), "--port", str(port), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.05)
    yield process, port, workspace
    process.terminate()
    process.wait(30)


def request_mix(workspace: Path) -> list[tuple[bytes, str, int]]:
    """(raw request, method, expected status) — cycled over."""
    wheel = next((workspace / "wheelhouse" / "files" / "om-pure").glob("*.whl"))
    file = f"/files/om-pure/{wheel.name}"
    size = wheel.stat().st_size

    def get(target: str, *headers: str, method: str = "GET") -> bytes:
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    return [
        (get("/simple/om-pure/", f"Accept: {JSON_V1}"), "GET", 200),
        (get("/simple/om-pure/", "Accept: text/html"), "GET", 200),
        (get("/simple/"), "GET", 200),
        (get(file), "GET", 200),
        (get(file + ".metadata"), "GET", 200),
        (get(file, "Range: bytes=0-99"), "GET", 206),
        (get(file, f"Range: bytes={size}-"), "GET", 416),
        (get(file, method="HEAD"), "HEAD", 200),
        (get(file, 'If-None-Match: "no-such-etag"'), "GET", 200),
        (get("/simple/OM_Pure/"), "GET", 301),
        (get("/simple/no-such-project/"), "GET", 404),
        (get("/files/%2e%2e/%2e%2e/etc/passwd"), "GET", 404),
        (get("/simple/", method="POST").replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"), "POST", 405),
    ]


async def hammer(port: int, mix: list[tuple[bytes, str, int]]) -> tuple[int, list[str]]:
    """Send REQUESTS requests over CONNECTIONS keep-alive connections; (answered, errors)."""
    counter = itertools.count()
    errors: list[str] = []
    answered = 0

    async def connection() -> None:
        nonlocal answered
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (n := next(counter)) < REQUESTS:
                raw, method, expected = mix[n % len(mix)]
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                match = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
                if method != "HEAD" and status != 304 and match:
                    await reader.readexactly(int(match.group(1)))
                answered += 1
                if status != expected:
                    errors.append(f"{raw.splitlines()[0]!r}: {status}, expected {expected}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(f"connection failed: {exc!r}")
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(CONNECTIONS))), timeout=180)
    return answered, errors


def test_10000_requests_over_64_connections(served: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    process, port, workspace = served
    mix = request_mix(workspace)
    asyncio.run(hammer_warmup(port, mix))
    before = rss_kb(process.pid)
    started = time.monotonic()
    answered, errors = asyncio.run(hammer(port, mix))
    elapsed = time.monotonic() - started
    after = rss_kb(process.pid)
    print(
        f"\nload: {answered} requests over {CONNECTIONS} connections in {elapsed:.2f}s "
        f"({answered / elapsed:.0f} req/s), {len(errors)} errors; server VmRSS {before} kB before, {after} kB after"
    )
    assert errors[:5] == []
    assert answered == REQUESTS
    assert after - before < RSS_GROWTH_LIMIT_KB
    assert process.poll() is None  # still serving


async def hammer_warmup(port: int, mix: list[tuple[bytes, str, int]]) -> None:
    """One of each request first, so 'before' is measured with the page cache loaded."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for raw, method, _ in mix:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
        if method != "HEAD" and b" 304 " not in head.split(b"\r\n")[0] and match:
            await reader.readexactly(int(match.group(1)))
    writer.close()
