"""The one place HTTP sessions are made: pooled, retried with backoff, with a bounded timeout.

Every stage that talks to an index takes a ``requests.Session`` (injected, so tests can pass their own);
:func:`make_session` builds the default one.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from mirror import __version__

#: (connect, read) seconds; a stalled upstream fails instead of hanging a run.
DEFAULT_TIMEOUT = (10.0, 60.0)
USER_AGENT = f"offline-mirror/{__version__}"
#: Seconds of ``Retry-After`` honoured at most: an upstream asking for an hour does not stall a run for an hour.
MAX_RETRY_AFTER = 30.0


class _Retry(Retry):
    """urllib3's Retry (which sleeps for any ``Retry-After`` asked), with the wait capped at MAX_RETRY_AFTER."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(max(seconds, 0.0), MAX_RETRY_AFTER)


def make_session(*, retries: int = 4, backoff: float = 0.5, pool_size: int = 16) -> requests.Session:
    """A pooled session retrying connection errors, 429 and 5xx (honouring Retry-After) with backoff."""
    retry = _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def request_error_reason(exc: requests.RequestException) -> str:
    """The innermost, human part of a requests/urllib3 error."""
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.rstrip(")'\"").strip() or type(exc).__name__
