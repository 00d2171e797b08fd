"""Host the mirror in devpi-server: publish the wheelhouse into a devpi index, or run a devpi-server for it.

Teams that want devpi's users, ACLs and replicas publish the verified wheelhouse into a devpi index instead
of serving the static tree. The index is created as a ``stage`` with **no bases** — it never proxies PyPI, so
a package that is not in the mirror fails to install instead of being fetched from elsewhere — and
**non-volatile**: like PyPI, a filename once published never changes content, which is what clients pinning
sha256 rely on (devpi itself then refuses to overwrite or delete a release, for every uploader).

devpi's HTTP API, as implemented by devpi-server 6 (``devpi_server/views.py``) and used by devpi-client
(``devpi/login.py``, ``devpi/upload.py``). devpi-client is not used: it is a command line tool keeping state in a
client directory, with no library API, and publishing needs only these requests:

* ``GET /+api`` (``Accept: application/json``): ``{"type": "apiconfig", ...}`` — is this a devpi-server?
* ``POST /+login`` with JSON ``{"user", "password"}``: ``{"result": {"password": TOKEN, "expiration": s}}``;
  every later request carries ``X-Devpi-Auth: base64("USER:TOKEN")``. A bad password is a 401.
* ``GET /USER`` / ``PUT /USER`` with JSON ``{"password"}``: read / create a user (201; anyone may, by default).
* ``GET /USER/INDEX`` / ``PUT /USER/INDEX`` with JSON ``{"type", "bases", "volatile"}``: read / create an index;
  the config lists the index's ``projects``.
* ``GET /USER/INDEX/PROJECT?ignore_bases`` (``Accept: application/json``): per version, ``+links`` with
  ``rel: releasefile``, ``href`` and ``hashes.sha256`` — the files on this index only, not its bases'.
* ``POST /USER/INDEX/`` multipart, fields ``:action=file_upload``, ``name``, ``version`` (must occur in the
  filename), optional metadata such as ``requires_python`` (devpi serves it per version as
  ``data-requires-python``), and the file as ``content``. 200 on success — also for an identical file on a
  non-volatile index; 409 for a different file under the same name.

A file is uploaded when it is locked, present and verified in the wheelhouse, and not on the index; one that
is there with another sha256 stops the run before anything is uploaded.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from packaging.utils import canonicalize_name

from mirror import _atomic
from mirror._http import DEFAULT_TIMEOUT, request_error_reason
from mirror._process import Runner, run_command
from mirror._verified import verified_files
from mirror.errors import MirrorError
from mirror.manifest import FileEntry, Manifest
from mirror.progress import Progress

log = logging.getLogger(__name__)

#: The index publish creates: never proxies anything, never changes a published file.
INDEX_CONFIG: Mapping[str, object] = {"type": "stage", "bases": [], "volatile": False}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
CREDENTIALS = ".mirror-credentials"  # in a server directory devpi-serve made: passwords it generated


class DevpiError(MirrorError):
    """devpi-server cannot be reached, refuses a request, or is not installed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexName:
    """``USER/INDEX``."""

    user: str
    name: str

    @classmethod
    def parse(cls, text: str) -> IndexName:
        user, slash, name = text.partition("/")
        if not slash or not _NAME.fullmatch(user) or not _NAME.fullmatch(name):
            raise DevpiError(f"index {text!r} is not USER/INDEX")
        return cls(user=user, name=name)

    def __str__(self) -> str:
        return f"{self.user}/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishPlan:
    """What one publish does with each locked file."""

    upload: tuple[FileEntry, ...]
    present: tuple[str, ...]  # already on the index with the locked sha256
    skipped: tuple[str, ...]  # locked but missing or unverified in the wheelhouse


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishResult:
    index_url: str  # https://host/USER/INDEX
    uploaded: tuple[str, ...]
    present: tuple[str, ...]
    skipped: tuple[str, ...]
    created_user: bool
    created_index: bool
    bases: tuple[str, ...]  # of an index that existed already; publish creates none

    @property
    def simple_url(self) -> str:
        """What pip and uv take as ``--index-url``."""
        return f"{self.index_url}/+simple/"


def upload_version(filename: str) -> str:
    """The version exactly as it appears in a wheel or sdist filename (devpi checks it occurs there)."""
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    return stem.rpartition("-")[2]


def local_files(manifest: Manifest, files_dir: Path) -> tuple[list[FileEntry], list[str]]:
    """The locked files present and verified under ``files_dir``, and the names of the others."""
    return verified_files(manifest, files_dir, purpose="published")


def plan(
    ready: Iterable[FileEntry], skipped: Iterable[str], remote: Mapping[str, str], *, index_url: str
) -> PublishPlan:
    """Compare the local files with the index's (filename → sha256); a file with another sha256 is an error."""
    upload: list[FileEntry] = []
    present: list[str] = []
    for file in sorted(ready, key=lambda f: f.filename):
        theirs = remote.get(file.filename)
        if theirs is None:
            upload.append(file)
        elif theirs == file.sha256:
            present.append(file.filename)
        else:
            raise DevpiError(
                f"{index_url}: {file.filename} is already there with sha256 {theirs}, the lock says {file.sha256}"
            )
    return PublishPlan(upload=tuple(upload), present=tuple(present), skipped=tuple(sorted(skipped)))


def _message(response: requests.Response) -> str:
    """devpi's one-line reason: the JSON ``message``, the HTML ``<title>``, or the HTTP reason."""
    text = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
    except ValueError:
        match = _TITLE.search(response.text)
        if match:
            text = match.group(1).removeprefix(str(response.status_code)).strip()
    text = " ".join((text or response.reason or "").split())
    return text[:200]


class DevpiClient:
    """devpi-server's HTTP API, for what publishing needs."""

    def __init__(self, url: str, session: requests.Session, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise DevpiError(f"devpi {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self._auth: dict[str, str] = {}

    def _request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        url = f"{self.url}/{path}"
        headers = {"Accept": "application/json", **self._auth, **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise DevpiError(f"devpi {self.url}: cannot connect: {request_error_reason(exc)}") from None
        if response.status_code not in expect:
            raise DevpiError(f"devpi {method} {url}: {response.status_code} {_message(response)}".rstrip())
        return response

    def _result(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise DevpiError(f"devpi {response.url}: the answer is not JSON") from None
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise DevpiError(f"devpi {response.url}: the answer has no result object")
        return result

    def check(self) -> None:
        """Fail early, with one line, unless a devpi-server answers at the URL."""
        response = self._request("GET", "+api", expect=range(100, 600))
        try:
            kind = response.json().get("type") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            kind = None
        if kind != "apiconfig":
            answer = f"{response.status_code} {_message(response)}".rstrip()
            raise DevpiError(f"devpi {self.url}: not a devpi-server (GET /+api answered {answer})")

    def login(self, user: str, password: str) -> None:
        """``POST /+login``; every later request is authenticated with the token."""
        response = self._request("POST", "+login", json={"user": user, "password": password})
        token = self._result(response).get("password")
        if not isinstance(token, str):
            raise DevpiError(f"devpi {self.url}/+login: the answer has no token")
        self._auth = {"X-Devpi-Auth": base64.b64encode(f"{user}:{token}".encode()).decode("ascii")}

    def user_exists(self, user: str) -> bool:
        return self._request("GET", user, expect=(200, 404)).status_code == 200

    def create_user(self, user: str, password: str) -> None:
        self._request("PUT", user, expect=(201,), json={"password": password})

    def index_config(self, index: IndexName) -> dict[str, Any] | None:
        """The index's configuration (with its ``projects``), or None if there is no such index."""
        response = self._request("GET", str(index), expect=(200, 404))
        return self._result(response) if response.status_code == 200 else None

    def create_index(self, index: IndexName) -> dict[str, Any]:
        return self._result(self._request("PUT", str(index), json=dict(INDEX_CONFIG)))

    def project_files(self, index: IndexName, project: str) -> dict[str, str]:
        """filename → sha256 of the release files of ``project`` on this index itself (not its bases)."""
        response = self._request("GET", f"{index}/{project}?ignore_bases", expect=(200, 404))
        if response.status_code == 404:
            return {}
        files: dict[str, str] = {}
        for version in self._result(response).values():
            links = version.get("+links", []) if isinstance(version, dict) else []
            for link in links:
                if not isinstance(link, dict) or link.get("rel") != "releasefile":
                    continue
                filename = unquote(urlsplit(str(link.get("href", ""))).path.rsplit("/", 1)[-1])
                hashes = link.get("hashes")
                sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
                spec = str(link.get("hash_spec", ""))  # older devpi-server versions give only hash_spec
                if sha256 is None and spec.startswith("sha256="):
                    sha256 = spec.removeprefix("sha256=")
                files[filename] = str(sha256)
        return files

    def upload(self, index: IndexName, file: FileEntry, path: Path) -> None:
        fields = {":action": "file_upload", "name": file.project, "version": upload_version(file.filename)}
        if file.requires_python:
            fields["requires_python"] = file.requires_python
        try:
            with path.open("rb") as handle:
                self._request("POST", f"{index}/", data=fields, files={"content": (file.filename, handle)})
        except OSError as exc:
            raise DevpiError(f"{path}: cannot read: {exc.strerror}") from None


def publish(
    manifest: Manifest,
    files_dir: Path,
    *,
    url: str,
    index: IndexName,
    session: requests.Session,
    user: str | None = None,
    password: str | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Upload every locked, verified file of the wheelhouse that the devpi index does not have yet.

    With a password, the user (``user``, or the index's user) is created if missing and logged in; the index
    is created if missing, with no bases and non-volatile. Without one, only what needs no login is done.
    """
    client = DevpiClient(url, session)
    client.check()
    created_user = False
    if password is not None:
        login = user or index.user
        if not client.user_exists(login):
            client.create_user(login, password)
            created_user = True
            log.info("created devpi user %s", login)
        client.login(login, password)
    index_url = f"{client.url}/{index}"
    config = client.index_config(index)
    created_index = config is None
    if config is None:
        if password is None:
            raise DevpiError(f"devpi {index_url}: no such index; give --user and --password to create it")
        config = client.create_index(index)
        log.info("created devpi index %s", index)
    if config.get("type") != "stage":
        raise DevpiError(f"devpi {index_url}: a {config.get('type')!r} index takes no uploads; use a stage index")
    ready, skipped = local_files(manifest, files_dir)
    remote_projects = {canonicalize_name(str(p)) for p in config.get("projects", [])}
    remote: dict[str, str] = {}
    for project in sorted({f.project for f in ready}):
        if canonicalize_name(project) in remote_projects:
            remote.update(client.project_files(index, project))
    work = plan(ready, skipped, remote, index_url=index_url)
    if work.upload and password is None:
        raise DevpiError(f"devpi {index_url}: {len(work.upload)} files to upload; give --user and --password")
    uploaded = []
    for file in work.upload:
        client.upload(index, file, files_dir / file.relpath)
        uploaded.append(file.filename)
        if progress is not None:
            progress.message(f"uploaded {file.filename}")
    return PublishResult(
        index_url=index_url,
        uploaded=tuple(uploaded),
        present=work.present,
        skipped=work.skipped,
        created_user=created_user,
        created_index=created_index,
        bases=() if created_index else tuple(str(b) for b in config.get("bases", [])),
    )


# -- running devpi-server -----------------------------------------------------------------------------------


def find_executable(name: str) -> str:
    """A devpi console script next to this Python (its venv) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise DevpiError(f"{name} is not installed: pip install devpi-server")
    return found


def is_initialized(serverdir: Path) -> bool:
    """Whether devpi-init has run there (devpi itself checks for ``.nodeinfo``)."""
    return (serverdir / ".nodeinfo").is_file()


def init_serverdir(
    serverdir: Path, *, root_password: str, runner: Runner = run_command, executable: str | None = None
) -> bool:
    """``devpi-init --no-root-pypi`` (no PyPI mirror at all) unless done already; True if it ran."""
    if is_initialized(serverdir):
        return False
    command = [
        executable or find_executable("devpi-init"),
        "--serverdir",
        str(serverdir),
        "--no-root-pypi",
        "--root-passwd",
        root_password,
    ]
    done = runner(command, dict(os.environ))
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        raise DevpiError(f"devpi-init --serverdir {serverdir} failed: {lines[-1] if lines else done.returncode}")
    return True


def prepare_serverdir(serverdir: Path, *, user: str, password: str | None) -> tuple[str, list[str]]:
    """Ready ``serverdir`` for ``devpi-serve``: ``user``'s password (``password``, else one generated and kept in
    the server directory) and ``devpi-init`` with no PyPI mirror if new; the password and notes for the user."""
    notes = []
    if password is None:
        password = stored_password(serverdir, user)
        notes.append(f"password of devpi user {user}: in {serverdir / CREDENTIALS}")
    # root gets the publisher's password if it is the publisher, otherwise one nobody knows (devpi-passwd resets it)
    if init_serverdir(serverdir, root_password=password if user == "root" else secrets.token_urlsafe(24)):
        root = "" if user == "root" else f"; root's password is random: devpi-passwd --serverdir {serverdir} root"
        notes.append(f"initialised {serverdir}: no PyPI mirror{root}")
    return password, notes


def stored_password(serverdir: Path, user: str) -> str:
    """The password devpi-serve generated for ``user`` in this server directory, made on first use (0600)."""
    path = serverdir / CREDENTIALS
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        users = dict(stored["users"])
    except FileNotFoundError:
        users = {}
    except (OSError, ValueError, KeyError, TypeError):
        raise DevpiError(f"{path}: unreadable; remove it or give --password") from None
    if not isinstance(users.get(user), str):
        users[user] = secrets.token_urlsafe(24)
        _atomic.write_text(path, json.dumps({"users": users}, indent=1) + "\n", mode=0o600)
    return str(users[user])


Spawn = Callable[[Sequence[str], Path], "subprocess.Popen[bytes]"]


def spawn(args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """The default way to start devpi-server: its output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as output:
        return subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)


def server_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_port(host: str, port: int) -> None:
    """Fail at once if nothing can listen on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as devpi-server's waitress does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DevpiError(f"cannot listen on {server_url(host, port)}: {exc.strerror}") from None


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return f"{lines[-1][:200]} (log: {path})" if lines else f"see {path}"


class DevpiServer:
    """A devpi-server child process over an initialised server directory; a context manager that stops it."""

    def __init__(
        self,
        serverdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 3141,
        log_path: Path | None = None,
        executable: str | None = None,
        spawn: Spawn = spawn,
    ) -> None:
        self.serverdir = serverdir
        self.host = host
        self.port = port
        self.log_path = log_path or serverdir / "devpi-server.log"
        self.executable = executable
        self._spawn = spawn
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients on this machine reach it."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return server_url(host, self.port)

    def start(self) -> None:
        if not is_initialized(self.serverdir):
            raise DevpiError(f"{self.serverdir}: not a devpi-server directory (run devpi-init)")
        _check_port(self.host, self.port)  # devpi-server needs seconds to start before it finds out
        args = [
            self.executable or find_executable("devpi-server"),
            "--serverdir",
            str(self.serverdir),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        self.process = self._spawn(args, self.log_path)

    def wait_ready(self, session: requests.Session, *, timeout: float = 60.0, interval: float = 0.2) -> None:
        """Until ``GET /+api`` answers 200; an error if the process exits or ``timeout`` seconds pass."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise DevpiError(f"devpi-server exited with status {code} at startup: {_last_line(self.log_path)}")
            try:
                if session.get(f"{self.url}/+api", timeout=(1.0, 5.0)).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise DevpiError(
                    f"devpi-server did not answer at {self.url} within {timeout:.0f}s; see {self.log_path}"
                )
            time.sleep(interval)

    def wait(self) -> int:
        """Block until the child exits; its status."""
        assert self.process is not None, "start() first"
        return self.process.wait()

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; nothing if it has exited."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("devpi-server did not stop within %.0fs; killing it", timeout)
            process.kill()
            process.wait()

    def __enter__(self) -> DevpiServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
