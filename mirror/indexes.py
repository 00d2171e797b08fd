"""The indexes a workspace mirrors from, and which one each project name comes from.

A spec declares indexes as ``[[index]]`` tables (``[mirror] upstream`` is the short form of one default index;
PyPI when neither is given). An index with ``packages`` serves those names — PEP 503-normalized, ``*`` patterns
allowed — and nothing else may: a routed name is looked up on its index alone, even when another index lists it
at a higher version. That is the whole defence against dependency confusion, so it is enforced where names are
looked up (:mod:`mirror.router`), not left to a resolver's index order. The first index without ``packages`` is
the default: every name no index is routed to comes from it.

Besides the spec's patterns, a name is routed exactly by what the team already pinned: a lock that records the
registry of a package (uv.lock's ``source = { registry = … }``, Poetry's legacy source, PEP 751 ``index``,
Pipfile.lock's ``index``), and the projects found in ``[sources] find-links`` folders (:data:`FIND_LINKS`).
:class:`Routing` holds all of it and refuses a name claimed by two places.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from mirror.errors import MirrorError

PYPI_SIMPLE = "https://pypi.org/simple"
#: The name of the pseudo-index made of the ``[sources] find-links`` folders.
FIND_LINKS = "find-links"
INDEX_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # uv's rule for index names
_PATTERN_RE = re.compile(r"^[a-z0-9*]([a-z0-9.*_-]*[a-z0-9*])?$")


class RoutingError(MirrorError):
    """A project name is claimed by two indexes, or a lock names an index the spec does not declare."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Index:
    """One upstream index: a PEP 503/691 Simple API root (http, https or a ``file://`` tree)."""

    name: str
    url: str  # no trailing slash, never credentials
    packages: tuple[str, ...] = ()  # normalized names and ``*`` patterns it alone serves; () = unrouted

    @property
    def env_prefix(self) -> str:
        """``MIRROR_INDEX_<NAME>``: where this index's credentials are read from (as uv spells its own)."""
        return "MIRROR_INDEX_" + re.sub(r"[^A-Z0-9]", "_", self.name.upper())

    def matching(self, project: str) -> str | None:
        """The first of :attr:`packages` that ``project`` (normalized) matches."""
        return next((p for p in self.packages if fnmatch.fnmatchcase(project, p)), None)

    def describe(self) -> str:
        return f"index {self.name!r} ({self.url})"


def normalize_pattern(value: str) -> str | None:
    """``value`` as a routing pattern (PEP 503-normalized around its ``*``), or None when it is not one."""
    parts = [str(canonicalize_name(part)) if part else "" for part in value.strip().split("*")]
    pattern = "*".join(parts)
    return pattern if pattern and _PATTERN_RE.fullmatch(pattern) else None


def same_url(a: str, b: str) -> bool:
    """Two index URLs name the same index (scheme and host case, a trailing slash and a default port aside)."""

    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        except ValueError:
            port = None
        return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")

    return key(a) == key(b)


def redact(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: the only form in which such a URL is shown."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """Why one exact name comes from one index."""

    index: str  # an index name, or FIND_LINKS
    why: str  # "uv.lock: acme-auth's registry", "find-links dist/acme_auth-1.0-py3-none-any.whl"


@dataclass(frozen=True, kw_only=True, slots=True)
class Routing:
    """Which index each project name comes from."""

    indexes: tuple[Index, ...]
    exact: Mapping[str, Route] = field(default_factory=dict)  # routes from locks and find-links, by name

    @property
    def default(self) -> Index:
        """The first index without ``packages`` (the spec always has one)."""
        return next(i for i in self.indexes if not i.packages)

    def index(self, name: str) -> Index:
        """The index called ``name``."""
        found = next((i for i in self.indexes if i.name == name), None)
        if found is None:
            raise RoutingError(f"no index named {name!r}; declared: {', '.join(i.name for i in self.indexes)}")
        return found

    def declared(self, url: str) -> Index | None:
        """The index whose URL is ``url``; PyPI's URL stands for the default index when none is declared at it
        (a lock made against PyPI is mirrored from wherever the spec takes PyPI's packages)."""
        found = next((i for i in self.indexes if same_url(i.url, url)), None)
        if found is None and same_url(url, PYPI_SIMPLE):
            return self.default
        return found

    def claims(self, project: str) -> list[tuple[str, str]]:
        """Every ``(index name, reason)`` that claims ``project`` (normalized)."""
        found = [(route.index, route.why)] if (route := self.exact.get(project)) else []
        for index in self.indexes:
            pattern = index.matching(project)
            if pattern is not None:
                found.append((index.name, f"[[index]] {index.name!r} packages {pattern!r}"))
        return found

    def source_of(self, project: str) -> str:
        """The name of the index ``project`` comes from (or FIND_LINKS); :class:`RoutingError` when two claim it."""
        name = str(canonicalize_name(project))
        claims = self.claims(name)
        owners = {index for index, _ in claims}
        if len(owners) > 1:
            reasons = "; ".join(f"{index} by {why}" for index, why in claims)
            raise RoutingError(f"{name}: claimed by more than one index ({reasons}); a name comes from one index only")
        return claims[0][0] if claims else self.default.name

    def with_routes(self, routes: Iterable[tuple[str, str, str]]) -> Routing:
        """A copy where each ``(name, index name, why)`` routes that exact name; a name routed to two indexes is a
        :class:`RoutingError` naming both reasons, and so is a name that a lock takes from one index and another
        index's ``packages`` claim (a lock made before the name was routed, or a confused one)."""
        exact = dict(self.exact)
        for name, index, why in routes:
            name = str(canonicalize_name(name))
            present = exact.get(name)
            if present is not None and present.index != index:
                raise RoutingError(
                    f"{name}: {why} says index {index!r}, {present.why} says {present.index!r};"
                    " a name comes from one index only"
                )
            if present is None:
                exact[name] = Route(index=index, why=why)
        routed = replace(self, exact=exact)
        for name in exact:
            routed.source_of(name)  # a pattern of another index claiming the name: refused now, by name
        return routed


def undeclared_index_error(url: str, *, where: str, indexes: Iterable[Index]) -> RoutingError:
    """The error for a lock or project naming an index the spec does not declare, with the table to add."""
    label = (urlsplit(url).hostname or "").split(".")[0]
    name = label if re.fullmatch(r"[a-z][a-z0-9-]*", label) and label not in ("pypi", "localhost") else "internal"
    declared = ", ".join(f"{i.name} ({i.url})" for i in indexes)
    return RoutingError(
        f"{where}: index {redact(url)} is not declared in mirror.toml (declared: {declared}); add"
        f' [[index]] name = "{name}" url = "{redact(url).rstrip("/")}"'
    )
