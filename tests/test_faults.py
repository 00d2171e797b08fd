"""Upstream faults: each ends in a retry that succeeds or in one clear error naming the file; nothing unverified is kept.

Wrong bytes, a 500 then success, a connection dropped mid-file (Range resume) and kill -9 mid-file are in
tests/test_fetch.py; this file adds resets, 5xx bursts, 429 + Retry-After, timeouts, bodies with no length cut
short, oversized and endless bodies, and a project gone between lock and fetch.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
import requests
from urllib3.response import HTTPResponse

from mirror import _http
from mirror._download import DownloadError, HashMismatch, download, partial_path
from mirror._http import make_session
from mirror.fetch import check
from mirror.manifest import load_manifest
from tests.fixtures.env import Cli, MakeWorkspace, synced_workspace
from tests.fixtures.server import (
    Response,
    Upstream,
    UpstreamHandler,
    close_after,
    delay,
    fail_times,
    reset_connection,
    respond,
    retry_after,
)

WHEEL = "om_native-1.0-cp311-cp311-win_amd64.whl"
NO_SLEEP = {"sleep": lambda seconds: None}


@pytest.fixture
def up(clean_upstream: Upstream) -> Upstream:
    return clean_upstream


def target(up: Upstream, tmp_path: Path, name: str = WHEEL) -> tuple[str, Path, str, int]:
    """(url, dest, sha256, size) of one upstream file, to download into tmp_path."""
    entry = up.index.file(name)
    assert entry is not None
    return f"{up.base_url}/files/{name}", tmp_path / "files" / name, entry.sha256, entry.size


def fast_session(retries: int = 4) -> requests.Session:
    return make_session(retries=retries, backoff=0.01)


def gets(up: Upstream, name: str = WHEEL) -> list[float]:
    return [r.at for r in up.requests if r.method == "GET" and r.path == f"/files/{name}"]


def nothing_kept(dest: Path) -> bool:
    return not dest.exists() and not partial_path(dest).exists()


# --- retried until it succeeds ----------------------------------------------------------------------------


def test_connection_resets_are_retried(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, reset_connection(times=3))
    assert download(fast_session(), url, dest, sha256=sha, size=size, **NO_SLEEP) == sha
    assert len(gets(up)) == 4
    assert not partial_path(dest).exists()


def test_a_5xx_burst_longer_than_one_attempt_is_retried(up: Upstream, tmp_path: Path) -> None:
    """urllib3 retries 4 times inside one attempt; a burst of 8 spills into download's own second attempt."""
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, fail_times(8, status=502))
    assert download(fast_session(), url, dest, sha256=sha, size=size, **NO_SLEEP) == sha
    assert len(gets(up)) == 9


def test_a_5xx_burst_longer_than_every_attempt_names_the_file(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, fail_times(1000, status=503))
    with pytest.raises(DownloadError) as error:
        download(fast_session(retries=0), url, dest, sha256=sha, size=size, attempts=3, **NO_SLEEP)
    assert str(error.value) == f"{WHEEL}: cannot download {url} after 3 attempts: HTTP 503"
    assert nothing_kept(dest)


def test_429_retry_after_is_honoured(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, retry_after(1, "1"))
    assert download(make_session(backoff=0), url, dest, sha256=sha, size=size, **NO_SLEEP) == sha
    first, second = gets(up)
    assert second - first >= 0.9  # backoff 0: only Retry-After made it wait


def test_an_absurd_retry_after_is_capped(up: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "MAX_RETRY_AFTER", 0.2)
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, retry_after(2, "86400", status=503))
    started = time.monotonic()
    assert download(make_session(backoff=0), url, dest, sha256=sha, size=size, **NO_SLEEP) == sha
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3600", 30.0), ("5", 5.0), ("0", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), (None, None)],
)
def test_retry_after_cap_table(header: str | None, expected: float | None) -> None:
    retry = make_session().get_adapter("http://x/").max_retries
    headers = {} if header is None else {"Retry-After": header}
    response = HTTPResponse(body=b"", headers=headers, status=429, preload_content=False)
    assert retry.get_retry_after(response) == expected


def test_a_response_slower_than_the_timeout_is_retried(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, delay(1.5))
    started = time.monotonic()
    assert download(fast_session(), url, dest, sha256=sha, size=size, timeout=(2.0, 0.5), **NO_SLEEP) == sha
    assert len(gets(up)) == 2
    assert time.monotonic() - started < 5


def test_an_upstream_always_slower_than_the_timeout_names_the_file(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, delay(1.0, times=100))
    with pytest.raises(DownloadError) as error:
        download(fast_session(retries=0), url, dest, sha256=sha, size=size, timeout=(2.0, 0.3), attempts=2, **NO_SLEEP)
    message = str(error.value)
    assert message.startswith(f"{WHEEL}: cannot download {url} after 2 attempts: ")
    assert "timed out" in message.lower() and "\n" not in message
    assert nothing_kept(dest)


def test_a_body_with_no_length_cut_short_resumes(up: Upstream, tmp_path: Path) -> None:
    """No Content-Length, connection closed early: the locked size tells it from a complete body."""
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, close_after(100))
    assert download(fast_session(), url, dest, sha256=sha, size=size, **NO_SLEEP) == sha
    assert len(gets(up)) == 2


def test_a_body_with_no_length_cut_short_and_no_size_is_a_hash_mismatch(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, _ = target(up, tmp_path)
    up.inject(WHEEL, close_after(100, times=100))
    with pytest.raises(HashMismatch, match=rf"^{WHEEL}: {url} has sha256 [0-9a-f]{{64}}, expected {sha}$"):
        download(fast_session(), url, dest, sha256=sha, size=None, **NO_SLEEP)
    assert nothing_kept(dest)


# --- refused with a clear error ----------------------------------------------------------------------------


def test_a_body_announced_larger_than_the_lock_is_refused(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    up.inject(WHEEL, respond(Response(status=200, body=b"x" * (size + 1))))
    with pytest.raises(DownloadError) as error:
        download(fast_session(), url, dest, sha256=sha, size=size, **NO_SLEEP)
    assert str(error.value) == f"{WHEEL}: {url} announces {size + 1} bytes; the lock says {size}"
    assert nothing_kept(dest)


def test_an_endless_body_is_cut_off_at_the_locked_size(up: Upstream, tmp_path: Path) -> None:
    url, dest, sha, size = target(up, tmp_path)
    sent = [0]

    def endless(handler: UpstreamHandler) -> bool:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        block = b"z" * 65536
        while sent[0] < 256 * 1024 * 1024:  # bounded: 256 MB at most, the client hangs up long before
            try:
                handler.wfile.write(block)
            except OSError:
                break
            sent[0] += len(block)
        return True

    up.inject(WHEEL, endless)
    with pytest.raises(DownloadError) as error:
        download(fast_session(), url, dest, sha256=sha, size=size, **NO_SLEEP)
    assert str(error.value) == f"{WHEEL}: {url} sent more than the {size} bytes the lock says"
    assert nothing_kept(dest)
    assert sent[0] < 64 * 1024 * 1024


def test_a_malformed_url_is_one_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=rf"^{WHEEL}: cannot download http://: "):
        download(fast_session(), "http://", tmp_path / WHEEL, sha256=None, **NO_SLEEP)


def test_a_file_url_to_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=rf"^{WHEEL}: file:///dev/zero is not a regular file$"):
        download(fast_session(), "file:///dev/zero", tmp_path / WHEEL, sha256=None)


def test_an_unwritable_destination_is_one_error_naming_the_file(up: Upstream, tmp_path: Path) -> None:
    url, _, sha, size = target(up, tmp_path)
    (tmp_path / "files").write_text("a file where the directory should be")
    with pytest.raises(DownloadError, match=rf"^{WHEEL}: cannot write {tmp_path}/files/\.{WHEEL}\.part: "):
        download(fast_session(), url, tmp_path / "files" / WHEEL, sha256=sha, size=size)


# --- the CLI: a project that disappears between lock and fetch --------------------------------------------


TARGETS = [("windows/amd64", "3.11")]
PACKAGES = ["om-pure==2.0", "om-native"]


@pytest.fixture(scope="module")
def locked(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("faults-lock")
    synced_workspace(work, upstream, PACKAGES, targets=TARGETS, build_wheels=False, stage="lock")
    return work / "lockfiles"


@pytest.fixture
def workspace(locked: Path, up: Upstream, make_workspace: MakeWorkspace) -> Path:
    work = make_workspace(PACKAGES, targets=TARGETS, upstream=up, build_wheels=False)
    shutil.copytree(locked, work / "lockfiles")
    return work


def test_a_project_gone_between_lock_and_fetch(cli: Cli, workspace: Path, up: Upstream) -> None:
    gone = "om_dep-1.0-py3-none-any.whl"
    up.inject(gone, respond(Response(status=404, body=b"not found\n")))
    up.inject("/simple/om-dep/", respond(Response(status=404, body=b"not found\n")))
    spec = str(workspace / "mirror.toml")
    result = cli("fetch", "--spec", spec)
    url = load_manifest(workspace / "lockfiles").files[gone].url
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (1, f"error: {gone}: {url} answered HTTP 404")
    files = workspace / "wheelhouse" / "files"
    assert nothing_kept(files / "om-dep" / gone)
    outcome = check(load_manifest(workspace / "lockfiles"), files)
    assert (outcome.missing, outcome.corrupt) == ((gone,), ())
    # the index leaves it out, says so, and lists everything else
    result = cli("index", "--spec", spec)
    assert result.exit_code == 0
    assert f"not indexed (missing or unverified; run mirror fetch): {gone}" in result.stderr
    assert not (workspace / "wheelhouse" / "simple" / "om-dep").exists()
    pure = json.loads((workspace / "wheelhouse" / "simple" / "om-pure" / "index.json").read_text())
    assert [f["filename"] for f in pure["files"]] == ["om_pure-2.0-py3-none-any.whl"]


def test_fixture_reset_is_a_real_reset(up: Upstream) -> None:
    """The reset fault hangs up without a response (what the retry tests rely on)."""
    up.inject(WHEEL, reset_connection())
    with socket.create_connection(("127.0.0.1", up.port), timeout=5) as sock:
        sock.sendall(f"GET /files/{WHEEL} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass
