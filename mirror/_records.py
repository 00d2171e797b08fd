"""Records: frozen dataclasses out to JSON-shaped dicts, and parsed TOML or JSON documents back in, validated.

:func:`fields_dict` writes a record. :class:`Fields` reads one: the spec, the manifest, the sources and a bundle's
manifest each make one with their own error type, and every accessor returns the value typed or raises that
error naming the key path and what was expected, e.g. ``mirror.upstream: expected a non-empty string, got 3``.
How the wrong value is shown after "expected …" (its repr, its type, both, or nothing) is each reader's wording,
kept as its users know it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

Shown = Literal["repr", "type", "type repr", ""]
Fail = Callable[[str, str], Exception]  # (key path, message) -> the reader's error


def fields_dict(record: Any, *names: str) -> dict[str, Any]:
    """``{name: value}`` of a dataclass record's fields (all of them, in order, when none are named); tuples
    become lists, as JSON has them. Also a record's fields to make another of: ``Other(**fields_dict(...))``."""
    keys = names or tuple(field.name for field in dataclasses.fields(record))
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(record, key)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def got(value: object, shown: Shown) -> str:
    """How a wrong value is shown after "expected …": ``, got 3``, ``, got int``, ``, got int 3`` or nothing."""
    if shown == "repr":
        return f", got {value!r}"
    if shown == "type":
        return f", got {type(value).__name__}"
    if shown == "type repr":
        return f", got {type(value).__name__} {value!r}"
    return ""


def join(where: str, key: str) -> str:
    """The key path ``where.key`` (either alone when the other is empty)."""
    return f"{where}.{key}" if where and key else where or key


class Fields:
    """Validating accessors over a parsed document; errors come from ``fail(key path, message)``.

    ``where`` + ``key`` name the value; they are joined only for an error (reading a manifest of 10,000 files
    calls these hundreds of thousands of times).
    """

    def __init__(self, fail: Fail, *, shown: Shown = "repr") -> None:
        self._fail = fail
        self._shown = shown

    def error(self, where: str, message: str, key: str = "") -> Exception:
        return self._fail(join(where, key), message)

    def expected(self, what: str, value: object, where: str, key: str = "", *, shown: Shown | None = None) -> Exception:
        """The error for ``value`` at ``where.key`` not being ``what`` ("a table", "true or false", …)."""
        return self.error(where, f"expected {what}{got(value, self._shown if shown is None else shown)}", key)

    def keys(self, data: Mapping[str, object], allowed: Iterable[str], where: str, *, what: str = "key") -> None:
        """Every key of ``data`` is one of ``allowed``."""
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                raise self.error(where, f"unknown {what}; expected one of: {', '.join(allowed)}", key)

    def table(
        self, value: object, where: str, key: str = "", *, what: str = "a table", shown: Shown | None = None
    ) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.expected(what, value, where, key, shown=shown)
        return cast(dict[str, object], value)

    def array(
        self, value: object, where: str, key: str = "", *, what: str = "an array", shown: Shown | None = None
    ) -> list[object]:
        if not isinstance(value, list):
            raise self.expected(what, value, where, key, shown=shown)
        return cast(list[object], value)

    def string(
        self, value: object, where: str, key: str = "", *, non_empty: bool = False, shown: Shown | None = None
    ) -> str:
        """A string (``non_empty``: with something besides white space)."""
        if not isinstance(value, str) or (non_empty and not value.strip()):
            raise self.expected("a non-empty string" if non_empty else "a string", value, where, key, shown=shown)
        return value

    def optional_string(self, value: object, where: str, key: str = "", *, shown: Shown | None = None) -> str | None:
        return None if value is None else self.string(value, where, key, shown=shown)

    def strings(
        self,
        value: object,
        where: str,
        key: str = "",
        *,
        what: str = "an array of strings",
        shown: Shown | None = None,
    ) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.expected(what, value, where, key, shown=shown)
        return cast(list[str], value)

    def count(self, value: object, where: str, key: str = "", *, shown: Shown | None = None) -> int:
        """A non-negative integer (a boolean is not one)."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.expected("a non-negative integer", value, where, key, shown=shown)
        return value

    def boolean(self, value: object, where: str, key: str = "", *, shown: Shown | None = None) -> bool:
        if not isinstance(value, bool):
            raise self.expected("true or false", value, where, key, shown=shown)
        return value
