"""A release cooldown: ``[policy] exclude-newer`` — no file uploaded after a moment is chosen.

The value is an RFC 3339 timestamp (``2026-11-01T00:00:00Z``), a date (``2026-11-01``: its midnight, UTC), or a
duration back from now (``7d``, ``24h``, ``2w``). A duration is resolved when the lock runs and rounded down to the
start of that UTC day (``h``: of that hour), so re-locking within the day writes the same lock.

The cutoff is enforced three times: the resolver is given it (uv's ``--exclude-newer``, pip's
``--uploaded-prior-to`` for pip-compile), the lock chooses no file with a later PEP 700 ``upload-time`` — nor one
with **no** upload time, which nothing proves older (uv does the same: "has no publish time") — and ``mirror
fetch`` checks every locked file again against the cutoff the lock recorded. A pin in a team's lock whose files
all came later is reported by name, never silently moved.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(r"^(\d+)\s*([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
EXPECTED = "an RFC 3339 timestamp (2026-11-01T00:00:00Z), a date (2026-11-01) or a duration back from now (7d, 24h, 2w)"


def _absolute(value: str) -> datetime | None:
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without a zone means something else on every machine
    return moment.astimezone(timezone.utc)


def valid(value: str) -> bool:
    """Whether ``value`` is an ``exclude-newer`` value."""
    return _absolute(value) is not None or _DURATION.fullmatch(value.strip()) is not None


def cutoff(value: str, now: datetime) -> datetime:
    """The moment ``value`` names, in UTC; a duration counts back from ``now`` (rounded down, see above)."""
    moment = _absolute(value)
    if moment is not None:
        return moment
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not {EXPECTED}")
    back = now.astimezone(timezone.utc) - int(match[1]) * _UNITS[match[2]]
    if match[2] == "h":
        return back.replace(minute=0, second=0, microsecond=0)
    return back.replace(hour=0, minute=0, second=0, microsecond=0)


def stamp(moment: datetime) -> str:
    """``2026-11-01T00:00:00Z``: how a cutoff is written and passed on."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def uploaded(upload_time: str | None) -> datetime | None:
    """A PEP 700 ``upload-time`` as a moment (None when absent or unreadable)."""
    return _absolute(upload_time) if upload_time else None


def too_new(upload_time: str | None, limit: datetime) -> bool:
    """Whether a file uploaded at ``upload_time`` is excluded by the cutoff ``limit`` (no time: excluded)."""
    moment = uploaded(upload_time)
    return moment is None or moment > limit
