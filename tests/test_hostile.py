"""Hostile input: upstream pages, specs, lock manifests and requests to the server.

Each is rejected with a clear message or status — never a traceback, never a path outside the workspace. Tables
of known attacks first, then property tests (hypothesis) over the filename, URL and path validation. Existing
tables: tests/test_simple.py (classify), tests/test_manifest.py, tests/test_serve.py (traversal, malformed
requests); bundles: tests/test_bundle.py.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.errors import InvalidSpec
from mirror.manifest import InvalidManifest, Manifest
from mirror.serve import Request, Site, route, serving
from mirror.simple import classify, parse_html_page, parse_json_page
from mirror.spec import parse_spec

SHA = "ab" * 32
REMOTE_PAGE = "https://index.example/simple/demo/"
LOCAL_PAGE = "file:///srv/index/simple/demo/"
SECRET = b"TOP-SECRET-outside-the-tree"
BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def json_page(*entries: dict[str, object]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": list(entries)}).encode()


def entry(filename: str, url: str | None = None, **extra: object) -> dict[str, object]:
    return {"filename": filename, "url": url or f"https://files.example/{quote(filename)}", "hashes": {"sha256": SHA},
            **extra}


# --- upstream pages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "../demo-1.0.tar.gz",
        "sub/demo-1.0-py3-none-any.whl",
        "..\\demo-1.0.tar.gz",
        "demo-1.0.tar.gz\x00.whl",
        "..",
        ".demo-1.0.tar.gz",
        "other-1.0-py3-none-any.whl",  # another project's name on demo's page
        "demo-1.0.exe",
        "",
    ],
)
def test_hostile_filenames_are_dropped(filename: str) -> None:
    assert parse_json_page(json_page(entry(filename)), project="demo", url=REMOTE_PAGE).files == ()
    html = f'<a href="https://files.example/x#sha256={SHA}">{filename}</a>'.encode()
    assert parse_html_page(html, project="demo", url=REMOTE_PAGE).files == ()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file:///dev/zero",
        "FILE:///dev/zero",
        "/dev/zero",  # relative to the page: stays on the page's host
        "javascript:alert(1)",
        "data:application/octet-stream;base64,AAAA",
        "ftp://files.example/demo-1.0.tar.gz",
        "gopher://files.example/demo-1.0.tar.gz",
    ],
)
def test_a_remote_page_reaches_only_http_and_https(url: str) -> None:
    """A remote index must not point the fetch at this machine's files (nor at a device that never ends)."""
    for page in (
        parse_json_page(json_page(entry("demo-1.0.tar.gz", url)), project="demo", url=REMOTE_PAGE),
        parse_html_page(f'<a href="{url}">demo-1.0.tar.gz</a>'.encode(), project="demo", url=REMOTE_PAGE),
    ):
        assert all(f.url.startswith(("https://", "http://")) for f in page.files), page.files


def test_a_local_index_keeps_its_file_urls() -> None:
    page = parse_json_page(json_page(entry("demo-1.0.tar.gz", "../../files/demo-1.0.tar.gz")), project="demo",
                           url=LOCAL_PAGE)
    assert [f.url for f in page.files] == ["file:///srv/index/files/demo-1.0.tar.gz"]


@pytest.mark.parametrize(("size", "kept"), [(10**30, 10**30), (-1, None), (True, None), ("12", None), (1.5, None)])
def test_absurd_sizes(size: object, kept: int | None) -> None:
    """Kept only when a non-negative integer: the download then refuses to read past it (tests/test_faults.py)."""
    (file,) = parse_json_page(json_page(entry("demo-1.0.tar.gz", size=size)), project="demo", url=REMOTE_PAGE).files
    assert file.size == kept


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"[]", b'{"files": {}}', b'{"files": [1, "x", null, {"filename": 3}]}', b"\xff\xfe", b"{" * 10000],
)
def test_malformed_json_pages_are_one_upstream_error(body: bytes) -> None:
    from mirror.simple import UpstreamError

    try:
        page = parse_json_page(body, project="demo", url=REMOTE_PAGE)
    except UpstreamError as exc:
        assert str(exc).startswith(f"{REMOTE_PAGE}: not a PEP 691 project page: ")
        assert "\n" not in str(exc)
    else:
        assert page.files == ()


# --- properties: filenames and URLs ---------------------------------------------------------------------------

NAME_ALPHABET = st.sampled_from([*"demo-_.0123456789/\\\x00 %:aA", "..", ".whl", ".tar.gz", "-py3-none-any"])
filenames = st.one_of(st.text(max_size=40), st.lists(NAME_ALPHABET, max_size=12).map("".join))
urls = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(["http", "https", "file", "ftp", "javascript", "data", "HTTP", ""]),
              st.text(max_size=30)).map(lambda p: f"{p[0]}:{p[1]}"),
)


def contained(root: str, *parts: str) -> bool:
    return os.path.realpath(os.path.join(root, *parts)).startswith(root + os.sep)


@BOUNDED
@given(filename=filenames, project=st.one_of(st.none(), st.sampled_from(["demo", "celery", "a"])))
def test_classify_accepts_only_names_that_stay_in_their_directory(filename: str, project: str | None) -> None:
    parsed = classify(filename, project)
    if parsed is None:
        return
    name, _, _ = parsed
    assert "/" not in filename and "\\" not in filename and "\x00" not in filename
    assert not filename.startswith(".")
    assert contained("/wheelhouse/files", name, filename)
    assert posixpath.basename(f"{name}/{filename}") == filename


@BOUNDED
@given(filename=filenames, url=urls, page=st.sampled_from([REMOTE_PAGE, "http://127.0.0.1:9/simple/demo/"]))
def test_a_parsed_remote_page_names_only_demo_files_over_http(filename: str, url: str, page: str) -> None:
    for parsed in (
        parse_json_page(json_page(entry(filename, url or "x")), project="demo", url=page),
        parse_html_page(f'<a href="{quote(url, safe=":/?#=&%")}">{filename}</a>'.encode(), project="demo", url=page),
    ):
        for file in parsed.files:
            assert file.project == "demo"
            assert file.url.split(":", 1)[0] in ("http", "https")
            assert classify(file.filename, "demo") is not None


@BOUNDED
@given(filename=filenames, url=urls, project=st.text(max_size=12))
def test_a_manifest_entry_is_safe_or_one_error(filename: str, url: str, project: str) -> None:
    doc = {"version": 1, "upstream": "u", "resolver": "uv", "created_by": "t", "targets": {},
           "files": {filename: {"project": project, "version": "1", "kind": "sdist", "url": url, "sha256": SHA}}}
    try:
        manifest = Manifest.from_dict(doc)
    except InvalidManifest as exc:
        assert str(exc).startswith("mirror.lock.json: ") and "\n" not in str(exc)
        return
    (file,) = manifest.files.values()
    assert contained("/wheelhouse/files", file.relpath)
    assert file.url is not None and file.url.split(":", 1)[0] in ("http", "https", "file")


# --- specs ----------------------------------------------------------------------------------------------------

TARGET = '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n'


@pytest.mark.parametrize(
    "upstream",
    ["http://[::1", "http://h:99999/simple", "http://h:port/simple", "http://h/\\u0000x", "http://h/a b",
     "http://h/\\nx", "http://h/\\u202ex", "javascript:alert(1)", "//h/simple", "http:///simple", ""],
)
def test_bad_upstreams_are_one_invalid_spec(upstream: str) -> None:
    with pytest.raises(InvalidSpec) as error:
        parse_spec(f'[mirror]\nupstream = "{upstream}"\n{TARGET}', Path("/w/mirror.toml"))
    assert str(error.value).startswith("/w/mirror.toml: mirror.upstream: ")
    assert "\n" not in str(error.value)


toml_values = st.one_of(
    st.text(max_size=30), st.integers(), st.booleans(), st.lists(st.text(max_size=10), max_size=3),
    st.sampled_from(["linux/amd64", "3.11", "cp311", "../..", "/etc", "x; rm -rf /", "requests>=2 ; os_name=='nt'"]),
)


@BOUNDED
@given(
    key=st.sampled_from(["mirror.upstream", "mirror.wheelhouse", "target.platform", "target.python", "target.name",
                         "target.glibc", "sources.packages", "sources.requirements", "policy.sdists"]),
    value=toml_values,
)
def test_any_spec_value_parses_or_is_one_invalid_spec(key: str, value: object) -> None:
    table, field = key.split(".")
    tables: dict[str, dict[str, object]] = {"mirror": {}, "target": {"platform": "linux/amd64", "python": "3.11"},
                                            "sources": {}, "policy": {}}
    tables[table][field] = value
    lines = []
    for name, body in tables.items():
        lines.append(f"[[{name}]]" if name == "target" else f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    try:
        parse_spec("\n".join(lines) + "\n", Path("/w/mirror.toml"))
    except InvalidSpec as exc:
        assert str(exc).startswith("/w/mirror.toml: ") and "\n" not in str(exc)


# --- the server's path handling -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index tree, a secret next to it, and links trying to reach the secret."""
    base = tmp_path_factory.mktemp("hostile-tree")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "wheelhouse"
    (root / "simple" / "demo").mkdir(parents=True)
    (root / "files" / "demo").mkdir(parents=True)
    (root / "index.html").write_text("<html>people</html>")
    (root / "simple" / "index.html").write_text('<a href="demo/">demo</a>')
    (root / "simple" / "index.json").write_text('{"projects": [{"name": "demo"}]}')
    (root / "simple" / "demo" / "index.html").write_text('<a href="../../files/demo/demo-1.0.tar.gz">x</a>')
    (root / "simple" / "demo" / "index.json").write_text('{"files": []}')
    (root / "files" / "demo" / "demo-1.0.tar.gz").write_bytes(b"sdist bytes" * 100)
    (root / "files" / "demo" / "link.tar.gz").symlink_to(base / "secret.txt")
    (root / "files" / "up").symlink_to(base, target_is_directory=True)
    (root / "files" / ".verified.json").write_bytes(SECRET)
    return root


PIECES = st.sampled_from(
    ["/", "..", ".", "%2e", "%2E%2e", "%2f", "%5c", "\\", "%00", "%0d%0a", "files", "simple", "demo", "up",
     "secret.txt", "demo-1.0.tar.gz", "link.tar.gz", ".verified.json", "index.json", "?format=x", "#", "%", "%ff",
     "//", "http://h", "*", "~", ";", "a" * 300]
)
targets = st.one_of(
    st.lists(PIECES, max_size=14).map("".join),
    st.text(max_size=60),
    st.text(max_size=60).map(lambda t: "/" + quote(t, safe="/%.")),
)
ranges = st.one_of(
    st.none(), st.text(max_size=20),
    st.sampled_from(["bytes=0-0", "bytes=-1", "bytes=5-", "bytes=999999999999999999999-", "bytes=1-0", "bytes=0-1,2-3",
                     "bytes=--1", "bits=0-1", "bytes=-0", "bytes= 1 - 2 "]),
)


@BOUNDED
@given(target=targets)
def test_route_never_names_a_path_outside_the_tree(target: str) -> None:
    found = route(target)
    if found.kind in ("page", "negotiated", "file"):
        parts = found.relpath.split("/")
        assert all(part and not part.startswith(".") and "\\" not in part and "\x00" not in part for part in parts)
        assert posixpath.normpath(found.relpath) == found.relpath
        assert contained("/wheelhouse", found.relpath)
    if found.kind == "redirect":
        assert found.location.startswith("/simple/") and "\r" not in found.location and "\n" not in found.location


@BOUNDED
@given(target=targets, range_header=ranges, method=st.sampled_from(["GET", "HEAD", "POST", "GET "]))
def test_the_site_answers_every_target_with_a_status_and_never_the_secret(
    tree: Path, target: str, range_header: str | None, method: str
) -> None:
    response = Site(tree).respond(Request(method=method, target=target, range=range_header, accept="*/*"))
    assert response.status in (200, 206, 301, 304, 400, 404, 405, 406, 416)
    assert SECRET not in response.body
    if response.path is not None:
        assert contained(os.path.realpath(tree), os.path.relpath(response.path, os.path.realpath(tree)))
        assert Path(response.path).read_bytes() != SECRET


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a/" * 30000 + b" HTTP/1.1\r\nConnection: close\r\n\r\n", 404),  # a huge path, under the limit
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 431),  # over the 64 KiB head limit
        (b"GET /simple/ HTTP/1.1\r\n" + b"X-A: b\r\n" * 9000 + b"\r\n", 431),  # too many headers
        (b"GET /files/demo/demo-1.0.tar.gz HTTP/1.1\r\nRange: bytes=99999999999999999999-\r\nConnection: close\r\n\r\n",
         416),
        (b"GET /files/demo/demo-1.0.tar.gz HTTP/1.1\r\nRange: bytes=x-y\r\nConnection: close\r\n\r\n", 200),
        (b"GET /files/demo/demo-1.0.tar.gz HTTP/1.1\r\nRange: bytes=0-1,5-6\r\nConnection: close\r\n\r\n", 200),
        (b"GET /files/demo/demo-1.0.tar.gz HTTP/1.1\r\nRange: \xff\xfe\r\nConnection: close\r\n\r\n", 200),
        (b"GET /files/%2e%2e/%2e%2e/secret.txt HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /files/demo/link.tar.gz HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /files/up/secret.txt HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /files/demo/%c0%ae%c0%ae/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400),  # overlong UTF-8 dots
        (b"GET /files/demo/\xc0\xae\xc0\xae HTTP/1.1\r\nConnection: close\r\n\r\n", 404),  # raw: no dots
        (b"GET /simple/ HTTP/1.1\r\nHost: x\x00y\r\nConnection: close\r\n\r\n", 200),  # a header we do not read
        (b"GET /simple/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 200),  # answered, then closed
    ],
)
def test_hostile_requests_get_a_status_never_a_traceback(
    tree: Path, request_bytes: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(tree, access_log=lambda record: None) as server:
        reply = exchange(server.port, request_bytes)
        after = exchange(server.port, b"GET /simple/ HTTP/1.1\r\nConnection: close\r\n\r\n")  # still serving
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:200]
    assert SECRET not in reply
    assert after.startswith(b"HTTP/1.1 200 ")
    assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []


@pytest.mark.parametrize("filename", ["evil\n-1.0.tar.gz", "evil-1.0\r.tar.gz", "ev il-1.0.tar.gz", "evil\u202e-1.0.tar.gz"])
def test_filenames_with_control_characters_or_spaces_are_refused(filename: str) -> None:
    assert classify(filename) is None
    assert classify(filename, "evil") is None
    doc = {"version": 1, "files": {filename: {"project": "evil"}}, "targets": {}}
    with pytest.raises(InvalidManifest) as error:
        Manifest.from_dict(doc)
    message = str(error.value)
    assert message.endswith(": not a safe wheel or sdist filename") and message.isprintable()
