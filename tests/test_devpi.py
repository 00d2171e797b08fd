"""mirror publish devpi / mirror devpi-serve, against a real devpi-server on 127.0.0.1.

One server for the module (devpi-server takes seconds to start): ``mirror devpi-serve`` itself, run as a
subprocess — it initialises the server directory, starts devpi-server, publishes the synced fixture wheelhouse
into ``alice/mirror`` and waits for SIGTERM. Other tests publish into other indexes of the same server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mirror.devpi import (
    DevpiClient,
    DevpiError,
    DevpiServer,
    IndexName,
    find_executable,
    init_serverdir,
    local_files,
    plan,
    publish,
    stored_password,
    upload_version,
)
from mirror.manifest import FileEntry, Manifest, load_manifest
from mirror.targets import host_target
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, isolated_env, pip_command, synced_workspace
from tests.fixtures.server import Upstream, free_port

HOST = host_target()
JSON_V1 = "application/vnd.pypi.simple.v1+json"
STARTUP = 120.0  # seconds: devpi-init + devpi-server start + publishing, on a slow CI machine


@dataclass(frozen=True)
class Devpi:
    url: str
    serverdir: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


@pytest.fixture(scope="module")
def synced(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_workspace(tmp_path_factory.mktemp("devpi-workspace"), upstream, ["om-pure==2.0", "om-native", "om-sdistonly"])


@pytest.fixture(scope="module")
def manifest(synced: Path) -> Manifest:
    return load_manifest(synced / "lockfiles")


@pytest.fixture(scope="module")
def devpi(synced: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devpi]:
    """``mirror devpi-serve`` on a free port, publishing into alice/mirror; always stopped at teardown."""
    tmp = tmp_path_factory.mktemp("devpi")
    (tmp / "home").mkdir()
    port = free_port()
    stdout, stderr = tmp / "stdout", tmp / "stderr"
    command = [sys.executable, "-m", "mirror", "devpi-serve", "--spec", str(synced / "mirror.toml"),
               "--serverdir", str(tmp / "server"), "--port", str(port), "--user", "alice", "--password", "secret"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # its own session: teardown can stop devpi-serve and its devpi-server child together
        process = subprocess.Popen(command, stdout=out, stderr=err, env=isolated_env(tmp / "home"),
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP
        while "  uv pip install" not in stdout.read_text():  # the last line it prints before waiting
            assert process.poll() is None, f"devpi-serve exited: {stderr.read_text()}"
            assert time.monotonic() < deadline, f"devpi-serve not ready in {STARTUP}s: {stderr.read_text()}"
            time.sleep(0.2)
        yield Devpi(url=f"http://127.0.0.1:{port}", serverdir=tmp / "server", process=process, stdout=stdout,
                    stderr=stderr)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def index_config(devpi: Devpi, index: str) -> dict[str, object]:
    response = requests.get(f"{devpi.url}/{index}", headers={"Accept": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()["result"]
    return result


def index_files(devpi: Devpi, index: str, projects: set[str]) -> dict[str, str]:
    """filename → sha256, read from the index's PEP 691 pages as pip would."""
    files = {}
    for project in sorted(projects):
        page = requests.get(f"{devpi.url}/{index}/+simple/{project}/", headers={"Accept": JSON_V1}, timeout=10)
        assert page.status_code == 200, page.text
        files.update({f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]})
    return files


# -- devpi-serve ----------------------------------------------------------------------------------------------


def test_devpi_serve_publishes_the_wheelhouse_into_an_index_without_bases(
    devpi: Devpi, synced: Path, manifest: Manifest
) -> None:
    simple = f"{devpi.url}/alice/mirror/+simple/"
    lock = synced / "lockfiles" / f"{HOST.name}.txt"
    assert devpi.stdout.read_text() == (
        f"initialised {devpi.serverdir}: no PyPI mirror; root's password is random:"
        f" devpi-passwd --serverdir {devpi.serverdir} root\n"
        "created devpi user alice\n"
        "created index alice/mirror: no bases (never proxies PyPI), non-volatile\n"
        f"uploaded {len(manifest.files)}, already there 0, skipped 0\n"
        f"devpi-server {devpi.url} (log: {devpi.serverdir / 'devpi-server.log'}); Ctrl-C stops it\n"
        f"index: {simple}\n"
        f"  pip install --index-url {simple} -r {lock}\n"
        f"  uv pip install --default-index {simple} -r {lock}\n"
    )
    config = index_config(devpi, "alice/mirror")
    assert (config["type"], config["bases"], config["volatile"]) == ("stage", [], False)
    projects = {f.project for f in manifest.files.values()}
    assert index_files(devpi, "alice/mirror", projects) == {name: f.sha256 for name, f in manifest.files.items()}
    page = requests.get(f"{devpi.url}/alice/mirror/+simple/om-pure/", headers={"Accept": JSON_V1}, timeout=10).json()
    assert {f["filename"]: f["requires-python"] for f in page["files"]} == {"om_pure-2.0-py3-none-any.whl": ">=3.9"}


def test_pip_installs_from_devpi_with_require_hashes(devpi: Devpi, synced: Path, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        pip_command("install", f"{devpi.url}/alice/mirror/+simple/", "--require-hashes", "--target",
                    str(tmp_path / "site"), "-r", str(synced / "lockfiles" / f"{HOST.name}.txt")),
        env=isolated_env(tmp_path / "home"), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    installed = sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info"))
    assert installed == ["om_dep-1.0.dist-info", "om_native-1.0.dist-info", "om_pure-2.0.dist-info",
                         "om_sdistonly-1.0.dist-info"]


def test_a_package_not_in_the_mirror_does_not_install(devpi: Devpi, upstream: Upstream, tmp_path: Path) -> None:
    # upstream has om-winhelper; the mirror (host target only) does not, and devpi must not fetch it anywhere
    assert requests.get(f"{upstream.url}/om-winhelper/", timeout=10).status_code == 200
    assert requests.get(f"{devpi.url}/alice/mirror/+simple/om-winhelper/", timeout=10).status_code == 404
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        pip_command("install", f"{devpi.url}/alice/mirror/+simple/", "--target", str(tmp_path / "site"),
                    "om-winhelper"),
        env=isolated_env(tmp_path / "home"), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    assert "No matching distribution found for om-winhelper" in done.stderr


# -- publish devpi --------------------------------------------------------------------------------------------


def test_publish_creates_user_and_index_uploads_everything_then_nothing(
    cli: Cli, devpi: Devpi, synced: Path, manifest: Manifest
) -> None:
    spec = str(synced / "mirror.toml")
    args = ("publish", "devpi", "--spec", spec, "--url", devpi.url, "--index", "bob/mirror", "--password", "pw")
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    count = len(manifest.files)
    assert result.stdout == (
        "created devpi user bob\n"
        "created index bob/mirror: no bases (never proxies PyPI), non-volatile\n"
        f"uploaded {count}, already there 0, skipped 0\n"
        f"index: {devpi.url}/bob/mirror/+simple/\n"
    )
    assert sorted(result.stderr.splitlines()) == sorted(f"uploaded {name}" for name in manifest.files)
    config = index_config(devpi, "bob/mirror")
    assert (config["type"], config["bases"], config["volatile"]) == ("stage", [], False)
    projects = {f.project for f in manifest.files.values()}
    assert index_files(devpi, "bob/mirror", projects) == {name: f.sha256 for name, f in manifest.files.items()}

    result = cli(*args)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"uploaded 0, already there {count}, skipped 0\nindex: {devpi.url}/bob/mirror/+simple/\n"


def test_publish_needs_no_login_when_everything_is_there(
    cli: Cli, devpi: Devpi, synced: Path, manifest: Manifest
) -> None:
    result = cli("publish", "devpi", "--spec", str(synced / "mirror.toml"), "--url", devpi.url,
                 "--index", "alice/mirror")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"uploaded 0, already there {len(manifest.files)}, skipped 0\nindex: {devpi.url}/alice/mirror/+simple/\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--user", "alice", "--password", "wrong"), "devpi POST {url}/+login: 401 user 'alice' could not be authenticated"),
        (("--password", "wrong"), "devpi POST {url}/+login: 401 user 'alice' could not be authenticated"),
        ((), "devpi {url}/alice/new: no such index; give --user and --password to create it"),
    ],
)
def test_publish_errors_are_one_line(
    cli: Cli, devpi: Devpi, synced: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("publish", "devpi", "--spec", str(synced / "mirror.toml"), "--url", devpi.url,
                 "--index", "alice/new", *args)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {message.format(url=devpi.url)}\n"


def test_publish_to_an_unreachable_server(synced: Path, manifest: Manifest) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DevpiError) as info:
        publish(manifest, synced / "wheelhouse" / "files", url=url, index=IndexName.parse("a/b"),
                session=requests.Session())
    assert str(info.value) == f"devpi {url}: cannot connect: [Errno 111] Connection refused"


def test_publish_to_a_server_that_is_not_devpi(synced: Path, manifest: Manifest, upstream: Upstream) -> None:
    with pytest.raises(DevpiError) as info:
        publish(manifest, synced / "wheelhouse" / "files", url=upstream.url, index=IndexName.parse("a/b"),
                session=requests.Session())
    assert str(info.value) == f"devpi {upstream.url}: not a devpi-server (GET /+api answered 406 Not Acceptable)"


def test_publish_upload_into_devpi_the_way_twine_does(devpi: Devpi, synced: Path, manifest: Manifest) -> None:
    """``mirror publish upload`` (the twine protocol, HTTP Basic credentials) into a devpi stage index."""
    client = DevpiClient(devpi.url, requests.Session())
    client.login("alice", "secret")
    client.create_index(IndexName.parse("alice/uploaded"))
    workspace = Workspace.open(synced / "mirror.toml")
    environ = {"MIRROR_UPLOAD_USERNAME": "alice", "MIRROR_UPLOAD_PASSWORD": "secret"}
    result = workspace.publish_upload(f"{devpi.url}/alice/uploaded", environ=environ)
    assert result.ok and result.simple_url == f"{devpi.url}/alice/uploaded/+simple/"
    assert len(result.named("uploaded")) == len(manifest.files)
    projects = {f.project for f in manifest.files.values()}
    assert index_files(devpi, "alice/uploaded", projects) == {name: f.sha256 for name, f in manifest.files.items()}
    again = workspace.publish_upload(f"{devpi.url}/alice/uploaded/", environ=environ)
    assert (len(again.named("uploaded")), len(again.named("present"))) == (0, len(manifest.files))


# -- stopping devpi-serve (last: it ends the module's server) ------------------------------------------------


def test_devpi_serve_stops_devpi_server_on_sigterm(devpi: Devpi) -> None:
    devpi.process.send_signal(signal.SIGTERM)
    assert devpi.process.wait(30) == 0
    assert devpi.stderr.read_text().endswith("devpi-server stopped\n")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{devpi.url}/+api", timeout=5)


# -- the pure parts -------------------------------------------------------------------------------------------


def entry(filename: str, sha256: str = "a" * 64) -> FileEntry:
    project = filename.split("-")[0].replace("_", "-")
    kind = "wheel" if filename.endswith(".whl") else "sdist"
    return FileEntry(filename=filename, project=project, version="1.0", kind=kind, url=None, sha256=sha256,
                     built_from="x.tar.gz")


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("om_pure-2.0-py3-none-any.whl", "2.0"),
        ("om_pure-2.0-1-py3-none-any.whl", "2.0"),
        ("docopt-0.6.2.tar.gz", "0.6.2"),
        ("zope.interface-5.0.0b1.zip", "5.0.0b1"),
        ("python-dateutil-2.9.0.post0.tar.gz", "2.9.0.post0"),
    ],
)
def test_upload_version_is_the_version_as_written_in_the_filename(filename: str, version: str) -> None:
    assert upload_version(filename) == version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "index 'alice' is not USER/INDEX"),
        ("alice/", "index 'alice/' is not USER/INDEX"),
        ("/mirror", "index '/mirror' is not USER/INDEX"),
        ("alice/mirror/x", "index 'alice/mirror/x' is not USER/INDEX"),
        ("alice/+simple", "index 'alice/+simple' is not USER/INDEX"),
    ],
)
def test_index_name_errors(text: str, message: str) -> None:
    with pytest.raises(DevpiError) as info:
        IndexName.parse(text)
    assert str(info.value) == message


def test_plan_uploads_what_is_missing_and_keeps_what_matches() -> None:
    ready = [entry("a-1.0-py3-none-any.whl"), entry("b-1.0.tar.gz"), entry("c-1.0.tar.gz")]
    remote = {"b-1.0.tar.gz": "a" * 64, "z-1.0.tar.gz": "f" * 64}
    result = plan(ready, ["d-1.0.tar.gz"], remote, index_url="http://d/u/i")
    assert [f.filename for f in result.upload] == ["a-1.0-py3-none-any.whl", "c-1.0.tar.gz"]
    assert (result.present, result.skipped) == (("b-1.0.tar.gz",), ("d-1.0.tar.gz",))


def test_plan_stops_at_a_file_with_another_sha256() -> None:
    with pytest.raises(DevpiError) as info:
        plan([entry("b-1.0.tar.gz")], [], {"b-1.0.tar.gz": "f" * 64}, index_url="http://d/u/i")
    assert str(info.value) == f"http://d/u/i: b-1.0.tar.gz is already there with sha256 {'f' * 64}, the lock says {'a' * 64}"


def test_missing_devpi_server_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevpiError) as info:
        find_executable("devpi-server")
    assert str(info.value) == "devpi-server is not installed: pip install devpi-server"


def test_local_files_are_the_present_and_verified_ones(synced: Path, manifest: Manifest, tmp_path: Path) -> None:
    files_dir = tmp_path / "files"
    shutil.copytree(synced / "wheelhouse" / "files", files_dir)
    (files_dir / "om-dep" / "om_dep-1.0-py3-none-any.whl").unlink()
    (files_dir / "om-sdistonly" / "om_sdistonly-1.0.tar.gz").write_bytes(b"tampered")
    ready, skipped = local_files(manifest, files_dir)
    assert skipped == ["om_dep-1.0-py3-none-any.whl", "om_sdistonly-1.0.tar.gz"]
    assert [f.filename for f in ready] == sorted(set(manifest.files) - set(skipped))


def test_stored_password_is_made_once_per_user_and_private(tmp_path: Path) -> None:
    first = stored_password(tmp_path, "alice")
    assert stored_password(tmp_path, "alice") == first
    assert stored_password(tmp_path, "bob") not in ("", first)
    assert stored_password(tmp_path, "alice") == first
    assert stat.S_IMODE((tmp_path / ".mirror-credentials").stat().st_mode) == 0o600


def test_init_serverdir_runs_devpi_init_once_without_a_pypi_mirror(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def runner(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        (tmp_path / ".nodeinfo").write_text("{}")
        return subprocess.CompletedProcess(args, 0, "", "")

    assert init_serverdir(tmp_path, root_password="pw", runner=runner, executable="devpi-init") is True
    assert init_serverdir(tmp_path, root_password="pw", runner=runner, executable="devpi-init") is False
    assert calls == [["devpi-init", "--serverdir", str(tmp_path), "--no-root-pypi", "--root-passwd", "pw"]]


def test_init_serverdir_failure_is_one_line(tmp_path: Path) -> None:
    def runner(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "2026 INFO starting\nfatal: no permission\n")

    with pytest.raises(DevpiError) as info:
        init_serverdir(tmp_path, root_password="pw", runner=runner, executable="devpi-init")
    assert str(info.value) == f"devpi-init --serverdir {tmp_path} failed: fatal: no permission"


def test_a_port_in_use_fails_before_devpi_server_starts(tmp_path: Path) -> None:
    (tmp_path / ".nodeinfo").write_text("{}")

    def spawn(args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
        raise AssertionError("devpi-server must not be started")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DevpiError) as info:
            DevpiServer(tmp_path, port=port, executable="devpi-server", spawn=spawn).start()
    assert str(info.value) == f"cannot listen on http://127.0.0.1:{port}: Address already in use"
