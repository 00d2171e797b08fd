"""TOML reading, once: the standard library's ``tomllib`` (Python >= 3.11) or its backport ``tomli`` (3.10).

Writing TOML is ``tomli_w``'s job (the standard library cannot write it).
"""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

TOMLDecodeError = tomllib.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse TOML ``text``; raises :class:`TOMLDecodeError`."""
    data: dict[str, Any] = tomllib.loads(text)
    return data
