"""A local upstream package index for tests: small wheels and sdists built by hand, served over HTTP.

Three layers, each usable alone:

1. **Distributions.** :class:`Release` describes one project version (its wheels by tag, its sdist
   kind, its dependencies, whether it is yanked); :func:`build_dists` writes the files of many
   releases, plus wheels repacked from distributions installed in the test environment
   (:func:`repack_installed`: setuptools, wheel and packaging, so that pip's isolated builds of
   legacy projects work with no network). Wheels and sdists are written by
   ``tests/om_backend/om_backend.py``, the PEP 517 backend that the fixture sdists build with.
2. **Index.** :class:`Index` scans a directory of distributions (any directory, not only ours) and
   renders PEP 503 HTML and PEP 691 JSON pages with hashes, ``requires-python``, PEP 592 yanks and
   PEP 658/714 core metadata.
3. **Server.** :func:`serve_dir` serves an :class:`Index` on 127.0.0.1 (a free port) from a daemon
   thread, records every request in :attr:`Upstream.requests` and lets a test replace any response
   with a :data:`Fault` (see :func:`fail_times`, :func:`wrong_bytes`, :func:`drop_after`).

The pip helpers at the bottom (:func:`isolated_env`, :func:`pip_command`) run pip against the
index only: no host configuration, no cache, and a dead proxy for every other host.
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import html
import http.client
import importlib.metadata
import json
import os
import socket
import struct
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from tests.om_backend import om_backend as backend

if TYPE_CHECKING:
    from mirror.serve import AccessRecord

__all__ = [
    "DEFAULT_RELEASES",
    "DEFAULT_REPACK",
    "HTML_V1",
    "JSON_V1",
    "AccessLog",
    "BackendSdist",
    "Catalog",
    "Fault",
    "FixtureError",
    "HttpResult",
    "Index",
    "IndexFile",
    "Release",
    "Request",
    "RequestLog",
    "Response",
    "SetuptoolsSdist",
    "Upstream",
    "build_dists",
    "build_release",
    "close_after",
    "delay",
    "drop_after",
    "fail_times",
    "free_port",
    "http_request",
    "isolated_env",
    "negotiate",
    "pip_command",
    "project_html",
    "project_json",
    "repack_installed",
    "reset_connection",
    "respond",
    "retry_after",
    "root_html",
    "root_json",
    "scan_file",
    "serve_dir",
    "synced_workspace",
    "throttle",
    "write_host_spec",
    "wrong_bytes",
]

HOST = "127.0.0.1"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.1"
# Every host but the fixture goes through this proxy, where nothing listens: a request that
# escapes the index fails at once instead of reaching the network.
DEAD_PROXY = f"http://{HOST}:9"
BACKEND_SOURCE = Path(backend.__file__)


class FixtureError(Exception):
    """The fixture cannot build or serve what was asked."""


# --- distributions -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendSdist:
    """An sdist built by ``om_backend`` (``[build-system] build-backend = "om_backend"``)."""

    build_requires: tuple[str, ...] = ("om-backend",)
    dynamic_requires: tuple[str, ...] = ()  # returned by get_requires_for_build_wheel
    import_check: tuple[str, ...] = ()  # modules that must import while the wheel is built


@dataclass(frozen=True, kw_only=True, slots=True)
class SetuptoolsSdist:
    """A legacy setuptools sdist: ``setup.py``, no ``pyproject.toml``.

    Its ``build_py`` command imports the first ``setup_requires`` project and writes
    ``<package>/_stamp.py`` from it, so a built wheel proves that setup_requires was satisfied.
    """

    setup_requires: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """One version of one project, and the files the index offers for it."""

    name: str
    version: str
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    wheel_tags: tuple[str, ...] = ("py3-none-any",)  # () for an sdist-only release
    sdist: BackendSdist | SetuptoolsSdist | None = None
    yanked: str | None = None  # the PEP 592 reason; "" yanks without a reason
    upload_time: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)
    # path -> content of the shipped sources; None: a package ``<import name>/__init__.py``
    # holding NAME, VERSION and BUILT_FOR (the wheel tag, or "source" in an sdist).
    files: Mapping[str, bytes] | None = None

    @property
    def package(self) -> str:
        return backend.escaped(self.name)

    def sources(self, built_for: str) -> dict[str, bytes]:
        if self.files is not None:
            return dict(self.files)
        init = f"NAME = {self.name!r}\nVERSION = {self.version!r}\nBUILT_FOR = {built_for!r}\n"
        return {f"{self.package}/__init__.py": init.encode()}

    def metadata(self, metadata_version: str = "2.1") -> str:
        return backend.core_metadata(
            self.name,
            self.version,
            self.requires_dist,
            self.requires_python,
            summary=f"{self.name}: an offline-mirror test fixture",
            metadata_version=metadata_version,
        )


NATIVE_TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp311-cp311-musllinux_1_2_x86_64",
    "cp311-cp311-win_amd64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-manylinux_2_28_x86_64",
    "cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
)

DEFAULT_RELEASES: tuple[Release, ...] = (
    Release(name="om-pure", version="0.9", sdist=BackendSdist(), yanked="broken"),
    Release(name="om-pure", version="1.0", requires_python=">=3.8", sdist=BackendSdist()),
    Release(
        name="om-pure",
        version="2.0",
        requires_python=">=3.9",
        requires_dist=('om-winhelper; sys_platform == "win32"', "om-dep"),
        sdist=BackendSdist(),
    ),
    Release(name="om-dep", version="1.0"),
    Release(name="om-winhelper", version="1.0", wheel_tags=("py3-none-win_amd64",)),
    Release(name="om-native", version="1.0", wheel_tags=NATIVE_TAGS, sdist=BackendSdist()),
    Release(
        name="om-backend",
        version="1.0",
        files={"om_backend.py": BACKEND_SOURCE.read_bytes()},
    ),
    Release(name="om-buildhelper", version="1.0", wheel_tags=(), sdist=BackendSdist()),
    Release(
        name="om-sdistonly",
        version="1.0",
        wheel_tags=(),
        sdist=BackendSdist(
            build_requires=("om-backend", "om-buildhelper"),
            dynamic_requires=("om-dynamic",),
            import_check=("om_buildhelper", "om_dynamic"),
        ),
    ),
    Release(name="om-dynamic", version="1.0"),
    Release(
        name="om-setupreq",
        version="1.0",
        wheel_tags=(),
        sdist=SetuptoolsSdist(setup_requires=("om-setuphelper",)),
    ),
    Release(name="om-setuphelper", version="1.0"),
)

# Installed distributions repacked into wheels: what pip's isolated build of a legacy setuptools
# project installs (setuptools, then the "wheel" its backend asks for, which needs packaging).
DEFAULT_REPACK: tuple[str, ...] = ("setuptools", "wheel", "packaging")


def _toml_array(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _pyproject(release: Release, sdist: BackendSdist) -> str:
    """pyproject.toml in the subset of TOML that om_backend parses without tomllib."""
    lines = [
        "[build-system]",
        f"requires = {_toml_array(sdist.build_requires)}",
        'build-backend = "om_backend"',
        "",
        "[project]",
        f"name = {json.dumps(release.name)}",
        f"version = {json.dumps(release.version)}",
    ]
    if release.requires_python is not None:
        lines.append(f"requires-python = {json.dumps(release.requires_python)}")
    lines.append(f"dependencies = {_toml_array(release.requires_dist)}")
    if sdist.dynamic_requires or sdist.import_check:
        lines += [
            "",
            "[tool.om-backend]",
            f"dynamic-requires = {_toml_array(sdist.dynamic_requires)}",
            f"import-check = {_toml_array(sdist.import_check)}",
        ]
    return "\n".join(lines) + "\n"


_SETUP_PY = '''\
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_stamp(build_py):
    """Stamps the package from {helper}, which only setup_requires provides."""

    def run(self):
        super().run()
        import {helper}

        target = os.path.join(self.build_lib, {package!r}, "_stamp.py")
        with open(target, "w") as f:
            f.write("STAMP = %r\\n" % ({helper}.NAME + " " + {helper}.VERSION))


setup(
    name={name!r},
    version={version!r},
    packages=[{package!r}],
    install_requires={install_requires!r},
    setup_requires={setup_requires!r},
    cmdclass={{"build_py": build_py_with_stamp}},
)
'''


def _sdist_files(release: Release, sdist: BackendSdist | SetuptoolsSdist) -> dict[str, bytes]:
    files = release.sources("source")
    if isinstance(sdist, BackendSdist):
        files["pyproject.toml"] = _pyproject(release, sdist).encode()
        return files
    if not sdist.setup_requires:
        raise FixtureError(f"{release.name} {release.version}: SetuptoolsSdist needs setup_requires")
    helper = backend.escaped(sdist.setup_requires[0])
    files["setup.py"] = _SETUP_PY.format(
        helper=helper,
        package=release.package,
        name=release.name,
        version=release.version,
        install_requires=list(release.requires_dist),
        setup_requires=list(sdist.setup_requires),
    ).encode()
    return files


def _stamp(path: Path, when: datetime) -> None:
    ts = when.timestamp()
    os.utime(path, (ts, ts))


def build_release(release: Release, files_dir: Path) -> list[str]:
    """Write the wheels and sdist of ``release`` into ``files_dir``; return their file names."""
    written: list[str] = []
    purelib = all(tag.endswith("-none-any") for tag in release.wheel_tags)
    for tag in release.wheel_tags:
        written.append(
            backend.write_wheel(
                str(files_dir),
                release.name,
                release.version,
                release.sources(tag),
                release.metadata(),
                tag=tag,
                root_is_purelib=purelib,
            )
        )
    if release.sdist is not None:
        written.append(
            backend.write_sdist(
                str(files_dir),
                release.name,
                release.version,
                _sdist_files(release, release.sdist),
                release.metadata(metadata_version="2.2"),
            )
        )
    for filename in written:
        _stamp(files_dir / filename, release.upload_time)
    return written


_NOT_REPACKED = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL", "METADATA"}


def repack_installed(name: str, files_dir: Path) -> str:
    """Write a wheel of the distribution ``name`` installed in this interpreter's environment.

    The files come from ``importlib.metadata`` (its RECORD); ``RECORD`` and ``WHEEL`` are written
    anew; compiled bytecode and files installed outside site-packages (scripts) are left out.
    Only pure distributions can be repacked.
    """
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise FixtureError(
            f"cannot repack {name!r}: it is not installed in the test environment "
            f"({sys.executable}); install it there (it is a test dependency)"
        ) from None
    files = dist.files
    metadata_path = next(
        (f for f in files or () if f.name == "METADATA" and f.parent.name.endswith(".dist-info")),
        None,
    )
    if files is None or metadata_path is None:
        raise FixtureError(f"cannot repack {name!r}: it has no RECORD (not installed from a wheel)")
    dist_info = metadata_path.parent.as_posix()
    wheel_text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")]
    if not tags or not all(t.endswith("-none-any") for t in tags):
        raise FixtureError(f"cannot repack {name!r}: its wheel tags {tags} are not pure")
    pythons = sorted({t.split("-")[0] for t in tags})
    sources: dict[str, bytes] = {}
    dist_info_extra: dict[str, bytes] = {}
    for f in files:
        posix = f.as_posix()
        if posix.startswith("../") or "__pycache__" in f.parts or posix.endswith(".pyc"):
            continue
        location = Path(str(f.locate()))
        if not location.is_file():
            continue
        if posix.startswith(dist_info + "/"):
            member = posix[len(dist_info) + 1 :]
            if member not in _NOT_REPACKED:
                dist_info_extra[member] = location.read_bytes()
        else:
            sources[posix] = location.read_bytes()
    metadata = Path(str(metadata_path.locate())).read_text(encoding="utf-8")
    return backend.write_wheel(
        str(files_dir),
        dist.metadata["Name"],
        dist.version,
        sources,
        metadata,
        tag=".".join(pythons) + "-none-any",
        dist_info_extra=dist_info_extra,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Catalog:
    """What :func:`build_dists` wrote: pass ``yanked`` on to :func:`serve_dir`."""

    files_dir: Path
    filenames: tuple[str, ...]
    yanked: Mapping[str, str]  # filename -> reason


def build_dists(
    files_dir: Path,
    releases: Iterable[Release] = DEFAULT_RELEASES,
    repack: Iterable[str] = DEFAULT_REPACK,
) -> Catalog:
    files_dir.mkdir(parents=True, exist_ok=True)
    filenames: list[str] = []
    yanked: dict[str, str] = {}
    for release in releases:
        written = build_release(release, files_dir)
        filenames += written
        if release.yanked is not None:
            yanked.update(dict.fromkeys(written, release.yanked))
    for name in repack:
        filenames.append(repack_installed(name, files_dir))
    return Catalog(files_dir=files_dir, filenames=tuple(filenames), yanked=yanked)


# --- index -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexFile:
    filename: str
    project: str  # normalized
    version: Version
    sha256: str
    size: int
    upload_time: datetime
    requires_python: str | None
    yanked: str | None
    metadata: bytes | None  # the wheel's METADATA, served as <filename>.metadata (PEP 658)

    @property
    def metadata_sha256(self) -> str | None:
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()


def _wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise FixtureError(f"{path.name}: expected one .dist-info/METADATA, found {names}")
        return zf.read(names[0])


def _sdist_metadata(path: Path) -> bytes | None:
    if not path.name.endswith(".tar.gz"):
        return None
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                f = tar.extractfile(member)
                return None if f is None else f.read()
    return None


def scan_file(path: Path, yanked: str | None = None) -> IndexFile | None:
    """Describe one distribution file; None if its name is not a wheel's or an sdist's."""
    metadata: bytes | None
    core: bytes | None
    try:
        if path.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
            metadata = _wheel_metadata(path)
            core = metadata
        else:
            name, version = parse_sdist_filename(path.name)
            metadata, core = None, _sdist_metadata(path)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    data = path.read_bytes()
    requires_python = None
    if core is not None:
        parsed = email.parser.BytesParser().parsebytes(core, headersonly=True)
        requires_python = parsed.get("Requires-Python")
    return IndexFile(
        filename=path.name,
        project=canonicalize_name(name),
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        upload_time=datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc),
        requires_python=requires_python,
        yanked=yanked,
        metadata=metadata,
    )


class Index:
    """The distributions of one directory, rescanned on every call (changed files only)."""

    def __init__(self, files_dir: Path, yanked: Mapping[str, str] | None = None) -> None:
        self.files_dir = files_dir
        self.yanked: dict[str, str] = dict(yanked or {})
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int, str | None], IndexFile | None]] = {}

    def files(self) -> list[IndexFile]:
        found: list[IndexFile] = []
        with self._lock:
            names = sorted(p.name for p in self.files_dir.iterdir() if p.is_file())
            for name in names:
                stat = (self.files_dir / name).stat()
                key = (stat.st_mtime_ns, stat.st_size, self.yanked.get(name))
                cached = self._cache.get(name)
                if cached is None or cached[0] != key:
                    cached = (key, scan_file(self.files_dir / name, self.yanked.get(name)))
                    self._cache[name] = cached
                if cached[1] is not None:
                    found.append(cached[1])
        return found

    def projects(self) -> dict[str, list[IndexFile]]:
        projects: dict[str, list[IndexFile]] = {}
        for f in self.files():
            projects.setdefault(f.project, []).append(f)
        for files in projects.values():
            files.sort(key=lambda f: (f.version, f.filename))
        return dict(sorted(projects.items()))

    def file(self, filename: str) -> IndexFile | None:
        return next((f for f in self.files() if f.filename == filename), None)


def _upload_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def root_html(projects: Iterable[str]) -> str:
    links = "".join(f'<a href="{quote(p)}/">{html.escape(p)}</a><br/>\n' for p in projects)
    return (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
        "<title>Simple index</title></head><body>\n"
        f"{links}</body></html>\n"
    )


def root_json(projects: Iterable[str]) -> dict[str, object]:
    return {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}


def project_html(project: str, files: Sequence[IndexFile], url: Callable[[str], str]) -> str:
    anchors = []
    for f in files:
        attrs = [f'href="{html.escape(url(f.filename))}#sha256={f.sha256}"']
        if f.requires_python is not None:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.yanked is not None:
            attrs.append(f'data-yanked="{html.escape(f.yanked)}"')
        if f.metadata is not None:
            attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
            attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
        anchors.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>\n")
    return (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
        f"<title>Links for {html.escape(project)}</title></head><body>\n"
        f"<h1>Links for {html.escape(project)}</h1>\n{''.join(anchors)}</body></html>\n"
    )


def project_json(project: str, files: Sequence[IndexFile], url: Callable[[str], str]) -> dict[str, object]:
    entries: list[dict[str, object]] = []
    for f in files:
        metadata: object = False if f.metadata is None else {"sha256": f.metadata_sha256}
        yanked: object = False if f.yanked is None else (f.yanked or True)
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": url(f.filename),
            "hashes": {"sha256": f.sha256},
        }
        if f.requires_python is not None:
            entry["requires-python"] = f.requires_python
        entry.update(
            {
                "yanked": yanked,
                "core-metadata": metadata,
                # as pypi.org does: the legacy name with the data- prefix, which pip 22.3-23.1 ignore (under
                # "dist-info-metadata" they crash: pypa/pip#12042, PEP 714)
                "data-dist-info-metadata": metadata,
                "size": f.size,
                "upload-time": _upload_time(f.upload_time),
            }
        )
        entries.append(entry)
    versions = sorted({f.version for f in files})
    return {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": [str(v) for v in versions],
        "files": entries,
    }


_OFFERS = {
    JSON_V1: JSON_V1,
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    HTML_V1: HTML_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
    "text/html": "text/html",
    "text/*": "text/html",
    "*/*": "text/html",
}


def negotiate(accept: str | None) -> str | None:
    """The content type for an ``Accept`` header (PEP 691); None if nothing offered is acceptable.

    The highest q-value wins; on a tie, the type listed first. No header means HTML.
    """
    if not accept or not accept.strip():
        return "text/html"
    best, best_q = None, 0.0
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offer = _OFFERS.get(media.lower())
        if offer is not None and q > best_q:
            best, best_q = offer, q
    return best


# --- server ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    method: str
    path: str  # the request target, query string included
    accept: str | None
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


class RequestLog:
    """The requests a server has seen, in order; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Request] = []

    def append(self, request: Request) -> None:
        with self._lock:
            self._items.append(request)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> tuple[Request, ...]:
        with self._lock:
            return tuple(self._items)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.snapshot() if method is None or r.method == method]

    def __iter__(self) -> Iterator[Request]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class UpstreamHandler(BaseHTTPRequestHandler):
    """Serves one connection. Faults receive it: they may call :meth:`send` or write raw bytes."""

    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30
    head_only = False

    def do_GET(self) -> None:
        self.head_only = False
        self._dispatch()

    def do_HEAD(self) -> None:
        self.head_only = True
        self._dispatch()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log is Upstream.requests

    @property
    def route(self) -> str:
        """The unquoted path, without query string."""
        return unquote(urlsplit(self.path).path)

    def _dispatch(self) -> None:
        upstream = self.server.upstream
        upstream.requests.append(Request(method=self.command, path=self.path, accept=self.headers.get("Accept")))
        fault = upstream.faults.get(self.route)
        if fault is not None and fault(self):
            return
        self.send(self.response())

    def send(self, response: Response) -> None:
        """Send ``response`` (only its headers for HEAD)."""
        self.send_response(response.status)
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not self.head_only:
            self.wfile.write(response.body)

    def response(self) -> Response:
        """The response the index gives to this request when no fault intervenes."""
        upstream = self.server.upstream
        route = self.route
        if route == "/simple":
            return _redirect("/simple/")
        if route.startswith("/simple/"):
            name = route[len("/simple/") :]
            if name == "":
                return self._page(None)
            project = name.rstrip("/")
            if "/" in project:
                return _not_found()
            if project != canonicalize_name(project) or not name.endswith("/"):
                return _redirect(f"/simple/{canonicalize_name(project)}/")
            return self._page(project)
        if route.startswith("/files/"):
            filename = route[len("/files/") :]
            if "/" in filename:
                return _not_found()
            if filename.endswith(".metadata"):
                f = upstream.index.file(filename[: -len(".metadata")])
                if f is None or f.metadata is None:
                    return _not_found()
                return Response(status=200, body=f.metadata, headers={"Content-Type": "text/plain"})
            f = upstream.index.file(filename)
            if f is None:
                return _not_found()
            return Response(
                status=200,
                body=(upstream.files_dir / filename).read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
        return _not_found()

    def _page(self, project: str | None) -> Response:
        upstream = self.server.upstream
        query = dict(p.partition("=")[::2] for p in urlsplit(self.path).query.split("&") if p)
        content_type = negotiate(unquote(query.get("format", "")) or self.headers.get("Accept"))
        if content_type is None:
            return Response(status=406, body=b"not acceptable\n", headers={"Content-Type": "text/plain"})
        projects = upstream.index.projects()
        document: object
        if project is None:
            text = root_html(projects)
            document = root_json(projects)
        else:
            files = projects.get(project)
            if files is None:
                return _not_found()
            text = project_html(project, files, upstream.file_url)
            document = project_json(project, files, upstream.file_url)
        body = json.dumps(document, indent=1).encode() if content_type == JSON_V1 else text.encode()
        return Response(status=200, body=body, headers={"Content-Type": content_type, "Vary": "Accept"})


def _redirect(location: str) -> Response:
    return Response(status=301, headers={"Location": location})


def _not_found() -> Response:
    return Response(status=404, body=b"not found\n", headers={"Content-Type": "text/plain"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up (or faults that hang up on them) are part of the tests; anything
        # else is a fixture bug, kept for the test to see in Upstream.errors.
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, (ConnectionError, TimeoutError)):
            self.upstream.errors.append(error)


# A fault may answer a request itself: it gets the handler and returns True when it has
# responded (or hung up), False to let the index answer normally.
Fault = Callable[[UpstreamHandler], bool]


class Upstream:
    """A running index server. Use :func:`serve_dir` to start one."""

    def __init__(self, index: Index, *, absolute_urls: bool = False) -> None:
        self.index = index
        self.requests = RequestLog()
        # request path ("/files/<name>", "/simple/<project>/", ...) -> fault
        self.faults: dict[str, Fault] = {}
        self.errors: list[BaseException] = []  # exceptions raised while serving (fixture bugs)
        self.absolute_urls = absolute_urls
        self._server = _Server((HOST, 0), UpstreamHandler)
        self._server.upstream = self
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}"
        self.url = f"{self.base_url}/simple"  # the index URL to give pip, uv and the mirror
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"upstream:{self.port}", daemon=True)

    @property
    def files_dir(self) -> Path:
        return self.index.files_dir

    def file_url(self, filename: str) -> str:
        """A file's URL as the project pages give it: relative to the page, or absolute."""
        if self.absolute_urls:
            return f"{self.base_url}/files/{quote(filename)}"
        return f"../../files/{quote(filename)}"

    def project_url(self, project: str) -> str:
        return f"{self.url}/{canonicalize_name(project)}/"

    def inject(self, target: str, fault: Fault) -> None:
        """Make ``fault`` answer requests for ``target``: a file name or a request path."""
        path = target if target.startswith("/") else f"/files/{target}"
        self.faults[path] = fault

    def yank(self, filename: str, reason: str = "") -> None:
        self.index.yanked[filename] = reason

    def reset(self) -> None:
        """Forget the requests and errors seen and remove every fault."""
        self.requests.clear()
        self.faults.clear()
        self.errors.clear()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def serve_dir(
    files_dir: Path,
    *,
    yanked: Mapping[str, str] | None = None,
    absolute_urls: bool = False,
) -> Iterator[Upstream]:
    """Serve the distributions in ``files_dir`` as an index on 127.0.0.1 until the block ends."""
    upstream = Upstream(Index(files_dir, yanked), absolute_urls=absolute_urls)
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.close()


# --- faults ------------------------------------------------------------------------------------


def fail_times(times: int, status: int = 500) -> Fault:
    """Answer ``status`` to the first ``times`` requests, then let the index answer."""
    lock = threading.Lock()
    remaining = [times]

    def fault(handler: UpstreamHandler) -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
        handler.send(Response(status=status, body=b"injected failure\n", headers={"Content-Type": "text/plain"}))
        return True

    return fault


def wrong_bytes(body: bytes) -> Fault:
    """Answer 200 with ``body`` instead of the real content."""

    def fault(handler: UpstreamHandler) -> bool:
        real = handler.response()
        handler.send(Response(status=200, body=body, headers=real.headers))
        return True

    return fault


def _send_real_head(handler: UpstreamHandler) -> Response:
    """Send the status line and headers the index would (Content-Length included); the response, to send from."""
    real = handler.response()
    handler.send_response(real.status)
    for name, value in {"Content-Length": str(len(real.body)), **real.headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    return real


def drop_after(nbytes: int) -> Fault:
    """Announce the real Content-Length, send ``nbytes`` of the body, then hang up."""

    def fault(handler: UpstreamHandler) -> bool:
        real = _send_real_head(handler)
        handler.wfile.write(real.body[:nbytes])
        handler.wfile.flush()
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        return True

    return fault


def _first(times: int) -> Callable[[], bool]:
    """A thread-safe countdown: True for the first ``times`` calls, then False."""
    lock = threading.Lock()
    remaining = [times]

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    return take


def respond(response: Response) -> Fault:
    """Answer every request with ``response`` (a hostile page, a status the index never gives)."""

    def fault(handler: UpstreamHandler) -> bool:
        handler.send(response)
        return True

    return fault


def retry_after(times: int, seconds: str, status: int = 429) -> Fault:
    """Answer ``status`` with ``Retry-After: seconds`` to the first ``times`` requests, then let the index answer."""
    take = _first(times)

    def fault(handler: UpstreamHandler) -> bool:
        if not take():
            return False
        handler.send(Response(status=status, body=b"slow down\n", headers={"Retry-After": seconds}))
        return True

    return fault


def reset_connection(times: int = 1) -> Fault:
    """Hang up with a TCP reset, before any response, on the first ``times`` requests."""
    take = _first(times)

    def fault(handler: UpstreamHandler) -> bool:
        if not take():
            return False
        handler.close_connection = True
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()  # linger 0: the close sends RST
        return True

    return fault


def delay(seconds: float, times: int = 1) -> Fault:
    """Wait ``seconds`` before answering the first ``times`` requests (a response slower than a client timeout)."""
    take = _first(times)

    def fault(handler: UpstreamHandler) -> bool:
        if take():
            time.sleep(seconds)
        return False

    return fault


def close_after(nbytes: int, times: int = 1) -> Fault:
    """The first ``times`` requests: 200 with no Content-Length and ``nbytes`` of the body, then close — a
    truncated body the client cannot tell from a complete one (only the hash can)."""
    take = _first(times)

    def fault(handler: UpstreamHandler) -> bool:
        if not take():
            return False
        real = handler.response()
        handler.send_response(real.status)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(real.body[:nbytes])
        handler.close_connection = True
        return True

    return fault


def throttle(chunk: int, pause: float) -> Fault:
    """Send the real response ``chunk`` bytes at a time, ``pause`` seconds apart (a slow upstream)."""

    def fault(handler: UpstreamHandler) -> bool:
        real = _send_real_head(handler)
        if handler.head_only:
            return True
        for start in range(0, len(real.body), chunk):
            handler.wfile.write(real.body[start : start + chunk])
            handler.wfile.flush()
            time.sleep(pause)
        return True

    return fault


# --- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


def http_request(url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None) -> HttpResult:
    """One request to a loopback URL: no proxies, no redirects followed, no retries."""
    parts = urlsplit(url)
    if parts.hostname not in (HOST, "localhost") or parts.port is None:
        raise FixtureError(f"{url}: http_request only talks to {HOST}")
    conn = http.client.HTTPConnection(HOST, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
        return HttpResult(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            body=body,
        )
    finally:
        conn.close()


_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def isolated_env(home: Path, *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a pip (or setuptools) subprocess that may only use the fixture index.

    Every ``PIP_*`` variable of the host is dropped (this machine sets PIP_FIND_LINKS and more),
    pip reads no configuration file (``PIP_CONFIG_FILE=os.devnull``), ``HOME`` is ``home`` (no
    ~/.pydistutils.cfg, no user config), and every host but 127.0.0.1 is behind a dead proxy, so
    a request that escapes the index fails instead of reaching the network. The environment is
    inherited by the build subprocesses pip starts, so it holds for them too.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_")) and k.lower() not in _PROXY_VARS}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
    )
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        env[var] = env[var.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = f"{HOST},localhost"
    env.update(extra or {})
    return env


def pip_command(command: str, index_url: str, *args: str) -> list[str]:
    """``python -m pip <command>`` against ``index_url`` only, with no cache."""
    return [
        sys.executable,
        "-m",
        "pip",
        command,
        "--index-url",
        index_url,
        "--no-cache-dir",
        "--disable-pip-version-check",
        *args,
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers the tests start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_host_spec(
    directory: Path,
    upstream: Upstream,
    packages: Sequence[str],
    *,
    build_wheels: bool = True,
    extra_targets: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``directory/mirror.toml``: this host's target (then ``extra_targets``, (platform, python) pairs),
    ``packages`` from ``upstream``; the spec's path."""
    from mirror.targets import host_target

    host = host_target()
    targets = "".join(
        f'[[target]]\nplatform = "{platform}"\npython = "{python}"\n'
        for platform, python in [(host.platform, host.python), *extra_targets]
    )
    policy = "" if build_wheels else "[policy]\nbuild-wheels = false\n"
    spec = directory / "mirror.toml"
    spec.write_text(
        f'[mirror]\nupstream = "{upstream.url}"\n{targets}'
        f"[sources]\npackages = {json.dumps(list(packages))}\n{policy}"
    )
    return spec


def synced_workspace(
    directory: Path,
    upstream: Upstream,
    packages: Sequence[str],
    *,
    build_wheels: bool = True,
    extra_targets: Sequence[tuple[str, str]] = (),
) -> Path:
    """``directory`` (made if missing) a workspace for this host's target and ``mirror sync``ed from ``upstream``."""
    from click.testing import CliRunner

    from mirror.cli import main

    directory.mkdir(parents=True, exist_ok=True)
    write_host_spec(directory, upstream, packages, build_wheels=build_wheels, extra_targets=extra_targets)
    result = CliRunner().invoke(main, ["sync", "--spec", str(directory / "mirror.toml")])
    assert result.exit_code == 0, result.output
    return directory


class AccessLog:
    """The access records of a ``mirror serve`` the tests started, safe to read from the test thread."""

    def __init__(self) -> None:
        self.records: list[AccessRecord] = []
        self._lock = threading.Lock()

    def __call__(self, record: AccessRecord) -> None:
        with self._lock:
            self.records.append(record)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def take(self) -> list[AccessRecord]:
        """The records so far, and a fresh start."""
        with self._lock:
            records, self.records = self.records, []
        return records

    def paths(self, method: str = "GET") -> list[str]:
        with self._lock:
            return [r.target for r in self.records if r.method == method]
