"""mirror serve: the embedded server over a synced wheelhouse, for real (pip, uv, raw HTTP on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uv

from mirror import _atomic
from mirror.serve import (
    HTML_V1,
    JSON_V1,
    ServeError,
    Server,
    negotiate,
    parse_range,
    route,
    serving,
)
from mirror.targets import host_target
from tests.fixtures.env import isolated_env, pip_command, synced_workspace
from tests.fixtures.server import AccessLog, Upstream, http_request

HOST = host_target()
SECRET = b"TOP-SECRET-outside-the-tree\n"
BIG_SIZE = 1024 * 1024 + 7  # above SMALL_FILE: sent with sendfile


@pytest.fixture(scope="module")
def workspace(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace synced from the fixture upstream for this host, plus hostile extras in and next to the tree."""
    root = synced_workspace(tmp_path_factory.mktemp("serve"), upstream, ["om-pure==2.0", "om-native"])
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    files = root / "wheelhouse" / "files"
    (files / "om-pure" / "escape.whl").symlink_to(outside / "secret.txt")
    (files / "escape").symlink_to(outside, target_is_directory=True)
    (files / "om-dep" / ".om_dep-2.0-py3-none-any.whl.part").write_bytes(SECRET)
    (files / "om-big").mkdir()
    (files / "om-big" / "om_big-1.0-py3-none-any.whl").write_bytes(bytes(range(256)) * (BIG_SIZE // 256) + b"x" * 7)
    (files / "om-big" / "om_big-1.0.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    (root / "wheelhouse" / "projects" / "om-evil.html").symlink_to(outside / "secret.txt")
    return root


@pytest.fixture(scope="module")
def access_log() -> AccessLog:
    return AccessLog()


@pytest.fixture(scope="module")
def server(workspace: Path, access_log: AccessLog) -> Iterator[Server]:
    with serving(workspace / "wheelhouse", access_log=access_log) as running:
        yield running


def get(server: Server, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    result = http_request(server.url.rstrip("/") + path, headers=headers)
    return result.status, dict(result.headers), result.body


def exchange(server: Server, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on one connection; everything the server sends until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def responses(data: bytes, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """Split raw HTTP/1.1 responses (bodies framed by Content-Length; none for HEAD and 304)."""
    out = []
    for method in methods:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response; left: {head[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        status = int(status_line.split(" ")[1])
        length = 0 if method == "HEAD" or status == 304 else int(headers.get("content-length", "0"))
        out.append((status, headers, data[:length]))
        data = data[length:]
    assert data == b"", f"unexpected trailing bytes: {data[:200]!r}"
    return out


def wheel_path(workspace: Path, project: str) -> Path:
    return next((workspace / "wheelhouse" / "files" / project).glob(f"{project.replace('-', '_')}-*.whl"))


# --- real clients -----------------------------------------------------------------------------------------


def test_pip_installs_the_lock_with_require_hashes(
    server: Server, workspace: Path, access_log: AccessLog, tmp_path: Path
) -> None:
    access_log.clear()
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        pip_command(
            "install",
            server.index_url,
            "--require-hashes",
            "--target",
            str(tmp_path / "site"),
            "-r",
            str(workspace / "lockfiles" / f"{HOST.name}.txt"),
        ),
        env=isolated_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    installed = sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info"))
    assert installed == ["om_dep-1.0.dist-info", "om_native-1.0.dist-info", "om_pure-2.0.dist-info"]
    assert "/simple/om-pure/" in access_log.paths()
    assert all(r.status in (200, 304) for r in access_log.records)


def test_uv_resolves_from_metadata_and_downloads_only_what_it_installs(
    server: Server, access_log: AccessLog, tmp_path: Path
) -> None:
    uv_bin = uv.find_uv_bin()
    (tmp_path / "home").mkdir()
    env = isolated_env(tmp_path / "home", extra={"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    venv = tmp_path / "venv"
    made = subprocess.run(
        [uv_bin, "venv", "--no-cache", "--python", sys.executable, str(venv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    access_log.clear()
    done = subprocess.run(
        [
            uv_bin,
            "pip",
            "install",
            "--no-cache",
            "--python",
            str(venv / "bin" / "python"),
            "--default-index",
            server.index_url,
            "om-pure==2.0",
            "om-native",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    gets = access_log.paths()
    wheels = [p for p in gets if p.endswith(".whl")]
    metadata = [p for p in gets if p.endswith(".whl.metadata")]
    assert sorted(p.rsplit("/", 1)[1].split("-")[0] for p in wheels) == ["om_dep", "om_native", "om_pure"]
    for wheel in wheels:  # every wheel's dependencies were read from its .metadata file, before the download
        assert wheel + ".metadata" in metadata
        assert gets.index(wheel + ".metadata") < gets.index(wheel)
    assert "/simple/om-pure/" in gets


# --- content negotiation ----------------------------------------------------------------------------------

PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"


@pytest.mark.parametrize(
    ("accept", "query", "status", "content_type"),
    [
        (None, "", 200, "text/html; charset=utf-8"),
        ("", "", 200, "text/html; charset=utf-8"),
        ("*/*", "", 200, "text/html; charset=utf-8"),
        ("application/*", "", 200, HTML_V1),
        ("text/*", "", 200, "text/html; charset=utf-8"),
        (JSON_V1, "", 200, JSON_V1),
        (HTML_V1, "", 200, HTML_V1),
        ("application/vnd.pypi.simple.latest+json", "", 200, JSON_V1),
        (PIP_ACCEPT, "", 200, JSON_V1),
        (f"{JSON_V1};q=0.2, {HTML_V1};q=0.9", "", 200, HTML_V1),
        (f"text/html;q=0.5, {JSON_V1};q=0.5", "", 200, "text/html; charset=utf-8"),
        (f"*/*;q=0.1, {JSON_V1}", "", 200, JSON_V1),
        (f"{JSON_V1};q=0, */*", "", 200, "text/html; charset=utf-8"),
        (f"application/*;q=0, {JSON_V1}", "", 200, JSON_V1),
        ("application/json", "", 406, "text/plain; charset=utf-8"),
        (f"{JSON_V1};q=0", "", 406, "text/plain; charset=utf-8"),
        ("image/png, application/xml", "", 406, "text/plain; charset=utf-8"),
        ("text/html", f"?format={JSON_V1}", 200, JSON_V1),
        ("application/json", f"?format={HTML_V1}", 200, HTML_V1),
        (None, "?format=text/html", 200, "text/html; charset=utf-8"),
        (None, "?format=application/json", 406, "text/plain; charset=utf-8"),
    ],
)
def test_negotiation(server: Server, accept: str | None, query: str, status: int, content_type: str) -> None:
    headers = {} if accept is None else {"Accept": accept}
    for path in ("/simple/", "/simple/om-pure/"):
        got_status, got_headers, body = get(server, path + query, **headers)
        assert (got_status, got_headers["content-type"]) == (status, content_type)
        assert got_headers["vary"] == "Accept"
        if content_type == JSON_V1:
            assert json.loads(body)["meta"] == {"api-version": "1.1"}


def test_negotiated_pages_are_the_files_of_the_tree(server: Server, workspace: Path) -> None:
    simple = workspace / "wheelhouse" / "simple"
    _, json_headers, json_body = get(server, "/simple/om-pure/", Accept=JSON_V1)
    _, html_headers, html_body = get(server, "/simple/om-pure/", Accept="text/html")
    assert json_body == (simple / "om-pure" / "index.json").read_bytes()
    assert html_body == (simple / "om-pure" / "index.html").read_bytes()
    assert json_headers["etag"] != html_headers["etag"]
    assert json_headers["cache-control"] == "public, max-age=60"
    status, static_headers, static_body = get(server, "/simple/om-pure/index.json")
    assert (status, static_body, static_headers["content-type"]) == (200, json_body, JSON_V1)
    assert "vary" not in static_headers  # one URL, one representation
    assert get(server, "/simple/om-pure/", Accept=JSON_V1)[1]["vary"] == "Accept"
    assert get(server, "/")[2] == (workspace / "wheelhouse" / "index.html").read_bytes()


@pytest.mark.parametrize("page", ["use.html", "projects/om-pure.html", "projects/om-native.html"])
def test_pages_for_people_are_the_files_of_the_tree(server: Server, workspace: Path, page: str) -> None:
    status, headers, body = get(server, "/" + page)
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert body == (workspace / "wheelhouse" / page).read_bytes()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("text/plain", None),
        ("TEXT/HTML;Q=0.5", "text/html"),
        ("text/html;q=2", None),
        ("text/html;q=abc, application/vnd.pypi.simple.v1+json;q=0.3", JSON_V1),
        ("application/*;q=0.3, application/vnd.pypi.simple.v1+json;q=0.2", HTML_V1),
    ],
)
def test_negotiate_table(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


# --- redirects and 404s -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/om-pure", "/simple/om-pure/"),
        ("/simple/OM_Pure/", "/simple/om-pure/"),
        ("/simple/om.pure", "/simple/om-pure/"),
        ("/simple/Om__Pure/?format=text/html", "/simple/om-pure/?format=text/html"),
    ],
)
def test_non_normalized_names_redirect(server: Server, path: str, location: str) -> None:
    status, headers, _ = get(server, path)
    assert (status, headers["location"]) == (301, location)


@pytest.mark.parametrize(
    "path", ["/simple/no-such-project/", "/simple/no-such-project/index.json", "/files/om-pure/nope.whl", "/files/"]
)
def test_unknown_is_404(server: Server, path: str) -> None:
    status, _, body = get(server, path, Accept=JSON_V1)
    assert status == 404
    assert body.startswith(b"404 Not Found")


# --- files: HEAD, Range, conditional requests -------------------------------------------------------------


def test_file_get_and_head(server: Server, workspace: Path) -> None:
    wheel = wheel_path(workspace, "om-pure")
    url = f"/files/om-pure/{wheel.name}"
    status, headers, body = get(server, url)
    assert (status, body) == (200, wheel.read_bytes())
    assert headers["content-type"] == "application/octet-stream"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["accept-ranges"] == "bytes"
    result = http_request(server.url.rstrip("/") + url, method="HEAD")
    assert (result.status, result.body) == (200, b"")
    assert result.headers["content-length"] == str(wheel.stat().st_size)
    assert result.headers["etag"] == headers["etag"]
    status, headers, body = get(server, url + ".metadata")
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert body == Path(str(wheel) + ".metadata").read_bytes()
    status, headers, _ = get(server, "/files/om-big/om_big-1.0.tar.gz")
    assert (status, headers["content-type"], headers.get("content-encoding")) == (200, "application/gzip", None)


def test_large_file_is_sent_whole(server: Server, workspace: Path) -> None:
    big = workspace / "wheelhouse" / "files" / "om-big" / "om_big-1.0-py3-none-any.whl"
    status, headers, body = get(server, "/files/om-big/om_big-1.0-py3-none-any.whl")
    assert (status, int(headers["content-length"])) == (200, BIG_SIZE)
    assert hashlib.sha256(body).digest() == hashlib.sha256(big.read_bytes()).digest()


@pytest.mark.parametrize(
    ("range_header", "status", "content_range", "span"),
    [
        ("bytes=0-9", 206, f"bytes 0-9/{BIG_SIZE}", (0, 10)),
        ("bytes=1000000-", 206, f"bytes 1000000-{BIG_SIZE - 1}/{BIG_SIZE}", (1000000, BIG_SIZE)),
        ("bytes=-5", 206, f"bytes {BIG_SIZE - 5}-{BIG_SIZE - 1}/{BIG_SIZE}", (BIG_SIZE - 5, BIG_SIZE)),
        ("bytes=300000-999999", 206, f"bytes 300000-999999/{BIG_SIZE}", (300000, 1000000)),
        (f"bytes=5-{BIG_SIZE * 2}", 206, f"bytes 5-{BIG_SIZE - 1}/{BIG_SIZE}", (5, BIG_SIZE)),
        (f"bytes={BIG_SIZE}-", 416, f"bytes */{BIG_SIZE}", None),
        ("bytes=-0", 416, f"bytes */{BIG_SIZE}", None),
        ("bytes=9-2", 200, None, (0, BIG_SIZE)),
        ("bytes=abc", 200, None, (0, BIG_SIZE)),
        ("items=0-9", 200, None, (0, BIG_SIZE)),
        ("bytes=0-1,5-6", 200, None, (0, BIG_SIZE)),
    ],
)
def test_range(
    server: Server,
    workspace: Path,
    range_header: str,
    status: int,
    content_range: str | None,
    span: tuple[int, int] | None,
) -> None:
    data = (workspace / "wheelhouse" / "files" / "om-big" / "om_big-1.0-py3-none-any.whl").read_bytes()
    got_status, headers, body = get(server, "/files/om-big/om_big-1.0-py3-none-any.whl", Range=range_header)
    assert (got_status, headers.get("content-range")) == (status, content_range)
    if span is not None:
        assert body == data[span[0] : span[1]]
        assert int(headers["content-length"]) == span[1] - span[0]


def test_if_range_with_a_stale_validator_sends_everything(server: Server, workspace: Path) -> None:
    url = "/files/om-big/om_big-1.0-py3-none-any.whl"
    etag = get(server, url)[1]["etag"]
    assert get(server, url, Range="bytes=0-9", **{"If-Range": etag})[0] == 206
    status, _, body = get(server, url, Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert (status, len(body)) == (200, BIG_SIZE)


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-0", 1, (0, 0)),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=-10", 4, (0, 3)),
        ("bytes=-10", 0, "unsatisfiable"),
        ("bytes = 2 - 3", 10, (2, 3)),
        ("bytes=²-3", 10, None),
        ("bytes=-", 10, None),
        ("bytes=3", 10, None),
    ],
)
def test_parse_range_table(value: str, size: int, expected: object) -> None:
    assert parse_range(value, size) == expected


@pytest.mark.parametrize("path", ["/simple/om-pure/", "/files/om-dep/om_dep-1.0-py3-none-any.whl"])
def test_etag_and_last_modified_give_304(server: Server, path: str) -> None:
    status, headers, _ = get(server, path, Accept=JSON_V1)
    assert status == 200
    etag, last_modified = headers["etag"], headers["last-modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for conditional in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-None-Match": "*"}):
        status, headers, body = get(server, path, Accept=JSON_V1, **conditional)
        assert (status, body, headers["etag"]) == (304, b"", etag)
    assert get(server, path, Accept=JSON_V1, **{"If-None-Match": '"other"'})[0] == 200
    assert get(server, path, Accept=JSON_V1, **{"If-Modified-Since": last_modified})[0] == 304
    assert get(server, path, Accept=JSON_V1, **{"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    # If-None-Match wins over If-Modified-Since
    assert (
        get(server, path, Accept=JSON_V1, **{"If-None-Match": '"other"', "If-Modified-Since": last_modified})[0] == 200
    )


def test_a_rewritten_page_is_served_at_once(server: Server, workspace: Path) -> None:
    page = workspace / "wheelhouse" / "simple" / "om-dep" / "index.html"
    original = page.read_bytes()
    try:
        assert get(server, "/simple/om-dep/")[2] == original
        _atomic.write_bytes(page, original.replace(b"Links for", b"Links (new) for"))
        assert b"Links (new) for" in get(server, "/simple/om-dep/")[2]
        page.write_bytes(original.replace(b"Links for", b"Links (two) for"))  # in place, same inode
        os.utime(page, ns=(time.time_ns(), time.time_ns() + 10_000_000))
        assert b"Links (two) for" in get(server, "/simple/om-dep/")[2]
    finally:
        _atomic.write_bytes(page, original)
    assert get(server, "/simple/om-dep/")[2] == original


# --- nothing outside the tree -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/files/../../etc/passwd", 404),
        ("/files/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/files/%2E%2E/%2E%2E/outside/secret.txt", 404),
        ("/simple/..%2f..%2fsecret", 404),
        ("/simple/..%2F..%2Foutside%2Fsecret.txt", 404),
        ("/files/om-pure/..%5c..%5c..%5coutside%5csecret.txt", 404),
        ("/files/om-pure\\..\\..\\..\\outside\\secret.txt", 404),
        ("/files/om-pure/%00", 400),
        ("/files/om-pure/x%00.whl", 400),
        ("/etc/passwd", 404),
        ("//etc/passwd", 404),
        ("/files//etc/passwd", 404),
        ("http://127.0.0.1/../../outside/secret.txt", 404),
        ("../outside/secret.txt", 400),
        ("/files/om-pure/escape.whl", 404),
        ("/files/escape/secret.txt", 404),
        ("/files/.verified.json", 404),
        ("/files/om-dep/.om_dep-2.0-py3-none-any.whl.part", 404),
        ("/simple/.state.json", 404),
        ("/built-wheels.json", 404),
        ("/compile-report.json", 404),
        ("/files/om-pure/%ff.whl", 400),
        ("/projects/om-evil.html", 404),
        ("/projects/..%2f..%2foutside%2fsecret.txt", 404),
        ("/projects/../../outside/secret.txt", 404),
        ("/.changes.json", 404),
        ("/projects/.om-pure.html.a1b2c3.part", 404),
    ],
)
def test_no_path_leaves_the_tree(server: Server, target: str, status: int) -> None:
    reply = exchange(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    [(got, _, body)] = responses(reply, ["GET"])
    assert got == status
    assert SECRET not in body and b"root:" not in body


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("/", "page"),
        ("/simple/", "negotiated"),
        ("/simple/om-pure/", "negotiated"),
        ("/simple/om-pure/index.json", "page"),
        ("/simple/OM-pure/index.json", "not-found"),
        ("/files/om-pure/a.whl", "file"),
        ("/files/om-pure/a%20b.whl", "file"),
        ("/files/om-pure/a.whl/", "not-found"),
        ("/files/om-pure/./a.whl", "not-found"),
        ("/files/om-pure/.a.whl", "not-found"),
        ("/files/om-pure/a.whl?x=1#frag", "file"),
        ("/simple/a%0d%0aLocation:x/", "not-found"),
        ("*", "bad-request"),
        ("/use.html", "page"),
        ("/projects/om-pure.html", "page"),
        ("/projects/om-pure.html?q=x", "page"),
        ("/projects/OM-pure.html", "not-found"),
        ("/projects/om_pure.html", "not-found"),
        ("/projects/om-pure", "not-found"),
        ("/projects/", "not-found"),
        ("/projects/.html", "not-found"),
        ("/projects/om-pure.html/", "not-found"),
        ("/projects/x/om-pure.html", "not-found"),
    ],
)
def test_route_table(target: str, kind: str) -> None:
    assert route(target).kind == kind


# --- methods, framing, keep-alive -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_write_methods_are_405(server: Server, method: str) -> None:
    result = http_request(server.url + "simple/om-pure/", method=method)
    assert (result.status, result.headers["allow"]) == (405, "GET, HEAD")


def test_pipelined_requests_are_answered_in_order(server: Server, workspace: Path) -> None:
    wheel = wheel_path(workspace, "om-dep")
    big = "/files/om-big/om_big-1.0-py3-none-any.whl"
    requests = (
        f"GET /simple/om-dep/ HTTP/1.1\r\nHost: x\r\nAccept: {JSON_V1}\r\n\r\n"
        f"GET {big} HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world"
        f"HEAD /files/om-dep/{wheel.name} HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /simple/nope/ HTTP/1.1\r\nHost: x\r\n\r\n"
        f"GET /files/om-dep/{wheel.name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        "GET /never-answered HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()
    got = responses(exchange(server, requests), ["GET", "GET", "POST", "HEAD", "GET", "GET"])
    assert [status for status, _, _ in got] == [200, 200, 405, 200, 404, 200]
    assert json.loads(got[0][2])["name"] == "om-dep"
    assert len(got[1][2]) == BIG_SIZE
    assert got[3][1]["content-length"] == str(wheel.stat().st_size)
    assert got[5][2] == wheel.read_bytes()
    assert got[5][1]["connection"] == "close"


def test_request_split_across_packets_and_bare_lf(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for piece in (b"GET /simple/om-dep/ HT", b"TP/1.1\r\nAccept: text/html\r", b"\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.05)
        sock.sendall(b"GET /simple/ HTTP/1.1\nConnection: close\n\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert [status for status, _, _ in responses(data, ["GET", "GET"])] == [200, 200]


@pytest.mark.parametrize(
    ("request_bytes", "closes", "connection_header"),
    [
        (b"GET /simple/ HTTP/1.0\r\n\r\n", True, "close"),
        (b"GET /simple/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, "keep-alive"),
        (b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n", False, None),
        (b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", True, "close"),
    ],
)
def test_keep_alive(server: Server, request_bytes: bytes, closes: bool, connection_header: str | None) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request_bytes)
        data = b""
        while b"</html>" not in data:
            chunk = sock.recv(65536)
            assert chunk, "closed before the response was complete"
            data += chunk
        [(status, headers, _)] = responses(data, ["GET"])
        assert (status, headers.get("connection")) == (200, connection_header)
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        assert closed == closes


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET /simple/ HTTP/1.1\r\n Folded: x\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_malformed_requests_get_an_error_and_a_close(server: Server, request_bytes: bytes, status: int) -> None:
    [(got, headers, _)] = responses(exchange(server, request_bytes), ["GET"])
    assert (got, headers["connection"]) == (status, "close")


# --- access log, errors, CLI ------------------------------------------------------------------------------


def test_access_log_records_each_request(server: Server, access_log: AccessLog) -> None:
    access_log.clear()
    get(server, "/simple/om-pure/", Accept=JSON_V1)
    get(server, "/simple/nope/")
    [ok, missing] = access_log.records
    assert (ok.client, ok.method, ok.target, ok.status) == ("127.0.0.1", "GET", "/simple/om-pure/", 200)
    assert ok.nbytes == len(get(server, "/simple/om-pure/", Accept=JSON_V1)[2]) and ok.duration >= 0
    assert (missing.status, missing.target) == (404, "/simple/nope/")
    assert ok.format().startswith('127.0.0.1 "GET /simple/om-pure/" 200 ')


def test_start_errors(server: Server, workspace: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(ServeError, match=r"^cannot listen on 127\.0\.0\.1:\d+: Address already in use$"),
        serving(workspace / "wheelhouse", port=server.port),
    ):
        pass
    with pytest.raises(ServeError, match=r": no such directory \(run mirror sync, or pass --root\)$"):
        Server(tmp_path / "missing")
    with pytest.raises(ServeError, match=r": not an index tree: simple/index.html is missing \(run mirror index\)$"):
        Server(tmp_path)


def test_cli_prints_the_urls_and_access_lines_and_stops_on_sigterm(workspace: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mirror", "serve", "--spec", str(workspace / "mirror.toml"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(5)]
        index_url = banner[1].removeprefix("index URL: ").strip()
        assert banner[0] == f"serving {workspace / 'wheelhouse'} at {index_url.removesuffix('simple/')}\n"
        assert banner[2].strip() == f"pip install --index-url {index_url} PACKAGE"
        assert banner[3].strip().startswith(f"uv pip install --default-index {index_url} PACKAGE")
        assert f"UV_DEFAULT_INDEX={index_url}" in banner[3]
        assert http_request(index_url + "om-pure/").status == 200
        size = (workspace / "wheelhouse" / "simple" / "om-pure" / "index.html").stat().st_size
        assert re.fullmatch(rf'127\.0\.0\.1 "GET /simple/om-pure/" 200 {size} \d+\.\d\dms\n', process.stdout.readline())
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.endswith("stopped\n")


def test_idle_and_slow_connections_are_closed(workspace: Path) -> None:
    with serving(workspace / "wheelhouse", keepalive_timeout=0.3, head_timeout=0.3) as short:
        with socket.create_connection(("127.0.0.1", short.port), timeout=5) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, nothing sent
            assert 0.3 <= time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", short.port), timeout=5) as slow:
            slow.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n")
            data = b""
            while chunk := slow.recv(65536):
                data += chunk
        [(status, headers, _)] = responses(data, ["GET"])
        assert (status, headers["connection"]) == (408, "close")


def test_symlinks_inside_the_tree_stay_in_their_directory(server: Server, workspace: Path) -> None:
    wheelhouse = workspace / "wheelhouse"
    link = wheelhouse / "files" / "om-dep" / "internal.json"
    link.symlink_to(wheelhouse / "simple" / "index.json")
    alias = wheelhouse / "files" / "om-dep" / "alias.whl"
    alias.symlink_to(wheel_path(workspace, "om-dep"))
    try:
        assert get(server, "/files/om-dep/internal.json")[0] == 404
        assert get(server, "/files/om-dep/alias.whl")[2] == wheel_path(workspace, "om-dep").read_bytes()
    finally:
        link.unlink()
        alias.unlink()


def test_shutdown_closes_keep_alive_connections_at_once(workspace: Path) -> None:
    with serving(workspace / "wheelhouse") as running:
        sock = socket.create_connection(("127.0.0.1", running.port), timeout=5)
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        started = time.monotonic()
    assert time.monotonic() - started < 2
    with sock:
        assert sock.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=1).close()


def test_a_client_that_reads_late_gets_every_pipelined_response(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    count = 5000
    request = f"GET /simple/om-pure/ HTTP/1.1\r\nHost: x\r\nAccept: {JSON_V1}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        received: list[bytes] = []

        def read_late() -> None:
            time.sleep(1.0)  # the server's write buffer fills up and it stops reading requests meanwhile
            while chunk := sock.recv(1 << 20):
                received.append(chunk)

        reader = threading.Thread(target=read_late)
        reader.start()
        sock.sendall(request * count + b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reader.join(timeout=30)
    data = b"".join(received)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == count + 1
    assert data.endswith(b"</html>\n")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def _old_pips() -> list[tuple[Path, Path]]:
    """(interpreter, its bundled pip wheel) for pips 22.3-23.1 found beside this Python (pyenv installs): the pips
    that crash on a dict under the JSON key "dist-info-metadata" (pypa/pip#12042; PEP 714)."""
    found = []
    for wheel in sorted(Path(sys.base_prefix).parent.glob("*/lib/python3.*/ensurepip/_bundled/pip-2*.whl")):
        version = tuple(int(p) for p in wheel.name.split("-")[1].split(".")[:2])
        python = wheel.parents[4] / "bin" / "python3"
        if (22, 3) <= version < (23, 2) and python.exists():
            found.append((python, wheel))
    return found


@pytest.mark.skipif(not _old_pips(), reason="no Python here bundles a pip 22.3-23.1 (pyenv 3.9 or 3.10 does)")
def test_a_pip_with_the_pep_714_bug_installs_from_the_json_index(server: Server, tmp_path: Path) -> None:
    python, wheel = _old_pips()[0]
    done = subprocess.run(
        [str(python), f"{wheel}/pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
         "--index-url", f"{server.url}simple/", "-d", str(tmp_path / "out"), "om-pure==2.0"],
        env=isolated_env(tmp_path / "home"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["om_pure-2.0-py3-none-any.whl"]
