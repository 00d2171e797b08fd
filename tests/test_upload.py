"""mirror publish upload: the wheelhouse into a pypiserver with htpasswd authentication, started here on 127.0.0.1,
as twine uploads; then pip and uv install the locked set from that pypiserver in a network namespace."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mirror.credentials import CredentialsError, upload_credentials
from mirror.manifest import InvalidManifest, Manifest
from mirror.targets import host_target
from mirror.upload import Repository, UploadError
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, synced_workspace
from tests.fixtures.offline import BIN, PORT, offline_with
from tests.fixtures.server import Upstream, free_port

HOST = host_target()
USER, PASSWORD = "uploader", "s3cret-Passw0rd"
CREDENTIALS = {"MIRROR_UPLOAD_USERNAME": USER, "MIRROR_UPLOAD_PASSWORD": PASSWORD}
PYPI_SERVER = str(Path(sys.executable).parent / "pypi-server")


@dataclass(frozen=True)
class PypiServer:
    url: str
    packages: Path
    htpasswd: Path

    def command(self, port: int) -> list[str]:
        return [PYPI_SERVER, "run", "-i", "127.0.0.1", "-p", str(port), "-P", str(self.htpasswd),
                "-a", "update,download,list", str(self.packages)]  # fmt: skip

    def files(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in self.packages.iterdir() if p.is_file()}


def write_htpasswd(path: Path) -> None:
    from passlib.apache import HtpasswdFile

    htpasswd = HtpasswdFile(str(path), new=True)
    htpasswd.set_password(USER, PASSWORD)
    htpasswd.save()


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[PypiServer]:
    """A pypiserver on a free 127.0.0.1 port: every read and upload needs USER's password; stopped at teardown."""
    server = PypiServer(url="", packages=tmp_path / "packages", htpasswd=tmp_path / "htpasswd")
    server.packages.mkdir()
    write_htpasswd(server.htpasswd)
    port = free_port()
    log = (tmp_path / "pypiserver.log").open("wb")
    process = subprocess.Popen(server.command(port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "pypiserver.log").read_text()
            try:
                if requests.get(f"{url}/simple/", timeout=1).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "pypiserver did not start in 60 s"
            time.sleep(0.1)
        yield PypiServer(url=url, packages=server.packages, htpasswd=server.htpasswd)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def synced(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """om-pure 2.0 (-> om-dep), om-native (a platform wheel) and om-sdistonly (a wheel built here, its sdist and its
    build closure), for this host's target."""
    directory = tmp_path_factory.mktemp("upload-workspace")
    return synced_workspace(directory, upstream, ["om-pure==2.0", "om-native", "om-sdistonly"])


@pytest.fixture(scope="module")
def manifest(synced: Path) -> Manifest:
    return Workspace.open(synced / "mirror.toml").manifest()


def test_publish_twice_uploads_everything_then_nothing(
    cli: Cli, pypiserver: PypiServer, synced: Path, manifest: Manifest
) -> None:
    args = ("publish", "upload", "--spec", str(synced / "mirror.toml"), "--repository-url", pypiserver.url)
    first = cli(*args, env=CREDENTIALS)
    assert first.exit_code == 0, first.output
    count = len(manifest.files)
    assert first.stdout == (
        f"uploaded {count}, already there 0, failed 0, skipped 0\n"
        f"repository: {pypiserver.url}/; index: {pypiserver.url}/simple/\n"
    )
    assert pypiserver.files() == {name: f.sha256 for name, f in manifest.files.items()}
    assert PASSWORD not in first.output
    second = cli(*args, env=CREDENTIALS)
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines()[0] == f"uploaded 0, already there {count}, failed 0, skipped 0"


def test_pip_and_uv_install_the_locked_set_from_pypiserver_offline(
    pypiserver: PypiServer, synced: Path, manifest: Manifest, tmp_path: Path
) -> None:
    result = Workspace.open(synced / "mirror.toml").publish_upload(pypiserver.url, environ=CREDENTIALS)
    assert result.ok and len(result.named("uploaded")) == len(manifest.files)
    home = tmp_path / "home"
    home.mkdir()
    lock = synced / "lockfiles" / f"{HOST.name}.txt"
    index = f"http://{USER}:{PASSWORD}@127.0.0.1:{PORT}/simple/"
    server = " ".join(PypiServer(url="", packages=pypiserver.packages, htpasswd=pypiserver.htpasswd).command(PORT))
    script = (
        f"{sys.executable} -m pip install --no-cache-dir --disable-pip-version-check --index-url {index}"
        f" --require-hashes --target {tmp_path / 'pip-site'} -r {lock}\n"
        f"{BIN / 'uv'} pip install --no-cache --index-url {index} --target {tmp_path / 'uv-site'} -r {lock}\n"
    )
    done = offline_with(server, f"http://127.0.0.1:{PORT}/simple/", home, script)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = [
        "om_dep-1.0.dist-info",
        "om_native-1.0.dist-info",
        "om_pure-2.0.dist-info",
        "om_sdistonly-1.0.dist-info",
    ]
    for site in ("pip-site", "uv-site"):
        assert sorted(p.name for p in (tmp_path / site).iterdir() if p.name.endswith(".dist-info")) == expected


def test_the_same_name_with_other_bytes_stops_before_any_upload(
    pypiserver: PypiServer, synced: Path, manifest: Manifest
) -> None:
    name = "om_dep-1.0-py3-none-any.whl"
    (pypiserver.packages / name).write_bytes(b"not the locked wheel")
    theirs = hashlib.sha256(b"not the locked wheel").hexdigest()
    with pytest.raises(UploadError) as info:
        Workspace.open(synced / "mirror.toml").publish_upload(pypiserver.url, environ=CREDENTIALS)
    assert str(info.value) == (
        f"{pypiserver.url}/simple/: {name} is already there with sha256 {theirs}; the lock says"
        f" {manifest.files[name].sha256}. A published file never changes: nothing was uploaded"
    )
    assert sorted(pypiserver.files()) == [name]


def test_an_exists_answer_with_the_same_bytes_is_success(
    pypiserver: PypiServer, synced: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone uploaded the same file between the read and the upload: pypiserver answers 409, read back."""
    workspace = Workspace.open(synced / "mirror.toml")
    assert workspace.publish_upload(pypiserver.url, targets=[HOST.name], environ=CREDENTIALS).ok
    monkeypatch.setattr("mirror.upload.plan", lambda repository, files, jobs: (list(files), []))
    result = workspace.publish_upload(pypiserver.url, environ=CREDENTIALS)
    assert result.ok
    assert (len(result.named("uploaded")), len(result.named("present"))) == (0, len(manifest.files))


def test_a_refused_password_is_one_line_and_never_shown(cli: Cli, pypiserver: PypiServer, synced: Path) -> None:
    env = {"MIRROR_UPLOAD_USERNAME": USER, "MIRROR_UPLOAD_PASSWORD": "wrong-horse"}
    result = cli(
        "publish", "upload", "--spec", str(synced / "mirror.toml"), "--repository-url", pypiserver.url, env=env
    )
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: repository {pypiserver.url}/simple/: HTTP 403 (the credentials from MIRROR_UPLOAD_* were refused)\n"
    )
    assert "wrong-horse" not in result.output


def test_no_credentials_say_where_to_give_them(cli: Cli, pypiserver: PypiServer, synced: Path) -> None:
    result = cli("publish", "upload", "--spec", str(synced / "mirror.toml"), "--repository-url", pypiserver.url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: repository {pypiserver.url}/simple/: HTTP 401 (no credentials sent: set MIRROR_UPLOAD_USERNAME and"
        " MIRROR_UPLOAD_PASSWORD, or TWINE_*)\n"
    )


def test_credentials_in_the_url_are_refused(synced: Path) -> None:
    with pytest.raises(UploadError, match=r"^--repository-url: give the credentials in MIRROR_UPLOAD_USERNAME"):
        Repository(f"http://{USER}:{PASSWORD}@127.0.0.1:1/", requests.Session())


def test_a_server_with_no_simple_index_is_named(synced: Path, upstream: Upstream) -> None:
    url = upstream.url.rsplit("/", 1)[0] + "/nothing-here"
    with pytest.raises(UploadError) as info:
        Workspace.open(synced / "mirror.toml").publish_upload(url, environ={})
    assert str(info.value) == (
        f"repository {url}/: no simple index found ({url}/simple/ answered HTTP 404;"
        f" {url}/+simple/ answered HTTP 404); give --simple-url"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"MIRROR_UPLOAD_USERNAME": "a", "MIRROR_UPLOAD_PASSWORD": "b", "TWINE_USERNAME": "c"},
            ("a", "MIRROR_UPLOAD_*"),
        ),
        ({"TWINE_USERNAME": "c", "TWINE_PASSWORD": "d"}, ("c", "TWINE_*")),
        ({"MIRROR_UPLOAD_TOKEN": "t"}, ("__token__", "MIRROR_UPLOAD_*")),
        ({"TWINE_USERNAME": "c"}, ("c", "keyring")),  # twine's way: the password from keyring for that user
        ({}, None),
    ],
)
def test_upload_credentials(environ: dict[str, str], expected: tuple[str, str] | None) -> None:
    def keyring(url: str, username: str | None) -> tuple[str, str] | None:
        return (username, "from-keyring") if username else None

    found = upload_credentials("https://nexus.example/repository/pypi-internal/", environ=environ, keyring=keyring)
    assert (found.username, found.source) == expected if found else expected is None


def test_half_a_pair_of_upload_credentials_is_named() -> None:
    with pytest.raises(CredentialsError) as info:
        upload_credentials("https://n.example/r/", environ={"MIRROR_UPLOAD_PASSWORD": "x"}, keyring=None)
    assert str(info.value) == (
        "repository https://n.example/r: MIRROR_UPLOAD_PASSWORD is set but MIRROR_UPLOAD_USERNAME is not"
    )


def test_only_the_named_targets_files(pypiserver: PypiServer, synced: Path, manifest: Manifest) -> None:
    with pytest.raises(InvalidManifest, match=r"no target named 'no-such-target'; known: "):
        Workspace.open(synced / "mirror.toml").publish_upload(pypiserver.url, targets=["no-such-target"])
    assert pypiserver.files() == {}


def test_metadata_twine_refuses_goes_as_the_minimal_fields(tmp_path: Path) -> None:
    from mirror.manifest import FileEntry
    from mirror.upload import form_fields
    from tests.om_backend import om_backend

    good = om_backend.core_metadata("om-old", "1.0", requires_python=">=3.6")
    name = om_backend.write_wheel(str(tmp_path), "om-old", "1.0", {}, good.replace("\n\n", "\nNot-A-Field: x\n\n", 1))
    digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    entry = FileEntry(filename=name, project="om-old", version="1.0", kind="wheel", url=None, sha256=digest,
                      requires_python=">=3.6")  # fmt: skip
    fields, minimal = form_fields(tmp_path / name, entry)
    assert minimal
    assert fields == [("metadata_version", "1.0"), ("name", "om-old"), ("version", "1.0"),
                      ("filetype", "bdist_wheel"), ("pyversion", "py3"), ("sha256_digest", digest),
                      ("requires_python", ">=3.6")]  # fmt: skip
    (tmp_path / "ok").mkdir()
    good_name = om_backend.write_wheel(str(tmp_path / "ok"), "om-new", "2.0", {}, good.replace("om-old", "om-new"))
    fields, minimal = form_fields(tmp_path / "ok" / good_name, entry)
    assert not minimal and ("name", "om-new") in fields and ("requires_python", ">=3.6") in fields
