"""The offline audit: the locked packages of every target against an OSV export of the PyPI ecosystem.

The export is what osv.dev publishes for PyPI (``https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip``:
one ``<ID>.json`` record per advisory), carried across the air gap as a file — the zip itself or a directory of its
records. A record affects a locked package when one of its ``affected[]`` entries names the ``PyPI`` ecosystem and
the package (PEP 503 normalised, :func:`packaging.utils.canonicalize_name`), and the locked version is listed in its
``versions`` or lies in one of its ``ECOSYSTEM`` or ``SEMVER`` ranges, evaluated as the OSV schema's pseudocode does
(https://ossf.github.io/osv-schema/#evaluation): events sorted by version, ``introduced: "0"`` before every version,
``fixed`` exclusive, ``last_affected`` inclusive, ``limit`` (``"*"``: none) an exclusive ceiling. Versions compare
as :class:`packaging.version.Version` (PyPI's own ordering; a SEMVER bound is read as PEP 440 too). ``GIT`` ranges
need the repository and are ignored. A withdrawn record is not reported.

Bad data is handled as osv-scanner handles its offline database: a range whose bounds are not versions is skipped
(the rest of the record still counts), a listed version that is not one is skipped, and a record file that is not
a JSON OSV record is skipped and counted, with its name and what was expected, in :attr:`OsvExport.skipped` — the
audit reports them rather than failing on one bad file among tens of thousands. An input that is not a zip or a
directory of records at all is an :class:`AuditError`.

Only records about a locked name are parsed completely; every record is read for its ``modified`` time, whose
newest is the export's date: what the audit knows is known as of then.

pip-audit and osv-scanner were checked: neither is a library that matches a lock against an offline export (pip-audit
asks the online OSV or PyPI API; osv-scanner is a Go program), so the matching is written here, on ``packaging``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mirror._records import Fields
from mirror.cooldown import stamp, uploaded
from mirror.errors import MirrorError
from mirror.manifest import Manifest

ECOSYSTEM = "PyPI"
RECORD_SUFFIX = ".json"
MAX_RECORD_BYTES = 16 * 1024 * 1024  # the largest PyPI records are tens of kilobytes
EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
Role = Literal["runtime", "build-only"]
_EVALUATED = ("ECOSYSTEM", "SEMVER")  # GIT ranges need the repository's commit graph
_ZERO = Version("0")


class AuditError(MirrorError):
    """The OSV export cannot be read, or there is none to audit with."""


class InvalidRecord(AuditError):
    """One record of the export is not an OSV record (it is skipped and counted, see :class:`Skipped`)."""


# --- the records -------------------------------------------------------------------------------------------------


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One event of a range's timeline: ``{"introduced": "1.0"}`` and so on."""

    kind: EventKind
    version: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Range:
    """``affected[].ranges[]``: a type and its events."""

    type: str
    events: tuple[Event, ...]

    def _timeline(self) -> list[tuple[EventKind, Version | None]] | None:
        """The events sorted by version (``None``: ``introduced "0"``, before every version; ``limit "*"``, after
        every version); ``None`` when a bound is not a version (the range cannot be evaluated)."""
        timeline: list[tuple[EventKind, Version | None]] = []
        for event in self.events:
            if (event.kind == "introduced" and event.version == "0") or (
                event.kind == "limit" and event.version == "*"
            ):
                timeline.append((event.kind, None))
                continue
            version = _version(event.version)
            if version is None:
                return None
            timeline.append((event.kind, version))

        def key(item: tuple[EventKind, Version | None]) -> tuple[int, Version, int]:
            kind, version = item
            if version is None:  # "0" before every version, "*" after every version
                return (0 if kind == "introduced" else 2, _ZERO, 0)
            return (1, version, EVENT_KINDS.index(kind))  # at one version: introduced, then fixed

        return sorted(timeline, key=key)

    def includes(self, version: Version) -> bool:
        """Whether ``version`` lies in the range (the schema's ``BeforeLimits`` and ``IncludedInRanges``); a range
        this audit does not evaluate (GIT, another type, a bound that is not a version) includes nothing."""
        timeline = self._timeline() if self.type in _EVALUATED else None
        if timeline is None:
            return False
        limits = [bound for kind, bound in timeline if kind == "limit"]
        if limits and not any(bound is None or version < bound for bound in limits):
            return False
        vulnerable = False
        for kind, bound in timeline:
            if kind == "introduced" and (bound is None or version >= bound):
                vulnerable = True
            elif bound is not None and (
                (kind == "fixed" and version >= bound) or (kind == "last_affected" and version > bound)
            ):
                vulnerable = False
        return vulnerable

    def fixes_above(self, version: Version) -> list[Version]:
        """The ``fixed`` versions of this range above ``version``."""
        timeline = self._timeline() if self.type in _EVALUATED else None
        return [b for kind, b in timeline or () if kind == "fixed" and b is not None and b > version]


@dataclass(frozen=True, kw_only=True, slots=True)
class Affected:
    """``affected[]``: one package of one ecosystem, its affected versions and ranges."""

    ecosystem: str
    name: str  # as the record spells it
    versions: tuple[str, ...] = ()
    ranges: tuple[Range, ...] = ()

    def names(self, project: str) -> bool:
        """Whether this entry is about the PyPI project ``project`` (names compared PEP 503 normalised)."""
        return self.ecosystem == ECOSYSTEM and canonicalize_name(self.name) == canonicalize_name(project)

    def includes(self, version: Version) -> bool:
        """Listed in ``versions`` (each compared as a version; one that is not a version is skipped), or in a
        range."""
        listed = (_version(v) for v in self.versions)
        return any(v is not None and v == version for v in listed) or any(r.includes(version) for r in self.ranges)


@dataclass(frozen=True, kw_only=True, slots=True)
class Advisory:
    """One OSV record: what a finding shows of it, and what it affects."""

    id: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    modified: str = ""
    withdrawn: str | None = None
    severity: str | None = None  # database_specific.severity, as GHSA records give it (LOW … CRITICAL)
    affected: tuple[Affected, ...] = ()

    def affects(self, project: str, version: Version) -> bool:
        """The schema's ``IsVulnerable``: an entry about ``project`` includes ``version`` (never when withdrawn)."""
        if self.withdrawn is not None:
            return False
        return any(entry.names(project) and entry.includes(version) for entry in self.affected)

    def fixed_in(self, project: str, version: Version) -> str | None:
        """The smallest ``fixed`` version above ``version`` in the ranges about ``project`` (None: no fix known)."""
        fixes = [
            fix
            for entry in self.affected
            if entry.names(project)
            for r in entry.ranges
            if r.includes(version)
            for fix in r.fixes_above(version)
        ]
        return str(min(fixes)) if fixes else None

    @classmethod
    def from_dict(cls, data: object) -> Advisory:
        """A record as osv.dev writes it; :class:`InvalidRecord` names the first field that is not."""
        fields = Fields(lambda where, message: InvalidRecord(f"{where}: {message}" if where else message))
        record = fields.table(data, "", what="a JSON object (an OSV record)", shown="type")
        affected = []
        for i, raw in enumerate(fields.array(record.get("affected", []), "affected")):
            at = f"affected[{i}]"
            entry = fields.table(raw, at, what="an object")
            if "package" not in entry:
                continue  # the schema lets an entry with only GIT ranges name no package: not about a PyPI one
            package = fields.table(entry.get("package"), at, "package", what="an object with ecosystem and name")
            ranges = []
            for j, raw_range in enumerate(fields.array(entry.get("ranges", []), at, "ranges")):
                where = f"{at}.ranges[{j}]"
                item = fields.table(raw_range, where, what="an object")
                events = []
                for k, raw_event in enumerate(fields.array(item.get("events"), where, "events")):
                    event = fields.table(raw_event, f"{where}.events[{k}]", what="an object")
                    kinds = [kind for kind in EVENT_KINDS if kind in event]
                    if len(kinds) != 1:
                        raise fields.error(f"{where}.events[{k}]", f"expected one of {', '.join(EVENT_KINDS)}")
                    kind = kinds[0]
                    events.append(Event(kind=kind, version=fields.string(event[kind], f"{where}.events[{k}]", kind)))
                ranges.append(Range(type=fields.string(item.get("type"), where, "type"), events=tuple(events)))
            affected.append(
                Affected(
                    ecosystem=fields.string(package.get("ecosystem"), at, "package.ecosystem"),
                    name=fields.string(package.get("name"), at, "package.name"),
                    versions=tuple(fields.strings(entry.get("versions", []), at, "versions")),
                    ranges=tuple(ranges),
                )
            )
        specific = record.get("database_specific")
        severity = specific.get("severity") if isinstance(specific, dict) else None
        return cls(
            id=fields.string(record.get("id"), "id", non_empty=True),
            summary=fields.string(record.get("summary", ""), "summary"),
            aliases=tuple(fields.strings(record.get("aliases", []), "aliases")),
            modified=fields.string(record.get("modified", ""), "modified"),
            withdrawn=fields.optional_string(record.get("withdrawn"), "withdrawn"),
            severity=severity if isinstance(severity, str) else None,
            affected=tuple(affected),
        )


def _moment(text: str) -> datetime | None:
    """An RFC 3339 ``modified`` as a moment; fractional seconds of any length (Python 3.10 reads only 0, 3 or 6
    digits) are dropped: a second is precise enough for an export's date."""
    return uploaded(re.sub(r"(T\d\d:\d\d:\d\d)\.\d+", r"\1", text))


def _names_about(data: Mapping[str, object]) -> set[str]:
    """The PyPI names (normalised) a raw record's ``affected`` entries are about, read without validating."""
    names: set[str] = set()
    affected = data.get("affected")
    for entry in affected if isinstance(affected, list) else ():
        package = entry.get("package") if isinstance(entry, dict) else None
        if isinstance(package, dict) and package.get("ecosystem") == ECOSYSTEM and isinstance(package.get("name"), str):
            names.add(canonicalize_name(package["name"]))
    return names


# --- the export --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Skipped:
    """A record file of the export that is not an OSV record, and why."""

    name: str  # its name in the zip or the directory
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OsvExport:
    """An OSV export as read: the records about the names asked for, and what the export is."""

    path: Path
    records: int  # record files read (skipped ones included)
    advisories: tuple[Advisory, ...]  # the valid records about the names asked for (withdrawn ones included)
    skipped: tuple[Skipped, ...] = ()
    newest: str | None = None  # the newest ``modified`` of any record (RFC 3339): the export's date
    mtime: str | None = None  # the file's (or directory's) modification time (RFC 3339)

    @property
    def as_of(self) -> str | None:
        """How old the data is: the newest record's ``modified``, else the file's modification time."""
        return self.newest or self.mtime

    def about(self, project: str) -> list[Advisory]:
        return [a for a in self.advisories if any(e.names(project) for e in a.affected)]

    def describe(self) -> str:
        """``<path>: 41234 OSV records, newest modified 2026-11-30T10:00:00Z``."""
        skipped = f" ({len(self.skipped)} skipped: not OSV records)" if self.skipped else ""
        if self.newest is not None:
            when = f"newest modified {self.newest}"
        else:
            when = f"no record says when it was modified; file written {self.mtime or 'at an unknown time'}"
        return f"{self.path}: {self.records} OSV records{skipped}, {when}"


def _members(path: Path) -> Iterator[tuple[str, bytes | str]]:
    """(name, bytes, or why it cannot be read) of every ``*.json`` record of a zip or a directory tree."""
    if path.is_dir():
        for file in sorted(path.rglob(f"*{RECORD_SUFFIX}")):
            name = file.relative_to(path).as_posix()
            if not file.is_file():
                continue
            try:
                if file.stat().st_size > MAX_RECORD_BYTES:
                    yield name, f"larger than {MAX_RECORD_BYTES} bytes"
                    continue
                yield name, file.read_bytes()
            except OSError as exc:
                yield name, f"cannot read: {exc.strerror or exc}"
        return
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise AuditError(f"{path}: no such file") from None
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise AuditError(
            f"{path}: not an OSV export (expected osv.dev's PyPI all.zip or a directory of its *.json records): {exc}"
        ) from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(RECORD_SUFFIX):
                continue
            if info.file_size > MAX_RECORD_BYTES:
                yield info.filename, f"larger than {MAX_RECORD_BYTES} bytes"
                continue
            try:
                yield info.filename, archive.read(info)
            except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
                yield info.filename, f"cannot read: {exc}"


def load_osv(path: Path, names: Collection[str] | None = None) -> OsvExport:
    """Read the OSV export at ``path`` (osv.dev's zip, or a directory of its records): every record for the
    export's date and for counting; the records about ``names`` (normalised; ``None``: every name) completely.

    Raises :class:`AuditError` when ``path`` is neither, or holds no ``*.json`` record at all."""
    wanted = None if names is None else {canonicalize_name(n) for n in names}
    if not path.exists():
        raise AuditError(f"{path}: no such file or directory (expected osv.dev's PyPI all.zip or a directory of it)")
    records = 0
    newest: datetime | None = None
    advisories: list[Advisory] = []
    skipped: list[Skipped] = []
    for name, content in _members(path):
        records += 1
        if isinstance(content, str):
            skipped.append(Skipped(name=name, reason=content))
            continue
        try:
            data = json.loads(content)
        except ValueError as exc:
            skipped.append(Skipped(name=name, reason=f"not JSON: {exc}"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            skipped.append(Skipped(name=name, reason="expected a JSON object with an 'id' (an OSV record)"))
            continue
        modified = data.get("modified")
        moment = _moment(modified) if isinstance(modified, str) else None
        if moment is not None and (newest is None or moment > newest):
            newest = moment
        if wanted is not None and not (_names_about(data) & wanted):
            continue
        try:
            advisories.append(Advisory.from_dict(data))
        except InvalidRecord as exc:
            skipped.append(Skipped(name=name, reason=str(exc)))
    if records == 0:
        raise AuditError(
            f"{path}: no OSV records (*.json) in it (expected osv.dev's PyPI all.zip or a directory of its records)"
        )
    mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return OsvExport(
        path=path,
        records=records,
        advisories=tuple(advisories),
        skipped=tuple(skipped),
        newest=stamp(newest) if newest is not None else None,
        mtime=stamp(mtime),
    )


def zip_records(directory: Path) -> bytes:
    """A directory of OSV records as one zip, as osv.dev publishes it (records at the root, sorted, with a fixed
    date: the same records zip to the same bytes, so a delta bundle leaves an unchanged export out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in _members(directory):
            if isinstance(content, str):
                raise AuditError(f"{directory / name}: {content}")
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


# --- the audit ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One advisory affecting one locked package (name and version), in one or more targets."""

    name: str
    version: str
    advisory: Advisory
    fixed_in: str | None  # the smallest fixed version above the locked one
    roles: tuple[tuple[str, Literal["runtime", "build"]], ...]  # (target, its role there)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(target for target, _ in self.roles)

    @property
    def role(self) -> Role:
        """``runtime`` when any target installs it; ``build-only`` when it is only needed to build."""
        return "runtime" if any(role == "runtime" for _, role in self.roles) else "build-only"

    def to_dict(self) -> dict[str, object]:
        advisory = self.advisory
        return {
            "name": self.name,
            "version": self.version,
            "id": advisory.id,
            "aliases": list(advisory.aliases),
            "summary": advisory.summary,
            "severity": advisory.severity,
            "modified": advisory.modified or None,
            "fixed_in": self.fixed_in,
            "role": self.role,
            "targets": [{"target": target, "role": role} for target, role in self.roles],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditResult:
    """The locked packages of the targets checked against an OSV export."""

    export: OsvExport
    targets: tuple[str, ...]
    packages: int  # distinct (name, version) pairs checked
    findings: tuple[Finding, ...]
    checked_at: str  # RFC 3339: when the audit ran

    @property
    def affected(self) -> bool:
        return bool(self.findings)

    def age(self) -> str:
        """``3 days`` between the export's date and the audit (empty when unknown)."""
        then, now = uploaded(self.export.as_of), uploaded(self.checked_at)
        if then is None or now is None:
            return ""
        if then > now:
            return ""  # this host's clock is behind the export's: no age to tell
        days = (now - then).days
        return "less than a day" if days < 1 else f"{days} day{'s' if days != 1 else ''}"

    def render(self) -> list[str]:
        """The export and its date, a table of the findings (package, version, advisory, aliases, fixed in, role,
        targets), and a summary."""
        age = self.age()
        lines = [f"advisories: {self.export.describe()}" + (f" ({age} before this audit)" if age else "")]
        if self.findings:
            header = ("package", "version", "advisory", "aliases", "fixed in", "role", "targets")
            rows = [
                (
                    f.name,
                    f.version,
                    f.advisory.id,
                    ", ".join(f.advisory.aliases) or "-",
                    f.fixed_in or "no fix",
                    f.role,
                    ", ".join(f.targets),
                )
                for f in self.findings
            ]
            widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
            for row in (header, *rows):
                lines.append(
                    "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
                )
            affected = len({(f.name, f.version) for f in self.findings})
            lines.append(
                f"{len({f.advisory.id for f in self.findings})} advisories affect {affected} of the {self.packages}"
                f" locked packages of {len(self.targets)} targets"
            )
        else:
            lines.append(
                f"no known advisory affects the {self.packages} locked packages of {len(self.targets)} targets"
                f" (as of {self.export.as_of or 'an unknown date'})"
            )
        return lines

    def warnings(self) -> list[str]:
        """The record files skipped: what the audit could not read is not known to be harmless."""
        return [f"warning: {self.export.path}: {s.name}: skipped: {s.reason}" for s in self.export.skipped]

    def to_dict(self) -> dict[str, object]:
        export = self.export
        return {
            "advisories": {
                "path": str(export.path),
                "records": export.records,
                "newest_modified": export.newest,
                "file_modified": export.mtime,
                "skipped": [{"name": s.name, "reason": s.reason} for s in export.skipped],
            },
            "checked_at": self.checked_at,
            "targets": list(self.targets),
            "packages": self.packages,
            "affected": self.affected,
            "findings": [f.to_dict() for f in self.findings],
        }


def audit(manifest: Manifest, export: OsvExport, *, targets: Sequence[str] = (), now: datetime) -> AuditResult:
    """Every locked package of ``targets`` (all when empty) against ``export``; findings sorted by name, version
    and advisory id."""
    chosen = manifest.select(targets)
    where: dict[tuple[str, str], list[tuple[str, Literal["runtime", "build"]]]] = {}
    for entry in chosen:
        for package in entry.packages:
            key = (canonicalize_name(package.name), package.version)
            where.setdefault(key, []).append((entry.name, package.role))
    findings = []
    for (name, text), roles in sorted(where.items()):
        version = _version(text)
        if version is None:
            continue  # a lock holds only valid versions; a hand-edited one is not matched by guess
        for advisory in export.about(name):
            if advisory.affects(name, version):
                findings.append(
                    Finding(
                        name=name,
                        version=text,
                        advisory=advisory,
                        fixed_in=advisory.fixed_in(name, version),
                        roles=tuple(roles),
                    )
                )
    findings.sort(key=lambda f: (f.name, f.version, f.advisory.id))
    return AuditResult(
        export=export,
        targets=tuple(t.name for t in chosen),
        packages=len(where),
        findings=tuple(findings),
        checked_at=stamp(now),
    )


def locked_names(manifest: Manifest) -> set[str]:
    """Every locked name (normalised), of every target."""
    return {canonicalize_name(p.name) for t in manifest.targets for p in t.packages}
