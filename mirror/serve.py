"""mirror serve: the embedded, read-only HTTP server for a wheelhouse tree — the default that needs no setup.

What it serves (an allow-list; everything else, and every dotfile, is a 404)::

    /                           wheelhouse/index.html (the page for people)
    /use.html                   "use this mirror" (a page for people)
    /projects/<project>.html    a project's page for people (normalized names only)
    /simple/                    PEP 503 / PEP 691 root, negotiated (Accept with q-values, or ?format=)
    /simple/<project>/          the project page, negotiated; non-normalized names get a 301
    /simple/[<project>/]index.{html,json}   the static files themselves
    /files/<project>/<file>     wheels, sdists and PEP 658 ``.metadata`` files: HEAD, Range, ETag

Index pages live in memory (keyed by file and variant, with their headers prebuilt) and are reloaded when the
file's size, mtime or inode changes, so ``mirror index`` while serving is picked up on the next request. Files are
streamed with ``loop.sendfile`` (zero-copy ``os.sendfile`` on Linux). No path leaves the tree: the request target
is decoded once, encoded separators (``%2f``, ``%5c``), NUL, ``.``/``..`` and dot segments are refused before the
filesystem is touched, and the resolved real path (symlinks followed) must still be inside the root.

How the server was chosen, and what it was measured against: docs/benchmarks.md (serve).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import os
import re
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import unquote, unquote_to_bytes

from mirror import __version__
from mirror.errors import MirrorError
from mirror.layout import HOME_PAGE, simple_dir

log = logging.getLogger(__name__)
access_logger = logging.getLogger("mirror.serve.access")

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

PAGE_CACHE_CONTROL = "public, max-age=60"
FILE_CACHE_CONTROL = "public, max-age=31536000, immutable"
KEEPALIVE_TIMEOUT = 30.0  # seconds an idle keep-alive connection stays open
HEAD_TIMEOUT = 30.0  # seconds to receive a complete request head
MAX_HEAD = 64 * 1024  # bytes of request line + headers
MAX_DISCARDED_BODY = 1024 * 1024  # a larger request body closes the connection instead of being read
SMALL_FILE = 256 * 1024  # files up to this size are read and written; larger ones go through sendfile


class ServeError(MirrorError):
    """The server cannot start: the tree is not there, or the address cannot be bound."""


# --- content negotiation (PEP 691) ------------------------------------------------------------------------

# Offers in server preference order (a tie in q goes to the first), as PyPI's: HTML first, so that a browser's
# or an old client's ``*/*`` gets HTML; the ``latest`` aliases name the v1 formats.
_OFFERS: tuple[tuple[str, str], ...] = (
    (TEXT_HTML, TEXT_HTML),
    (HTML_V1, HTML_V1),
    (JSON_V1, JSON_V1),
    ("application/vnd.pypi.simple.latest+html", HTML_V1),
    ("application/vnd.pypi.simple.latest+json", JSON_V1),
)
FORMATS: dict[str, str] = dict(_OFFERS)  # ?format= values and the media type each serves


def parse_accept(accept: str) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs of an Accept header, lower-cased; malformed items are dropped."""
    ranges = []
    for item in accept.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media.count("/") != 1:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
                if not 0.0 <= q <= 1.0:
                    q = -1.0
        if q >= 0.0:
            ranges.append((media, q))
    return ranges


def negotiate(accept: str | None, format: str | None = None) -> str | None:
    """The media type to serve for a Simple API page, or None (406) if nothing offered is acceptable.

    ``?format=`` (PEP 691's override) wins when given and must name an offered type exactly. Otherwise each
    offer gets the q of the most specific media range that matches it (``type/subtype`` over ``type/*`` over
    ``*/*``); the highest q above 0 wins, a tie goes to the server's preference (text/html, the v1 HTML type,
    the v1 JSON type). No or an empty Accept header means text/html.
    """
    if format is not None:
        return FORMATS.get(format.strip().lower())
    if accept is None or not accept.strip():
        return TEXT_HTML
    ranges = parse_accept(accept)
    best: str | None = None
    best_q = 0.0
    for offer, serves in _OFFERS:
        kind = offer.split("/", 1)[0]
        matched: tuple[int, float] | None = None  # (specificity, q)
        for media, q in ranges:
            if media == offer:
                specificity = 2
            elif media == f"{kind}/*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if matched is None or specificity > matched[0]:
                matched = (specificity, q)
        if matched is not None and matched[1] > best_q:
            best, best_q = serves, matched[1]
    return best


# --- byte ranges (RFC 9110 section 14) ---------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")


def parse_range(value: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The inclusive ``(first, last)`` byte positions a Range header asks of a ``size``-byte file.

    ``"unsatisfiable"`` (416) when the one range starts past the end or asks for a zero-length suffix; None when
    the header is not one well-formed ``bytes=`` range (a malformed header, another unit, or several ranges),
    which the server ignores and answers with the whole file.
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, sep, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not sep:
        return None
    if not first_text:  # suffix: the last N bytes
        if not _DIGITS.fullmatch(last_text):
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return (max(0, size - suffix), size - 1)
    if not _DIGITS.fullmatch(first_text) or (last_text and not _DIGITS.fullmatch(last_text)):
        return None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return (first, min(last, size - 1))


# --- routing: the request target to what it names, before any filesystem access ---------------------------

_NAME = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_.]+")
_SAFE_QUERY = re.compile(r"[\x21-\x7e]*")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


def normalize(name: str) -> str:
    """The PEP 503 normalized form of a project name."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """What a request target names.

    ``kind``: ``page`` (a file of the tree with a fixed media type), ``negotiated`` (a Simple API directory whose
    ``index.html`` / ``index.json`` is chosen per request), ``file`` (under ``files/``), ``redirect``
    (``location``), ``not-found`` or ``bad-request``.
    """

    kind: Literal["page", "negotiated", "file", "redirect", "not-found", "bad-request"]
    relpath: str = ""  # relative to the root, "/"-separated
    media_type: str = ""  # for pages
    location: str = ""  # for redirects
    query: str = ""


_NOT_FOUND = Route(kind="not-found")
_BAD_REQUEST = Route(kind="bad-request")
_PAGES = {"index.html": TEXT_HTML, "index.json": JSON_V1}


def _is_project_page(page: str) -> bool:
    """``<normalized project name>.html``."""
    name = page.removesuffix(".html")
    return name != page and bool(_NAME.match(name)) and normalize(name) == name


def route(target: str) -> Route:
    """Map a raw request target (origin-form or absolute-form, still percent-encoded) to a :class:`Route`.

    Pure: nothing here touches the filesystem. Anything that could name a path outside the allow-list — dot
    segments, dotfiles, empty segments, encoded ``/`` or ``\\``, backslashes, control characters — is
    ``not-found``; a target that is not a path at all, not UTF-8, or holds a NUL is ``bad-request``.
    """
    if target.startswith(("http://", "https://")):  # absolute-form: drop scheme and authority
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    raw, _, query = target.partition("?")
    raw = raw.partition("#")[0]
    if not raw.startswith("/"):
        return _BAD_REQUEST
    if "\\" in raw or ("%" in raw and _ENCODED_SEPARATOR.search(raw)):
        return _NOT_FOUND
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return _BAD_REQUEST
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return _BAD_REQUEST if "\x00" in path else _NOT_FOUND
    segments = path.split("/")[1:]
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment.startswith(".") or (not segment and i != last):
            return _NOT_FOUND
    query = query if _SAFE_QUERY.fullmatch(query) else ""
    suffix = f"?{query}" if query else ""
    match segments:
        case [""] | ["index.html"]:
            return Route(kind="page", relpath="index.html", media_type=TEXT_HTML)
        case ["use.html"]:
            return Route(kind="page", relpath="use.html", media_type=TEXT_HTML)
        case ["projects", page] if _is_project_page(page):
            return Route(kind="page", relpath=f"projects/{page}", media_type=TEXT_HTML)
        case ["simple"]:
            return Route(kind="redirect", location="/simple/" + suffix)
        case ["simple", ""]:
            return Route(kind="negotiated", relpath="simple", query=query)
        case ["simple", page] if page in _PAGES:
            return Route(kind="page", relpath=f"simple/{page}", media_type=_PAGES[page])
        case ["simple", name] | ["simple", name, ""] if _NAME.match(name):
            canonical = normalize(name)
            if canonical != name or len(segments) == 2:
                return Route(kind="redirect", location=f"/simple/{canonical}/{suffix}")
            return Route(kind="negotiated", relpath=f"simple/{name}", query=query)
        case ["simple", name, page] if page in _PAGES and _NAME.match(name) and normalize(name) == name:
            return Route(kind="page", relpath=f"simple/{name}/{page}", media_type=_PAGES[page])
        case ["files", project, filename] if project and filename:
            return Route(kind="file", relpath=f"files/{project}/{filename}")
    return _NOT_FOUND


def file_media_type(filename: str) -> str:
    """The Content-Type of a distribution file (as PyPI's file host sends; never a Content-Encoding)."""
    lower = filename.lower()
    if lower.endswith(".metadata"):
        return "text/plain; charset=utf-8"
    if lower.endswith((".tar.gz", ".tgz")):
        return "application/gzip"
    if lower.endswith(".zip"):
        return "application/zip"
    if lower.endswith(".tar.bz2"):
        return "application/x-bzip2"
    if lower.endswith(".tar.xz"):
        return "application/x-xz"
    return "application/octet-stream"  # .whl, .egg, anything else


# --- responses ---------------------------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    206: "Partial Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}
_SERVER = f"offline-mirror/{__version__}"


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers, each line CRLF-terminated, without Date, Connection and the blank line."""
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: {_SERVER}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    return "".join(lines).encode("latin-1")


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    """One response: ``head`` (see :func:`_head`) plus a body in memory or a byte span of an open file."""

    status: int
    head: bytes
    body: bytes = b""
    path: str | None = None  # a file to send ``count`` bytes of, from ``offset``
    offset: int = 0
    count: int = 0

    @property
    def length(self) -> int:
        return self.count if self.path is not None else len(self.body)


def _error(status: int, message: str, extra: list[tuple[str, str]] | None = None) -> Response:
    body = f"{status} {_REASONS[status]}: {message}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *(extra or []),
    ]
    return Response(status=status, head=_head(status, headers), body=body)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 section 13.1.2): ``*`` or any listed tag equal to ``etag`` ignoring ``W/``."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def _not_modified_since(if_modified_since: str, mtime: float) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return int(mtime) <= since.timestamp()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Page:
    """A cached index page variant: what identifies the file on disk, and its prebuilt responses."""

    key: tuple[int, int, int]  # st_ino, st_size, st_mtime_ns
    ok: Response
    not_modified: Response
    etag: str
    last_modified: str
    mtime: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """The parts of a parsed request the site looks at (header values as sent, or None)."""

    method: str
    target: str
    accept: str | None = None
    range: str | None = None
    if_range: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None


class Site:
    """Answers requests from one tree: routing, negotiation, the page cache, conditional and range requests.

    No sockets here; :class:`Server` frames the HTTP around it. Safe to use from one event loop thread.
    """

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ServeError(f"{root}: no such directory (run mirror sync, or pass --root)")
        if not (simple_dir(root) / HOME_PAGE).is_file():
            raise ServeError(f"{root}: not an index tree: simple/index.html is missing (run mirror index)")
        self.root = root
        self._real_root = os.path.realpath(root)
        self._prefix = self._real_root.rstrip(os.sep) + os.sep
        self._pages: dict[tuple[str, str, bool], _Page] = {}
        self._routes: dict[str, Route] = {}
        self._negotiated: dict[tuple[str | None, str | None], str | None] = {}

    def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "this index is read-only", [("Allow", "GET, HEAD")])
        found = self._routes.get(request.target)
        if found is None:
            found = route(request.target)
            if len(self._routes) > 4096:
                self._routes.clear()
            self._routes[request.target] = found
        kind = found.kind
        if kind == "negotiated":
            return self._negotiated_page(found, request)
        if kind == "file":
            return self._file(found.relpath, request)
        if kind == "page":
            return self._page(found.relpath, found.media_type, request, vary=False) or _error(404, "no such page")
        if kind == "redirect":
            return Response(
                status=301,
                head=_head(301, [("Location", found.location), ("Content-Length", "0")]),
            )
        if kind == "bad-request":
            return _error(400, "the request target is not a path")
        return _error(404, "not in this index")

    def _negotiated_page(self, found: Route, request: Request) -> Response:
        format = None
        if found.query:
            # unquote, not unquote_plus: "?format=application/vnd.pypi.simple.v1+json" as people type it
            format = next(
                (unquote(v) for k, _, v in (p.partition("=") for p in found.query.split("&")) if k == "format"), None
            )
        cache_key = (request.accept, format)
        media_type = self._negotiated.get(cache_key, "")
        if media_type == "":
            media_type = negotiate(request.accept, format)
            if len(self._negotiated) > 256:
                self._negotiated.clear()
            self._negotiated[cache_key] = media_type
        if media_type is None:
            offered = ", ".join(offer for offer, _ in _OFFERS[:3])
            return _error(406, f"offered: {offered}", [("Vary", "Accept")])
        page = "index.json" if media_type == JSON_V1 else "index.html"
        response = self._page(f"{found.relpath}/{page}", media_type, request, vary=True)
        if response is None:
            return _error(404, "no such project in this index", [("Vary", "Accept")])
        return response

    def _page(self, relpath: str, media_type: str, request: Request, *, vary: bool) -> Response | None:
        path = f"{self._real_root}/{relpath}"
        try:
            st = os.stat(path)
        except OSError:
            self._pages.pop((relpath, media_type, vary), None)
            return None
        cached = self._pages.get((relpath, media_type, vary))
        if cached is None or cached.key != (st.st_ino, st.st_size, st.st_mtime_ns):
            cached = self._load_page(relpath, media_type, vary)
            if cached is None:
                return None
            self._pages[(relpath, media_type, vary)] = cached
        if request.if_none_match is not None:
            if _etag_matches(request.if_none_match, cached.etag):
                return cached.not_modified
        elif request.if_modified_since is not None and _not_modified_since(request.if_modified_since, cached.mtime):
            return cached.not_modified
        return cached.ok

    def _inside(self, relpath: str) -> str | None:
        """The real path of ``relpath`` if it stays in the same top-level directory of the tree (``files/``,
        ``simple/``, or the root itself) with no dotfile on the way, symlinks followed; else None."""
        real = os.path.realpath(f"{self._real_root}/{relpath}")
        if not real.startswith(self._prefix):
            return None
        parts = real[len(self._prefix) :].split(os.sep)
        if any(part.startswith(".") for part in parts):
            return None
        top, slash, _ = relpath.partition("/")
        if parts[0] != top or (len(parts) > 1) != bool(slash):
            return None
        return real

    def _load_page(self, relpath: str, media_type: str, vary: bool) -> _Page | None:
        real = self._inside(relpath)
        if real is None:
            return None
        try:
            with open(real, "rb") as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None
                body = handle.read()
        except OSError:
            return None
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        content_type = f"{media_type}; charset=utf-8" if media_type == TEXT_HTML else media_type
        validators = [
            ("ETag", etag),
            ("Last-Modified", last_modified),
            ("Cache-Control", PAGE_CACHE_CONTROL),
            *([("Vary", "Accept")] if vary else []),
        ]
        ok = _head(200, [("Content-Type", content_type), ("Content-Length", str(len(body))), *validators])
        return _Page(
            key=(st.st_ino, st.st_size, st.st_mtime_ns),
            ok=Response(status=200, head=ok, body=body),
            not_modified=Response(status=304, head=_head(304, validators)),
            etag=etag,
            last_modified=last_modified,
            mtime=st.st_mtime,
        )

    def _file(self, relpath: str, request: Request) -> Response:
        real = self._inside(relpath)
        try:
            st = os.stat(real) if real is not None else None
        except OSError:
            st = None
        if real is None or st is None or not stat.S_ISREG(st.st_mode):
            return _error(404, "no such file in this index")
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        validators = [("ETag", etag), ("Last-Modified", last_modified), ("Cache-Control", FILE_CACHE_CONTROL)]
        if request.if_none_match is not None:
            if _etag_matches(request.if_none_match, etag):
                return Response(status=304, head=_head(304, validators))
        elif request.if_modified_since is not None and _not_modified_since(request.if_modified_since, st.st_mtime):
            return Response(status=304, head=_head(304, validators))
        content_type = ("Content-Type", file_media_type(relpath))
        accept_ranges = ("Accept-Ranges", "bytes")
        wanted = None
        if request.range is not None and (
            request.if_range is None or request.if_range.strip() in (etag, last_modified)
        ):
            wanted = parse_range(request.range, size)
        if wanted == "unsatisfiable":
            return _error(416, f"the file has {size} bytes", [("Content-Range", f"bytes */{size}"), accept_ranges])
        if wanted is None:
            status, first, count = 200, 0, size
            extra = []
        else:
            first, last = wanted
            status, count = 206, last - first + 1
            extra = [("Content-Range", f"bytes {first}-{last}/{size}")]
        head = _head(status, [content_type, ("Content-Length", str(count)), *extra, accept_ranges, *validators])
        if request.method == "HEAD":
            return Response(status=status, head=head, count=count)
        if count <= SMALL_FILE:
            try:
                with open(real, "rb") as handle:
                    body = os.pread(handle.fileno(), count, first)
            except OSError:
                return _error(404, "no such file in this index")
            if len(body) != count:  # changed under us
                return _error(500, "the file changed while it was read")
            return Response(status=status, head=head, body=body)
        return Response(status=status, head=head, path=real, offset=first, count=count)


# --- HTTP/1.1 framing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessRecord:
    """One served request, for the access log."""

    client: str
    method: str
    target: str
    status: int
    nbytes: int  # body bytes sent
    duration: float  # seconds, until the last byte was handed to the kernel

    def format(self) -> str:
        return f'{self.client} "{self.method} {self.target}" {self.status} {self.nbytes} {self.duration * 1000:.2f}ms'


AccessLog = Callable[[AccessRecord], None]


def _log_access(record: AccessRecord) -> None:
    access_logger.info("%s", record.format())


_date_cache: tuple[int, bytes] = (0, b"")


def _date_line() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n".encode())
    return _date_cache[1]


_WANTED = {
    b"accept": "accept",
    b"range": "range",
    b"if-range": "if_range",
    b"if-none-match": "if_none_match",
    b"if-modified-since": "if_modified_since",
    b"connection": "connection",
    b"content-length": "content_length",
    b"transfer-encoding": "transfer_encoding",
}


class _Connection(asyncio.Protocol):
    """One client connection: parses pipelined requests in order and answers each through the :class:`Site`."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._site = server.site
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._client = "-"
        self._busy = False  # a file is being sent; later requests wait in the buffer
        self._paused = False  # the transport's write buffer is full
        self._closing = False
        self._discard = 0  # request body bytes still to skip
        self._idle_since = time.monotonic()
        self._head_started: float | None = None
        self._closing_after_response = False  # the server is shutting down
        self._eof = False  # the client sends no more
        self._reading_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._client = str(peer[0])
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._head_started is None:
            self._head_started = time.monotonic()
        self._buffer += data
        self._process()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close (keep the transport open for that)."""
        self._eof = True
        self._process()
        return True

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None and not self._closing:
            if self._reading_paused:
                self._reading_paused = False
                self._transport.resume_reading()
            # not directly: this runs inside the transport's write path, where closing the transport (after a
            # "Connection: close" request) makes asyncio call connection_lost twice
            asyncio.get_running_loop().call_soon(self._process)

    # lifecycle

    def idle_check(self, now: float) -> None:
        """Close an idle keep-alive connection, or one that has not finished sending its request head."""
        if self._busy or self._closing or self._transport is None:
            return
        if self._head_started is not None:
            if now - self._head_started > self._server.head_timeout:
                self._fail(408, "the request head took too long")
        elif now - self._idle_since > self._server.keepalive_timeout:
            self._close()

    def shutdown(self) -> None:
        """Finish the response under way, if any, then close."""
        if self._busy:
            self._closing_after_response = True
            self._buffer.clear()
        else:
            self._close()

    def abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, status: int, message: str) -> None:
        """Answer a request that cannot be parsed, and close."""
        response = _error(status, message)
        self._server.record(self._client, "-", "-", status, len(response.body), 0.0)
        if self._transport is not None:
            self._transport.write(response.head + _date_line() + b"Connection: close\r\n\r\n" + response.body)
        self._close()

    # parsing

    def _process(self) -> None:
        buffer = self._buffer
        while not self._busy and not self._closing:
            if self._paused:  # the client is not reading: stop reading its requests too
                if self._transport is not None and not self._reading_paused:
                    self._transport.pause_reading()
                    self._reading_paused = True
                return
            if self._discard:
                skipped = min(self._discard, len(buffer))
                del buffer[:skipped]
                self._discard -= skipped
                if self._discard:
                    if self._eof:
                        self._close()
                    return
            while buffer[:2] == b"\r\n":  # RFC 9112: ignore empty lines before a request line
                del buffer[:2]
            crlf = buffer.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
            lf = buffer.find(b"\n\n", 0, MAX_HEAD + 2)
            if lf >= 0 and (crlf < 0 or lf < crlf):  # bare LF line ends (RFC 9112 allows accepting them)
                lines = [line.rstrip(b"\r") for line in bytes(buffer[:lf]).split(b"\n")]
                del buffer[: lf + 2]
            elif crlf >= 0:
                lines = bytes(buffer[:crlf]).split(b"\r\n")
                del buffer[: crlf + 4]
            else:
                if len(buffer) > MAX_HEAD:
                    self._fail(431, "the request head is too large")
                elif self._eof:
                    self._close()
                elif not buffer:
                    self._head_started = None
                return
            self._request(lines)
            if not buffer:
                self._head_started = None

    def _request(self, lines: list[bytes]) -> None:
        started = time.perf_counter()
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self._fail(400, "malformed request line")
            return
        method_bytes, target_bytes, version = parts
        if version == b"HTTP/1.1":
            keep_alive = True
        elif version == b"HTTP/1.0":
            keep_alive = False
        elif version.startswith(b"HTTP/"):
            self._fail(505, "HTTP/1.1 and HTTP/1.0 only")
            return
        else:
            self._fail(400, "malformed request line")
            return
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name[-1] in b" \t" or name[0] in b" \t":
                self._fail(400, "malformed header field")
                return
            key = _WANTED.get(name.lower())
            if key is not None:
                text = value.strip().decode("latin-1")
                if key in fields:
                    if key == "content_length":
                        if fields[key] != text:
                            self._fail(400, "conflicting Content-Length")
                            return
                        continue
                    text = f"{fields[key]}, {text}"
                fields[key] = text
        connection = fields.get("connection")
        if connection is not None:
            tokens = {token.strip().lower() for token in connection.split(",")}
            if "close" in tokens:
                keep_alive = False
            elif "keep-alive" in tokens and version == b"HTTP/1.0":
                keep_alive = True
        method = method_bytes.decode("latin-1")
        target = target_bytes.decode("latin-1")
        if "transfer_encoding" in fields:  # a body of unknown length: answer, then close
            keep_alive = False
        elif "content_length" in fields:
            text = fields["content_length"]
            if not _DIGITS.fullmatch(text):
                self._fail(400, "malformed Content-Length")
                return
            length = int(text)
            if length > MAX_DISCARDED_BODY:
                keep_alive = False
            else:
                self._discard = length
        if self._closing_after_response:
            keep_alive = False
        try:
            response = self._site.respond(
                Request(
                    method=method,
                    target=target,
                    accept=fields.get("accept"),
                    range=fields.get("range"),
                    if_range=fields.get("if_range"),
                    if_none_match=fields.get("if_none_match"),
                    if_modified_since=fields.get("if_modified_since"),
                )
            )
        except Exception:  # a bug must not take the server down with it
            log.exception("error answering %s %s", method, target)
            response = _error(500, "see the server log")
        if keep_alive:
            connection_line = b"Connection: keep-alive\r\n\r\n" if version == b"HTTP/1.0" else b"\r\n"
        else:
            connection_line = b"Connection: close\r\n\r\n"
        transport = self._transport
        assert transport is not None
        head_only = method == "HEAD" or response.status == 304
        if response.path is None or head_only:
            # logged before the write: by the time a client has its response, the access log has the line
            self._done(method, target, response.status, 0 if head_only else len(response.body), started, keep_alive)
            if head_only:
                transport.write(response.head + _date_line() + connection_line)
            else:
                transport.write(response.head + _date_line() + connection_line + response.body)
            if not keep_alive or self._closing_after_response:
                self._close()
            return
        transport.write(response.head + _date_line() + connection_line)
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._send_file(response))
        task.add_done_callback(lambda t: self._file_sent(t, method, target, response, started, keep_alive))

    async def _send_file(self, response: Response) -> None:
        assert response.path is not None and self._transport is not None
        with open(response.path, "rb") as handle:
            sent = await asyncio.get_running_loop().sendfile(
                self._transport, handle, response.offset, response.count, fallback=True
            )
        if sent != response.count:
            raise OSError(f"{response.path}: sent {sent} of {response.count} bytes")

    def _file_sent(
        self,
        task: asyncio.Task[None],
        method: str,
        target: str,
        response: Response,
        started: float,
        keep_alive: bool,
    ) -> None:
        self._busy = False
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            if error is not None and not self._closing:
                log.warning("sending %s failed: %s", target, error)
            self._server.record(self._client, method, target, response.status, 0, time.perf_counter() - started)
            self._close()
            return
        self._done(method, target, response.status, response.count, started, keep_alive)
        if not keep_alive or self._closing_after_response:
            self._close()
        else:
            self._process()

    def _done(self, method: str, target: str, status: int, nbytes: int, started: float, keep_alive: bool) -> None:
        self._server.record(self._client, method, target, status, nbytes, time.perf_counter() - started)
        self._idle_since = time.monotonic()


# --- the server ---------------------------------------------------------------------------------------------


class Server:
    """Serves one tree on one address. :meth:`start` and :meth:`aclose` run on an event loop.

    ``access_log`` gets an :class:`AccessRecord` per request; by default they go to the
    ``mirror.serve.access`` logger at INFO. An idle keep-alive connection is closed after ``keepalive_timeout``
    seconds, one that has not sent a complete request head after ``head_timeout`` seconds gets a 408.
    """

    def __init__(
        self,
        root: Path,
        *,
        access_log: AccessLog | None = None,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self.site = Site(root)
        self.keepalive_timeout = keepalive_timeout
        self.head_timeout = head_timeout
        self.root = root
        self.connections: set[_Connection] = set()
        self._access_log = access_log or _log_access
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.host = ""
        self.port = 0

    @property
    def url_host(self) -> str:
        """The host as clients should write it in a URL: a wildcard address becomes this machine's name."""
        host = socket.gethostname() if self.host in ("", "0.0.0.0", "::") else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def url(self) -> str:
        """``http://host:port/``."""
        return f"http://{self.url_host}:{self.port}/"

    @property
    def index_url(self) -> str:
        """The Simple API root: what ``pip --index-url`` and ``uv --default-index`` take."""
        return self.url + "simple/"

    def record(self, client: str, method: str, target: str, status: int, nbytes: int, duration: float) -> None:
        try:
            self._access_log(
                AccessRecord(
                    client=client, method=method, target=target, status=status, nbytes=nbytes, duration=duration
                )
            )
        except Exception:
            log.exception("the access log callback failed")

    async def start(self, host: str = "127.0.0.1", port: int = 3141) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), host or None, port, backlog=1024, reuse_address=True
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
        address = self._server.sockets[0].getsockname()
        self.host, self.port = host, int(address[1])
        self._sweeper = loop.create_task(self._sweep())
        log.info("serving %s on %s", self.root, self.url)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self.keepalive_timeout, self.head_timeout) / 3)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.idle_check(now)

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop listening; let responses under way finish (for up to ``grace`` seconds); close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()


@contextlib.contextmanager
def serving(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    access_log: AccessLog | None = None,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
    head_timeout: float = HEAD_TIMEOUT,
) -> Iterator[Server]:
    """Serve ``root`` from a background thread for the duration of the ``with`` block (``port=0``: any free port)."""
    server = Server(root, access_log=access_log, keepalive_timeout=keepalive_timeout, head_timeout=head_timeout)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"mirror-serve-{root.name}", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(host, port), loop).result(timeout=30)
        yield server
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def run(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 3141,
    access_log: AccessLog | None = None,
    ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve ``root`` in this thread until SIGINT or SIGTERM, then shut down cleanly.

    ``ready`` is called once the socket listens (the CLI prints the URL and client commands there).
    """
    server = Server(root, access_log=access_log)

    async def main() -> None:
        await server.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            if ready is not None:
                ready(server)
            await stop.wait()
            log.info("shutting down")
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            await server.aclose()

    asyncio.run(main())
