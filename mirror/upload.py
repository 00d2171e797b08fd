"""mirror publish upload: the wheelhouse into the repository the intranet already runs, as twine uploads.

Sonatype Nexus, JFrog Artifactory, GitLab's package registry, pypiserver and devpi all take the upload API twine
speaks: a ``multipart/form-data`` POST to the repository URL with ``:action = file_upload``,
``protocol_version = 1``, the file as ``content`` and its core metadata as form fields. The metadata fields come
from twine's own modules (``twine.package.PackageFile``, which reads and validates the wheel's or sdist's
metadata and computes its digests, and ``twine.repository.Repository``'s conversion of that metadata into form
fields); the multipart body is ``requests_toolbelt``'s streaming encoder, as twine sends it. A file whose metadata
twine refuses (old, non-conforming metadata) goes with the minimal fields every server needs (name, version,
filetype, pyversion, sha256), and the summary says how many did.

Idempotent and safe:

1. the repository's simple page of every project is read first (``<url>/simple/``, or devpi's ``+simple/``, or
   ``--simple-url``): a file served there with the locked sha256 (the page's hash, or the file's own where the
   page gives none) is not uploaded; the same name with other bytes stops the run before anything is uploaded,
   naming the file and both hashes;
2. an upload answered "exists" (409, or 400 saying so) is read back: the same sha256 is success, another is an
   error naming both;
3. credentials (:func:`mirror.credentials.upload_credentials`) go only to the repository's host, and appear in no
   message and no file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from packaging.utils import canonicalize_name

from mirror._http import DEFAULT_TIMEOUT, request_error_reason
from mirror._verified import verified_files
from mirror.credentials import Credentials, IndexAuth
from mirror.devpi import upload_version
from mirror.errors import MirrorError
from mirror.indexes import Index
from mirror.manifest import FileEntry, Manifest
from mirror.progress import NullProgress, Progress
from mirror.simple import ProjectPage, SimpleClient, UnknownProject, UpstreamError

log = logging.getLogger(__name__)

UPLOAD_TIMEOUT = (10.0, 600.0)  # a large wheel to a slow repository: minutes to read the answer
_EXISTS = re.compile(r"exist|already|conflict|overwrite|re-?upload", re.IGNORECASE)
Status = Literal["uploaded", "present", "failed"]


class UploadError(MirrorError):
    """The repository cannot be used, or a file there has other bytes than the locked one."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FileOutcome:
    filename: str
    status: Status
    detail: str = ""  # why it failed
    minimal: bool = False  # sent with the minimal metadata fields (twine refused its metadata)


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadResult:
    repository: str  # the upload URL
    simple_url: str  # where the repository serves what was uploaded
    outcomes: tuple[FileOutcome, ...]
    skipped: tuple[str, ...]  # locked files missing or unverified here: not uploaded

    def named(self, status: Status) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.named("failed")

    def render(self) -> list[str]:
        lines = [f"not uploaded (missing or unverified; run mirror fetch): {name}" for name in self.skipped]
        lines += [f"failed: {o.filename}: {o.detail}" for o in self.named("failed")]
        minimal = sum(1 for o in self.outcomes if o.minimal and o.status == "uploaded")
        note = f" ({minimal} with minimal metadata: twine refused theirs)" if minimal else ""
        lines.append(
            f"uploaded {len(self.named('uploaded'))}, already there {len(self.named('present'))},"
            f" failed {len(self.named('failed'))}, skipped {len(self.skipped)}{note}"
        )
        lines.append(f"repository: {self.repository}; index: {self.simple_url}")
        return lines


def check_url(url: str, what: str) -> str:
    """An http(s) URL without credentials (they come from the environment, netrc or keyring), with a final slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UploadError(f"{what} {url!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise UploadError(
            f"{what}: give the credentials in MIRROR_UPLOAD_USERNAME and MIRROR_UPLOAD_PASSWORD (or TWINE_*, netrc,"
            " keyring), not in the URL"
        )
    return url.rstrip("/") + "/"


def form_fields(path: Path, file: FileEntry) -> tuple[list[tuple[str, Any]], bool]:
    """The metadata form fields of ``path`` as twine sends them, and whether they are the minimal set instead."""
    from twine.exceptions import InvalidDistribution
    from twine.package import PackageFile
    from twine.repository import Repository

    try:
        package = PackageFile.from_filename(str(path), None)
        return Repository._convert_metadata_to_list_of_tuples(package.metadata_dictionary()), False
    except (InvalidDistribution, ValueError, KeyError) as exc:
        log.info("%s: twine refuses its metadata (%s); sending the minimal fields", file.filename, exc)
    wheel = file.kind == "wheel"
    fields = [
        ("metadata_version", "1.0"),
        ("name", file.project),
        ("version", upload_version(file.filename)),  # as the filename writes it
        ("filetype", "bdist_wheel" if wheel else "sdist"),
        ("pyversion", file.filename.split("-")[-3] if wheel else "source"),  # the wheel's python tag
        ("sha256_digest", file.sha256),
    ]
    if file.requires_python:
        fields.append(("requires_python", file.requires_python))
    return fields, True


class Repository:
    """One upload URL and the simple index where it serves what it took."""

    def __init__(
        self,
        url: str,
        session: requests.Session,
        *,
        simple_url: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.url = check_url(url, "--repository-url")
        self.session = session
        self._explicit_simple = check_url(simple_url, "--simple-url") if simple_url else None
        # the upload's credentials, for its hosts only; never a private index's (they may share a host)
        hosts = {self.url, *([self._explicit_simple] if self._explicit_simple else [])}
        pairs = [(Index(name="upload", url=host.rstrip("/")), credentials) for host in hosts] if credentials else []
        session.auth = IndexAuth(pairs)
        self.credentials = credentials
        self.simple_url = self._explicit_simple or ""
        self._pages: SimpleClient | None = None

    def open(self) -> None:
        """Find the simple index (``--simple-url``, else ``<url>simple/``, else devpi's ``<url>+simple/``) and check
        that the repository answers; one line naming the URL otherwise."""
        candidates = [self._explicit_simple] if self._explicit_simple else [self.url + "simple/", self.url + "+simple/"]
        answers = []
        for candidate in candidates:
            try:
                response = self.session.get(candidate, timeout=DEFAULT_TIMEOUT, headers={"Accept": "text/html"})
            except requests.RequestException as exc:
                raise UploadError(f"repository {self.url}: cannot connect: {request_error_reason(exc)}") from None
            if response.status_code == 200:
                self.simple_url = candidate
                self._pages = SimpleClient(Index(name="repository", url=candidate.rstrip("/")), self.session)
                return
            if response.status_code in (401, 403):
                raise UploadError(f"repository {candidate}: HTTP {response.status_code} {self._refusal()}")
            answers.append(f"{candidate} answered HTTP {response.status_code}")
        raise UploadError(f"repository {self.url}: no simple index found ({'; '.join(answers)}); give --simple-url")

    def _refusal(self) -> str:
        if self.credentials is None:
            return "(no credentials sent: set MIRROR_UPLOAD_USERNAME and MIRROR_UPLOAD_PASSWORD, or TWINE_*)"
        return f"(the credentials from {self.credentials.source} were refused)"

    def served(self, project: str, pages: SimpleClient | None = None) -> dict[str, str]:
        """filename -> sha256 of what the repository serves for ``project`` (read with ``pages``, default the
        run's cached client): from its page, or (a page that gives no hash) by reading the file."""
        pages = pages or self._pages
        assert pages is not None, "open() first"
        try:
            page: ProjectPage = pages.project(project)
        except UnknownProject:
            return {}
        except UpstreamError as exc:
            raise UploadError(str(exc).replace("index 'repository'", "repository")) from None
        return {f.filename: f.sha256 or self._sha256_of(f.url) for f in page.files}

    def _sha256_of(self, url: str) -> str:
        digest = hashlib.sha256()
        try:
            with self.session.get(url, stream=True, timeout=DEFAULT_TIMEOUT) as response:
                if response.status_code != 200:
                    raise UploadError(f"repository {self.url}: {url} answered HTTP {response.status_code}")
                for chunk in response.iter_content(1 << 20):
                    digest.update(chunk)
        except requests.RequestException as exc:
            raise UploadError(f"repository {self.url}: cannot read {url}: {request_error_reason(exc)}") from None
        return digest.hexdigest()

    def fresh_sha256(self, file: FileEntry) -> str | None:
        """What the repository serves under ``file``'s name now, read again (an "exists" answer); None: not there."""
        assert self._pages is not None, "open() first"
        uncached = SimpleClient(self._pages.index, self.session)  # the run's client holds the page read before
        return self.served(file.project, uncached).get(file.filename)

    def upload(self, file: FileEntry, path: Path) -> FileOutcome:
        from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

        fields, minimal = form_fields(path, file)
        data = [*fields, (":action", "file_upload"), ("protocol_version", "1")]
        try:
            with path.open("rb") as handle:
                encoder = MultipartEncoder([*data, ("content", (file.filename, handle, "application/octet-stream"))])
                response = self.session.post(
                    self.url,
                    data=encoder,
                    headers={"Content-Type": encoder.content_type},
                    allow_redirects=False,
                    timeout=UPLOAD_TIMEOUT,
                )
        except requests.RequestException as exc:
            return FileOutcome(filename=file.filename, status="failed", detail=request_error_reason(exc))
        except OSError as exc:
            return FileOutcome(filename=file.filename, status="failed", detail=f"{path}: {exc.strerror or exc}")
        if response.status_code in (200, 201):
            return FileOutcome(filename=file.filename, status="uploaded", minimal=minimal)
        reason = _reason(response)
        if response.status_code == 409 or (response.status_code == 400 and _EXISTS.search(reason)):
            return self._exists(file, reason)
        if response.status_code in (401, 403):
            reason = f"{reason} {self._refusal()}"
        if 300 <= response.status_code < 400:
            reason = f"redirected to {response.headers.get('Location', '?')}: is --repository-url the upload URL?"
        return FileOutcome(filename=file.filename, status="failed", detail=f"HTTP {response.status_code} {reason}")

    def _exists(self, file: FileEntry, reason: str) -> FileOutcome:
        theirs = self.fresh_sha256(file)
        if theirs == file.sha256:
            return FileOutcome(filename=file.filename, status="present")
        detail = (
            f"the repository says it exists ({reason}) but does not list it"
            if theirs is None
            else f"already there with sha256 {theirs}; the lock says {file.sha256}"
        )
        return FileOutcome(filename=file.filename, status="failed", detail=detail)


def _reason(response: requests.Response) -> str:
    """A server's one-line reason: pypiserver, devpi, Nexus and Artifactory put it in the status line or body."""
    text = response.reason or ""
    body = response.text[:500] if response.text else ""
    title = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    extra = title.group(1) if title else re.sub(r"<[^>]+>", " ", body)
    return " ".join(f"{text} {extra}".split())[:200]


def files_to_upload(manifest: Manifest, files_dir: Path, targets: Sequence[str]) -> tuple[list[FileEntry], list[str]]:
    """The verified files of ``targets`` (every target when empty), and the names of those not here."""
    ready, skipped = verified_files(manifest, files_dir, purpose="uploaded")
    if not targets:
        return ready, skipped
    wanted = {name for entry in manifest.select(targets) for name in entry.filenames()}
    return [f for f in ready if f.filename in wanted], [name for name in skipped if name in wanted]


def plan(repository: Repository, files: Iterable[FileEntry], jobs: int) -> tuple[list[FileEntry], list[str]]:
    """What to upload, and what is there already with the locked sha256; another sha256 under a locked file's name
    stops everything (:class:`UploadError` naming the file and both hashes)."""
    by_project: dict[str, list[FileEntry]] = {}
    for file in files:
        by_project.setdefault(str(canonicalize_name(file.project)), []).append(file)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pages = dict(zip(by_project, pool.map(repository.served, by_project), strict=True))
    upload: list[FileEntry] = []
    present: list[str] = []
    for project, project_files in sorted(by_project.items()):
        for file in sorted(project_files, key=lambda f: f.filename):
            theirs = pages[project].get(file.filename)
            if theirs is None:
                upload.append(file)
            elif theirs == file.sha256:
                present.append(file.filename)
            else:
                raise UploadError(
                    f"{repository.simple_url}: {file.filename} is already there with sha256 {theirs}; the lock says"
                    f" {file.sha256}. A published file never changes: nothing was uploaded"
                )
    return upload, present


def publish(
    manifest: Manifest,
    files_dir: Path,
    repository: Repository,
    *,
    targets: Sequence[str] = (),
    jobs: int = 4,
    progress: Progress | None = None,
) -> UploadResult:
    """Upload every verified file (of ``targets``) the repository does not serve yet, ``jobs`` at a time."""
    progress = progress or NullProgress()
    repository.open()
    ready, skipped = files_to_upload(manifest, files_dir, targets)
    upload, present = plan(repository, ready, jobs)
    outcomes = [FileOutcome(filename=name, status="present") for name in present]
    progress.start(len(upload), sum((files_dir / f.relpath).stat().st_size for f in upload))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(repository.upload, f, files_dir / f.relpath): f for f in upload}
        for future in as_completed(futures):
            file = futures[future]
            outcome = future.result()
            outcomes.append(outcome)
            progress.advance((files_dir / file.relpath).stat().st_size)
            progress.done(file.filename)
    return UploadResult(
        repository=repository.url,
        simple_url=repository.simple_url,
        outcomes=tuple(sorted(outcomes, key=lambda o: o.filename)),
        skipped=tuple(sorted(skipped)),
    )
