"""One view of every upstream index with the routing enforced, for the lock stage and the resolver under it.

:class:`Router` answers "the files of project X" from the one place X may come from (:class:`mirror.indexes.Routing`):
its ``[[index]]``, the index a lock or project names for it, the find-links folders, or else the default index.
The Locker reads pages through it, and so does the resolver: :func:`serve_router` puts the Router behind a PEP 691
Simple API on 127.0.0.1 for the run, and uv (or pip-compile, or a build backend's environment) is given that one
URL as its only index.

Why not uv's own explicit indexes: ``[tool.uv.sources] acme-auth = { index = "internal" }`` pins only a *direct*
dependency. A transitive ``acme-core`` would still be looked up on the default index, where a same-named public
upload wins (uv 0.13, checked: the resolution picks the public ``acme-core 9.9`` over the internal ``1.0``), and its
metadata — or, for an sdist, its ``setup.py`` — is read before anything could refuse it. Behind the router there is
nothing to refuse: uv never sees a file of a name from an index that name is not routed to.

Credentials stay here. A file on a host whose index needs credentials (or in a find-links folder) is listed at a
router URL and streamed from its origin with the session's :class:`~mirror.credentials.IndexAuth`; every other file
keeps its origin URL, so uv reads PEP 658 metadata and caches as it always does. Every router URL starts with a
random path segment: another user of the machine cannot read private files through it while the lock runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import requests
from packaging.utils import canonicalize_name

from mirror._http import DEFAULT_TIMEOUT
from mirror.credentials import IndexAuth
from mirror.errors import MirrorError
from mirror.findlinks import FindLinks
from mirror.indexes import FIND_LINKS, Routing, RoutingError, undeclared_index_error
from mirror.simple import JSON_TYPE, DistFile, ProjectPage, SimpleClient, UnknownProject
from mirror.sources import Inputs

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_CHUNK = 1 << 20


def routing_for(routing: Routing, inputs: Iterable[Inputs], find_links: FindLinks | None = None) -> Routing:
    """``routing`` plus the exact names the sources tie to an index (a lock's registry, a project's
    ``[tool.uv.sources]``) and the projects of the find-links folders. An index a source names that the spec does
    not declare is a :class:`~mirror.indexes.RoutingError` showing the ``[[index]]`` table to add."""
    routes: list[tuple[str, str, str]] = []
    for part in inputs:
        for route in part.index_routes():
            index = routing.declared(route.url)
            if index is None:
                raise undeclared_index_error(route.url, where=route.origin, indexes=routing.indexes)
            routes.append((route.name, index.name, f"{route.origin} (index {route.url})"))
    if find_links is not None:
        routes += [(name, FIND_LINKS, f"find-links {path}") for name, path in find_links.projects().items()]
    return routing.with_routes(routes)


class Router:
    """Project pages by routing; remembers what failed, to explain a resolver's failure in the index's words."""

    def __init__(self, routing: Routing, session: requests.Session, *, find_links: FindLinks | None = None) -> None:
        self.routing = routing
        self.session = session
        self.find_links = find_links
        self.clients = {index.name: SimpleClient(index, session) for index in routing.indexes}
        self._failures: list[MirrorError] = []
        self._missing: dict[str, str] = {}  # routed names their index does not list -> where they are routed
        self._lock = threading.Lock()

    def check(self) -> None:
        """Every declared index answers (one clear line naming the first that does not)."""
        for client in self.clients.values():
            client.check()

    def where(self, project: str) -> str:
        """Where ``project`` comes from, for messages: ``index 'internal' (https://…)`` or ``find-links``."""
        source = self.routing.source_of(project)
        return "the find-links folders" if source == FIND_LINKS else self.clients[source].label

    def project(self, name: str) -> ProjectPage:
        """The page of ``name`` from the one place it is routed to."""
        try:
            source = self.routing.source_of(name)
        except RoutingError as exc:
            with self._lock:
                self._failures.append(exc)
            raise
        try:
            if source == FIND_LINKS and self.find_links is not None:
                return self.find_links.project(name)
            return self.clients[source].project(name)
        except UnknownProject:
            if source != self.routing.default.name:
                with self._lock:
                    self._missing[str(canonicalize_name(name))] = self.where(name)
            raise
        except MirrorError as exc:
            with self._lock:
                self._failures.append(exc)
            raise

    def explain(self, error: MirrorError) -> MirrorError:
        """The error to report for a resolver's ``error``: the first index failure behind it, if any; else the
        resolver's own words, plus where the routed names it could not find were looked for."""
        with self._lock:
            if self._failures:
                return self._failures[0]
            text = str(error)
            notes = [f"{n} comes only from {where}" for n, where in sorted(self._missing.items()) if n in text]
        return type(error)(f"{text} ({'; '.join(notes)})") if notes else error

    def sends_credentials(self, url: str) -> bool:
        auth = self.session.auth
        return isinstance(auth, IndexAuth) and auth.for_url(url) is not None

    def open(self, file: DistFile, *, metadata: bool = False) -> tuple[Iterator[bytes], int | None]:
        """The bytes of ``file`` (or of its PEP 658 metadata) from its origin, and their length when known."""
        url = file.url + (".metadata" if metadata else "")
        if url.startswith("file:"):
            path = Path(url2pathname(urlsplit(url).path))

            def read() -> Iterator[bytes]:
                with path.open("rb") as f:
                    yield from iter(lambda: f.read(_CHUNK), b"")

            return read(), path.stat().st_size
        response = self.session.get(url, stream=True, timeout=DEFAULT_TIMEOUT)
        if response.status_code != 200:
            response.close()
            raise UnknownProject(f"{file.filename}: {url} answered HTTP {response.status_code}")
        length = response.headers.get("Content-Length")
        return response.iter_content(_CHUNK), int(length) if length and length.isdigit() else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    router: Router
    prefix: str  # "/<random token>": another user of this machine cannot read private files through the router

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("router: a connection from the resolver failed", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("router: " + format, *args)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if not path.startswith(self.server.prefix + "/"):
            self._send(404, "text/plain", b"not found\n", body)
            return
        path = path[len(self.server.prefix) :]
        try:
            if path in ("/simple", "/simple/"):
                self._send(200, JSON_TYPE, json.dumps({"meta": {"api-version": "1.1"}, "projects": []}).encode(), body)
            elif match := re.fullmatch(r"/simple/([^/]+)/?", path):
                page = self.server.router.project(match[1])
                self._send(200, JSON_TYPE, self._page(page).encode(), body)
            elif match := re.fullmatch(r"/files/([^/]+)/([^/]+)", path):
                self._file(match[1], match[2], body)
            else:
                self._send(404, "text/plain", b"not found\n", body)
        except UnknownProject as exc:
            self._send(404, "text/plain", f"{exc}\n".encode(), body)
        except (MirrorError, RoutingError, requests.RequestException, OSError) as exc:
            self._send(502, "text/plain", f"{exc}\n".encode(), body)

    def _send(self, status: int, content_type: str, data: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _url(self, file: DistFile) -> str:
        if file.url.startswith("file:") or self.server.router.sends_credentials(file.url):
            port = self.server.server_address[1]
            return f"http://{LOOPBACK}:{port}{self.server.prefix}/files/{quote(file.project)}/{quote(file.filename)}"
        return file.url

    def _page(self, page: ProjectPage) -> str:
        """The PEP 691 page of ``page``'s files, each at its origin URL or at the router's."""
        files = []
        for file in page.files:
            item = file.to_dict()
            item["url"] = self._url(file)
            item["hashes"] = {"sha256": file.sha256} if file.sha256 else {}
            item["requires-python"] = item.pop("requires_python")
            item["upload-time"] = item.pop("upload_time")
            item["core-metadata"] = (
                {"sha256": file.core_metadata_sha256} if file.core_metadata_sha256 else file.has_core_metadata
            )
            files.append({key: value for key, value in item.items() if value is not None and key != "sha256"})
        versions = sorted({str(f.version) for f in page.files})
        return json.dumps({"meta": {"api-version": "1.1"}, "name": page.name, "versions": versions, "files": files})

    def _file(self, project: str, filename: str, body: bool) -> None:
        """A file of a routed page, from its origin: only files the router lists are served."""
        metadata = filename.endswith(".metadata")
        wanted = filename.removesuffix(".metadata") if metadata else filename
        page = self.server.router.project(project)
        file = next((f for f in page.files if f.filename == wanted), None)
        if file is None:
            self._send(404, "text/plain", b"not listed\n", body)
            return
        chunks, length = self.server.router.open(file, metadata=metadata)
        data = None
        if length is None:
            data = b"".join(chunks)
            length = len(data)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not body:
            return
        if data is not None:
            self.wfile.write(data)
        else:
            for chunk in chunks:
                self.wfile.write(chunk)


@contextlib.contextmanager
def serve_router(router: Router) -> Iterator[str]:
    """Serve ``router`` on 127.0.0.1 (a free port) until the block ends; yields its Simple API root URL."""
    server = _Server((LOOPBACK, 0), _Handler)
    server.router = router
    server.prefix = "/" + secrets.token_urlsafe(16)
    thread = threading.Thread(target=server.serve_forever, name="mirror-router", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}{server.prefix}/simple"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
