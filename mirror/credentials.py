"""Credentials for private indexes: found at run time, sent only to their own index, never written or shown.

For an index called ``internal`` (see :attr:`mirror.indexes.Index.env_prefix`), in this order:

1. the environment: ``MIRROR_INDEX_INTERNAL_USERNAME`` and ``MIRROR_INDEX_INTERNAL_PASSWORD``, or
   ``MIRROR_INDEX_INTERNAL_TOKEN`` (sent as the password, with the username given or ``__token__``, the
   convention of PyPI, devpi and GitLab deploy tokens);
2. ``~/.netrc`` (or the file ``NETRC`` names), by the index's host, as pip, uv and requests read it;
3. the ``keyring`` package, when it is importable (``keyring.get_credential(url, username)``), as pip's and uv's
   keyring providers ask it.

The spec never holds them (an index URL with ``user:password@`` is refused), and neither does anything the tool
writes: lockfiles, the manifest and the index carry URLs without userinfo. :class:`IndexAuth` is the
``requests`` auth that adds HTTP Basic credentials to the requests for their index's host only; requests drops
them itself on a redirect to another host. Subprocesses (uv, pip, build backends running an sdist's code) never
see them: :func:`mirror._process.clean_environment` drops every ``MIRROR_INDEX_*`` variable, and the resolver reads
private indexes through the router on 127.0.0.1 (:mod:`mirror.router`).
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from mirror.errors import MirrorError
from mirror.indexes import PYPI_SIMPLE, Index, same_url

log = logging.getLogger(__name__)

TOKEN_USERNAME = "__token__"
KeyringLookup = Callable[[str, str | None], tuple[str, str] | None]


class CredentialsError(MirrorError):
    """Credentials are given half (a username without a password) or where they cannot be read."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    """A username and password for one index; the password is never part of a repr or a message."""

    username: str
    password: str = field(repr=False)
    source: str  # where they were found, for messages: "MIRROR_INDEX_INTERNAL_*", "~/.netrc", "keyring"


def _host_key(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def from_environment(index: Index, environ: Mapping[str, str]) -> Credentials | None:
    """``MIRROR_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` / ``_TOKEN``; half a pair is a :class:`CredentialsError`."""
    return from_prefix(index.env_prefix, index.describe(), environ)


def from_prefix(prefix: str, what: str, environ: Mapping[str, str]) -> Credentials | None:
    """``<prefix>_USERNAME`` / ``_PASSWORD`` / ``_TOKEN`` (a token goes as the password, with the username given or
    ``__token__``); half a pair is a :class:`CredentialsError` naming ``what`` they are for."""
    username = environ.get(f"{prefix}_USERNAME")
    password = environ.get(f"{prefix}_PASSWORD")
    token = environ.get(f"{prefix}_TOKEN")
    if token and password:
        raise CredentialsError(f"{what}: set {prefix}_PASSWORD or {prefix}_TOKEN, not both")
    source = f"{prefix}_*"
    if token:
        return Credentials(username=username or TOKEN_USERNAME, password=token, source=source)
    if password and not username:
        raise CredentialsError(f"{what}: {prefix}_PASSWORD is set but {prefix}_USERNAME is not")
    if password and username:
        return Credentials(username=username, password=password, source=source)
    if username:
        raise CredentialsError(f"{what}: {prefix}_USERNAME is set but neither {prefix}_PASSWORD nor {prefix}_TOKEN is")
    return None


def from_netrc(index: Index, path: Path | None) -> Credentials | None:
    """The ``machine`` entry of the index's host in ``path`` (no file: none)."""
    if path is None or not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError) as exc:
        reason = exc.msg if isinstance(exc, netrc.NetrcParseError) else exc.strerror or type(exc).__name__
        raise CredentialsError(f"{path}: cannot read it for the credentials of {index.describe()}: {reason}") from None
    found = entries.authenticators(urlsplit(index.url).hostname or "")
    if found is None or not found[2]:
        return None
    return Credentials(username=found[0], password=found[2], source=str(path))


def keyring_lookup(url: str, username: str | None) -> tuple[str, str] | None:
    """``keyring.get_credential`` when the ``keyring`` package is installed; None otherwise or on its failure."""
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        found = keyring.get_credential(url, username)
    except Exception as exc:  # a keyring backend raises anything: no usable keyring is no credentials
        log.debug("keyring: no credentials for %s: %s", url, exc)
        return None
    if found is None or not found.password:
        return None
    return str(found.username or username or ""), str(found.password)


def netrc_path(environ: Mapping[str, str]) -> Path | None:
    """The netrc file pip, uv and requests read: ``NETRC``, else ``~/.netrc``."""
    if environ.get("NETRC"):
        return Path(environ["NETRC"])
    home = environ.get("HOME")
    return Path(home) / ".netrc" if home else None


def find_credentials(
    index: Index,
    *,
    environ: Mapping[str, str] | None = None,
    keyring: KeyringLookup | None = keyring_lookup,
) -> Credentials | None:
    """The credentials for ``index``: the environment, then netrc, then keyring (None: send none)."""
    environ = os.environ if environ is None else environ
    if urlsplit(index.url).scheme not in ("http", "https"):
        return None
    found = from_environment(index, environ) or from_netrc(index, netrc_path(environ))
    if found is None and keyring is not None and not same_url(index.url, PYPI_SIMPLE):  # PyPI reads need none
        pair = keyring(index.url, None)
        if pair is not None:
            found = Credentials(username=pair[0], password=pair[1], source="keyring")
    return found


class IndexAuth(AuthBase):
    """HTTP Basic credentials for the requests to each index's host (the index URL's longest match first, so
    two indexes on one host keep their own); other requests go out untouched."""

    def __init__(self, credentials: Iterable[tuple[Index, Credentials]]) -> None:
        self._by_index = [(index.url.rstrip("/") + "/", creds) for index, creds in credentials]
        self._by_index.sort(key=lambda item: len(item[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._by_index)

    def for_url(self, url: str) -> Credentials | None:
        """The credentials sent with a request for ``url``: its index's by URL prefix, else its host's."""
        for prefix, creds in self._by_index:
            if url.startswith(prefix) or url.rstrip("/") + "/" == prefix:
                return creds
        host = _host_key(url)
        return next((creds for prefix, creds in self._by_index if _host_key(prefix) == host), None)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        creds = self.for_url(request.url or "")
        if creds is None or "Authorization" in request.headers:
            return request
        authorized: requests.PreparedRequest = HTTPBasicAuth(creds.username, creds.password)(request)
        return authorized


def index_auth(
    indexes: Iterable[Index],
    *,
    environ: Mapping[str, str] | None = None,
    keyring: KeyringLookup | None = keyring_lookup,
) -> IndexAuth:
    """The auth for every index that has credentials."""
    found = []
    for index in indexes:
        creds = find_credentials(index, environ=environ, keyring=keyring)
        if creds is not None:
            found.append((index, creds))
    return IndexAuth(found)


UPLOAD_PREFIX = "MIRROR_UPLOAD"


def upload_credentials(
    url: str,
    *,
    environ: Mapping[str, str] | None = None,
    keyring: KeyringLookup | None = keyring_lookup,
) -> Credentials | None:
    """The credentials for uploading to the repository at ``url``: ``MIRROR_UPLOAD_USERNAME`` / ``_PASSWORD`` (or
    ``_TOKEN``), then twine's ``TWINE_USERNAME`` / ``TWINE_PASSWORD``, then netrc by host, then keyring (as twine
    asks it: the repository URL and the username, if one was given)."""
    environ = os.environ if environ is None else environ
    repository = Index(name="upload", url=url.rstrip("/"))
    what = f"repository {repository.url}"
    found = from_prefix(UPLOAD_PREFIX, what, environ)
    if found is None and (environ.get("TWINE_PASSWORD") or not environ.get("TWINE_USERNAME")):
        found = from_prefix("TWINE", what, environ)  # TWINE_USERNAME alone: twine asks keyring for its password
    found = found or from_netrc(repository, netrc_path(environ))
    if found is None and keyring is not None:
        pair = keyring(url, environ.get(f"{UPLOAD_PREFIX}_USERNAME") or environ.get("TWINE_USERNAME"))
        if pair is not None:
            found = Credentials(username=pair[0], password=pair[1], source="keyring")
    return found
