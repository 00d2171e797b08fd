"""A client for the upstream Simple Repository API: PEP 691 JSON, with PEP 503 HTML as the fallback.

``parse_json_page`` / ``parse_html_page`` are pure (bytes in, :class:`ProjectPage` out); :class:`SimpleClient`
is the HTTP edge over an injected ``requests.Session``. Upstream data is untrusted: a file whose name could
escape a directory, belongs to another project or is not a distribution is dropped with a warning.
(pypi-simple does the same parsing but pulls in pydantic and beautifulsoup4; the subset needed is small.)
"""

from __future__ import annotations

import html.parser
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

import requests
from packaging.utils import (
    canonicalize_name,
)
from packaging.version import Version

from mirror._filenames import FileKind, classify
from mirror._http import DEFAULT_TIMEOUT, request_error_reason
from mirror._records import fields_dict
from mirror.credentials import IndexAuth
from mirror.errors import MirrorError
from mirror.indexes import Index

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"


class UpstreamError(MirrorError):
    """The upstream index could not be reached or answered nonsense."""


class UnknownProject(UpstreamError):
    """The upstream index has no page for a project."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DistFile:
    """One file listed on a project page."""

    filename: str
    url: str
    project: str  # normalized name, read from the filename
    version: Version
    kind: FileKind
    sha256: str | None = None
    size: int | None = None
    requires_python: str | None = None
    upload_time: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    core_metadata_sha256: str | None = None
    has_core_metadata: bool = False
    index: str | None = None  # the name of the index that lists it

    def to_dict(self) -> dict[str, object]:
        return {
            **fields_dict(self, "filename", "url", "sha256", "size", "requires_python", "upload_time"),
            "yanked": self.yanked_reason if self.yanked and self.yanked_reason else self.yanked,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectPage:
    """A project's files as the upstream lists them."""

    name: str
    files: tuple[DistFile, ...]

    def for_version(self, version: Version) -> list[DistFile]:
        return [f for f in self.files if f.version == version]


def _make_file(
    project: str,
    filename: str,
    href: str,
    page_url: str,
    *,
    hashes: Mapping[str, str],
    requires_python: str | None,
    yanked: bool | str | None,
    core_metadata: bool | Mapping[str, str] | str | None,
    size: int | None = None,
    upload_time: str | None = None,
) -> DistFile | None:
    parsed = classify(filename, project)
    if parsed is None:
        log.debug("%s: ignoring %r: not a wheel or sdist filename", project, filename)
        return None
    name, version, kind = parsed
    if name != project:
        log.warning("%s: ignoring %r: it names another project (%s)", project, filename, name)
        return None
    url, fragment = urldefrag(urljoin(page_url, href))
    parts = urlsplit(url)
    if "@" in parts.netloc:  # credentials in a listed URL are never kept (the index's own are sent by host)
        url = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    scheme = parts.scheme
    # file: only from a local index: a remote page must not point the fetch at this machine's files (or /dev/zero)
    if scheme not in ("http", "https", "file") or (scheme == "file" and urlsplit(page_url).scheme != "file"):
        log.warning("%s: ignoring %r: unsupported URL %r", project, filename, url)
        return None
    sha256 = hashes.get("sha256")
    if sha256 is None and fragment.startswith("sha256="):
        sha256 = fragment.removeprefix("sha256=")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256)):
        log.warning("%s: ignoring %r: malformed sha256 %r", project, filename, sha256)
        return None
    metadata_hash = None
    if isinstance(core_metadata, Mapping):
        metadata_hash = core_metadata.get("sha256")
    elif isinstance(core_metadata, str) and core_metadata.startswith("sha256="):
        metadata_hash = core_metadata.removeprefix("sha256=")
    return DistFile(
        filename=filename,
        url=url,
        project=name,
        version=version,
        kind=kind,
        sha256=sha256.lower() if sha256 else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        requires_python=requires_python or None,
        upload_time=upload_time,
        yanked=bool(yanked),
        yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
        core_metadata_sha256=metadata_hash,
        has_core_metadata=bool(core_metadata),
    )


def parse_json_page(body: bytes, *, project: str, url: str) -> ProjectPage:
    """Parse a PEP 691 project page."""
    try:
        data = json.loads(body)
        raw_files = data["files"]
        if not isinstance(raw_files, list):
            raise TypeError("files is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(f"{url}: not a PEP 691 project page: {exc}") from None
    files = []
    for item in raw_files:
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str) or "url" not in item:
            continue
        hashes = item.get("hashes") if isinstance(item.get("hashes"), dict) else {}
        made = _make_file(
            project,
            item["filename"],
            str(item["url"]),
            url,
            hashes=hashes or {},
            requires_python=item.get("requires-python"),
            yanked=item.get("yanked"),
            core_metadata=item.get("core-metadata", item.get("dist-info-metadata")),
            size=item.get("size"),
            upload_time=item.get("upload-time"),
        )
        if made is not None:
            files.append(made)
    return ProjectPage(name=project, files=tuple(files))


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_html_page(body: bytes, *, project: str, url: str) -> ProjectPage:
    """Parse a PEP 503 project page (attributes of PEP 592, 658 and 714 included)."""
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    files = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        filename = text or unquote(urlsplit(href).path.rsplit("/", 1)[-1])
        made = _make_file(
            project,
            filename,
            href,
            url,
            hashes={},
            requires_python=attrs.get("data-requires-python"),
            yanked=(attrs["data-yanked"] or True) if "data-yanked" in attrs else None,
            core_metadata=attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")),
        )
        if made is not None:
            files.append(made)
    return ProjectPage(name=project, files=tuple(files))


class SimpleClient:
    """Reads project pages from one index (http, https or a ``file://`` tree), caching them for the run. Every file
    it lists carries the index's name; every error names the index (never its credentials)."""

    def __init__(self, index: Index, session: requests.Session, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        self.index = index
        self.index_url = index.url.rstrip("/")
        self.label = index.describe()
        self.session = session
        self.timeout = timeout
        self._cache: dict[str, ProjectPage] = {}
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}

    def check(self) -> None:
        """Fail early, with one clear line, when the index cannot be reached at all."""
        if self.index_url.startswith("file:"):
            directory = Path(url2pathname(urlsplit(self.index_url).path))
            if not directory.is_dir():
                raise UpstreamError(f"{self.label}: no such directory")
            return
        try:
            response = self.session.head(self.index_url + "/", timeout=self.timeout, allow_redirects=True)
        except requests.RequestException as exc:
            raise UpstreamError(f"{self.label}: cannot connect: {request_error_reason(exc)}") from None
        if response.status_code >= 500 or response.status_code in (401, 403, 407):
            raise UpstreamError(f"{self.label}: answered HTTP {response.status_code}{self._refusal(response)}")

    def _refusal(self, response: requests.Response) -> str:
        """What to do about a 401 or 403: which credentials were sent, or where to give them."""
        if response.status_code not in (401, 403):
            return ""
        auth = self.session.auth
        sent = auth.for_url(self.index_url + "/") if isinstance(auth, IndexAuth) else None
        if sent is not None:
            return f" (the credentials from {sent.source} were refused)"
        prefix = self.index.env_prefix
        return (
            f" (no credentials sent: set {prefix}_USERNAME and {prefix}_PASSWORD, or {prefix}_TOKEN;"
            " or add the host to ~/.netrc)"
        )

    def page_url(self, project: str) -> str:
        return f"{self.index_url}/{canonicalize_name(project)}/"

    def project(self, name: str) -> ProjectPage:
        """The page of project ``name``; :class:`UnknownProject` if the index has none."""
        project = str(canonicalize_name(name))
        with self._lock:
            cached = self._cache.get(project)
            if cached is not None:
                return cached
            fetching = self._fetching.setdefault(project, threading.Lock())
        with fetching:  # several targets asking at once: one fetch and one parse, the others wait for it
            with self._lock:
                cached = self._cache.get(project)
            if cached is not None:
                return cached
            url = self.page_url(project)
            page = self._read_local(project, url) if url.startswith("file:") else self._fetch(project, url)
            with self._lock:
                self._cache[project] = page
            return page

    def _fetch(self, project: str, url: str) -> ProjectPage:
        try:
            response = self.session.get(url, headers={"Accept": ACCEPT}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise UpstreamError(f"{self.label}: cannot fetch {url}: {request_error_reason(exc)}") from None
        if response.status_code == 404:
            raise UnknownProject(f"{project}: no such project on {self.label} (404)")
        if response.status_code != 200:
            refusal = self._refusal(response)
            raise UpstreamError(f"{self.label}: {url} answered HTTP {response.status_code}{refusal}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        parse = parse_json_page if content_type == JSON_TYPE else parse_html_page
        return self._stamped(parse(response.content, project=project, url=response.url))

    def _stamped(self, page: ProjectPage) -> ProjectPage:
        return replace(page, files=tuple(replace(f, index=self.index.name) for f in page.files))

    def _read_local(self, project: str, url: str) -> ProjectPage:
        directory = Path(url2pathname(urlsplit(url).path))
        for name, parse in (("index.json", parse_json_page), ("index.html", parse_html_page)):
            path = directory / name
            if path.is_file():
                return self._stamped(parse(path.read_bytes(), project=project, url=path.as_uri()))
        raise UnknownProject(f"{project}: no such project on {self.label} (no {directory}/index.html)")
