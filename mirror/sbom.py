"""A CycloneDX 1.6 SBOM per target: ``lockfiles/<target>.cdx.json``, everything that crosses the gap for it.

Written with ``cyclonedx-python-lib`` after the files are here (``mirror fetch``, ``mirror sync``, ``mirror bundle
export``), because a license is read from each package's core metadata, inside its wheel (``*.dist-info/METADATA``)
or sdist (``PKG-INFO``). One component per locked package version of the target:

* ``purl`` ``pkg:pypi/<normalized name>@<version>`` (also its ``bom-ref``);
* ``hashes``: the sha256 of every file served to that target, and one ``distribution`` external reference per file
  (its upstream URL, or ``files/<project>/<file>`` for a wheel built here) carrying that file's own sha256;
* ``licenses``, as declared (acknowledgement ``declared``): the PEP 639 ``License-Expression``; else a one-line
  ``License`` field that is an SPDX id or expression; else the ``License ::`` classifiers (an SPDX id where one is
  known, else the classifier's name); else a one-line ``License`` field as the license's name; else a longer one
  as the license's text;
* ``scope``: ``required`` for a runtime package, ``excluded`` for one only the builds need (CycloneDX's scope for
  what is not part of the running service), and the property ``offline-mirror:role`` (``runtime`` / ``build``)
  says the same in words, with ``offline-mirror:via`` naming what pulled it in or which builds need it.

The BOM's subject (``metadata.component``) is the target itself; the generator (``metadata.tools``) is
offline-mirror; the runtime dependency graph comes from each package's ``via``. A new SBOM replaces the file only
when something but its timestamp and serial number changed, so a run that changes nothing rewrites nothing.
The license a file declares is cached by its sha256 (files never change under a hash).
"""

from __future__ import annotations

import json
import re
import tarfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name

from mirror import __version__, _atomic
from mirror.errors import MirrorError
from mirror.manifest import FileEntry, Manifest, PackageEntry, TargetEntry

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component
    from cyclonedx.model.license import License

SUFFIX = ".cdx.json"
SPEC_VERSION = "1.6"
ROLE_PROPERTY = "offline-mirror:role"
VIA_PROPERTY = "offline-mirror:via"
#: The placeholders a BOM is compared with before it replaces the one on disk.
_SERIAL_KEY = "serialNumber"
_LONG_LICENSE = 100  # a License field longer than this, or of several lines, is a license text, not a name


class SbomError(MirrorError):
    """An SBOM could not be written or read."""


def sbom_name(target: str) -> str:
    """``<target>.cdx.json``: the SBOM of a target, beside its lockfiles."""
    return f"{target}{SUFFIX}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Declared:
    """What a distribution's core metadata says of its license."""

    expression: str | None = None  # License-Expression (PEP 639)
    license: str | None = None  # the License field
    classifiers: tuple[str, ...] = ()  # License :: ... classifiers

    def to_dict(self) -> dict[str, object]:
        return {"expression": self.expression, "license": self.license, "classifiers": list(self.classifiers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Declared:
        expression, license_, classifiers = data.get("expression"), data.get("license"), data.get("classifiers")
        return cls(
            expression=expression if isinstance(expression, str) else None,
            license=license_ if isinstance(license_, str) else None,
            classifiers=tuple(c for c in classifiers if isinstance(c, str)) if isinstance(classifiers, list) else (),
        )


_NOTHING = Declared()


def _metadata_bytes(path: Path) -> bytes | None:
    """The core metadata inside a wheel (``*.dist-info/METADATA``) or an sdist (``<dir>/PKG-INFO``)."""
    name = path.name
    try:
        if name.endswith(".whl") or (name.endswith(".zip") and zipfile.is_zipfile(path)):
            with zipfile.ZipFile(path) as archive:
                wanted = "METADATA" if name.endswith(".whl") else "PKG-INFO"
                members = [m for m in archive.namelist() if m.count("/") == 1 and m.endswith("/" + wanted)]
                if name.endswith(".whl"):
                    members = [m for m in members if m.split("/")[0].endswith(".dist-info")]
                return archive.read(members[0]) if members else None
        if name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar")):
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                        extracted = archive.extractfile(member)
                        return extracted.read() if extracted is not None else None
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError):
        return None
    return None


def read_declared(path: Path) -> Declared:
    """The license a distribution file declares (nothing when its metadata cannot be read)."""
    data = _metadata_bytes(path)
    if data is None:
        return Declared()
    raw, _ = parse_email(data)
    classifiers = tuple(c for c in raw.get("classifiers", []) if c.startswith("License ::"))
    expression = raw.get("license_expression")
    license_ = raw.get("license")
    return Declared(
        expression=expression.strip() or None if expression else None,
        license=license_.strip() or None if license_ and license_.strip().upper() not in ("UNKNOWN", "") else None,
        classifiers=classifiers,
    )


#: The ``License ::`` classifiers whose license has one SPDX id (the rest are named by the classifier's last part).
CLASSIFIER_SPDX = {
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Zope Public License": "ZPL-2.1",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


def licenses(declared: Declared) -> list[License]:
    """The CycloneDX licenses of what ``declared`` says, most precise first (see the module's description)."""
    from cyclonedx.contrib.license.exceptions import InvalidLicenseExpressionException
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import AttachedText
    from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement

    declared_ack = LicenseAcknowledgement.DECLARED
    factory = LicenseFactory()
    if declared.expression:
        try:
            return [factory.make_with_expression(declared.expression, acknowledgement=declared_ack)]
        except InvalidLicenseExpressionException:  # still what the package declares: kept as its name
            return [DisjunctiveLicense(name=declared.expression, acknowledgement=declared_ack)]
    text = declared.license
    short = text if text and "\n" not in text and len(text) <= _LONG_LICENSE else None
    if short:
        made = factory.make_from_string(short, license_acknowledgement=declared_ack)
        if not isinstance(made, DisjunctiveLicense) or made.id is not None:
            return [made]  # an SPDX id or expression
    if declared.classifiers:
        out: list[License] = []
        for classifier in declared.classifiers:
            spdx = CLASSIFIER_SPDX.get(classifier)
            name = classifier.rsplit("::", 1)[-1].strip()
            if spdx:
                out.append(DisjunctiveLicense(id=spdx, acknowledgement=declared_ack))
            elif name and name != "OSI Approved":
                out.append(DisjunctiveLicense(name=name, acknowledgement=declared_ack))
        if out:
            return out
    if short:
        return [DisjunctiveLicense(name=short, acknowledgement=declared_ack)]
    if text:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "declared license")
        return [
            DisjunctiveLicense(
                name=first[:_LONG_LICENSE], text=AttachedText(content=text), acknowledgement=declared_ack
            )
        ]
    return []


class LicenseCache:
    """What each file declares, by sha256, in ``wheelhouse/.cache/licenses.json`` (rebuilt when unreadable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Declared] = {}
        self._dirty = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            for sha256, value in data.items():
                if isinstance(value, dict):
                    self._entries[sha256] = Declared.from_dict(value)

    def declared(self, file: FileEntry, files_dir: Path) -> Declared:
        found = self._entries.get(file.sha256)
        if found is None:
            found = read_declared(files_dir / file.relpath)
            self._entries[file.sha256] = found
            self._dirty = True
        return found

    def save(self) -> None:
        if self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = {sha: entry.to_dict() for sha, entry in sorted(self._entries.items())}
            _atomic.write_text(self.path, json.dumps(data, indent=0, sort_keys=True) + "\n")
            self._dirty = False


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{version}"


@dataclass(frozen=True, kw_only=True, slots=True)
class _Package:
    """One component: a package version of the target, runtime if any of its entries is."""

    name: str
    version: str
    runtime: bool
    files: tuple[str, ...]
    via: tuple[str, ...]


def _packages(entry: TargetEntry) -> list[_Package]:
    merged: dict[tuple[str, str], list[PackageEntry]] = {}
    for package in entry.packages:
        merged.setdefault((canonicalize_name(package.name), package.version), []).append(package)
    out = []
    for (_, version), entries in sorted(merged.items()):
        files = tuple(dict.fromkeys(f for e in entries for f in e.files))
        via = tuple(dict.fromkeys(v for e in entries for v in e.via))
        runtime = any(e.role == "runtime" for e in entries)
        out.append(_Package(name=entries[0].name, version=version, runtime=runtime, files=files, via=via))
    return out


def build_bom(entry: TargetEntry, manifest: Manifest, declared: Mapping[str, Declared]) -> Bom:
    """The SBOM of one target. ``declared`` maps a filename to what it declares of its license (a package's license
    is read from its first file that declares one). Serial number and timestamp are set by :func:`render`."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentScope, ComponentType
    from packageurl import PackageURL

    target = entry.target
    subject = Component(
        type=ComponentType.APPLICATION,
        name=entry.name,
        bom_ref=f"target:{entry.name}",
        description=f"What offline-mirror serves to target {entry.name}",
        properties=[
            Property(name="offline-mirror:target:platform", value=target.platform),
            Property(name="offline-mirror:target:python", value=target.python),
        ],
    )
    bom = Bom()
    bom.metadata.component = subject
    tool = Component(type=ComponentType.APPLICATION, name="offline-mirror", version=__version__)
    bom.metadata.tools.components.add(tool)
    components: dict[str, Component] = {}
    packages = _packages(entry)
    for package in packages:
        files = [manifest.files[f] for f in package.files if f in manifest.files]
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=f.sha256) for f in files]
        references = [
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(f.url or f"files/{f.relpath}"),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.sha256)],
                comment=f.filename if f.built_from is None else f"{f.filename}, built here from {f.built_from}",
            )
            for f in files
        ]
        said = next((d for d in (declared.get(f.filename, _NOTHING) for f in files) if d != _NOTHING), _NOTHING)
        role = "runtime" if package.runtime else "build"
        purl = _purl(package.name, package.version)
        components[canonicalize_name(package.name)] = component = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            bom_ref=purl,
            purl=PackageURL(type="pypi", name=canonicalize_name(package.name), version=package.version),
            scope=ComponentScope.REQUIRED if package.runtime else ComponentScope.EXCLUDED,
            hashes=hashes,
            licenses=licenses(said),
            external_references=references,
            properties=[Property(name=ROLE_PROPERTY, value=role)]
            + [Property(name=VIA_PROPERTY, value=v) for v in package.via],
        )
        bom.components.add(component)
    roots: list[Component] = []
    needs: dict[str, list[Component]] = {}
    for package in packages:
        if not package.runtime:
            continue
        component = components[canonicalize_name(package.name)]
        parents = [canonicalize_name(v) for v in package.via]
        known = [p for p in parents if p in components and components[p].scope == ComponentScope.REQUIRED]
        if len(known) < len(parents) or not parents:
            roots.append(component)  # asked for by a source (a requirements file, a project)
        for parent in known:
            needs.setdefault(parent, []).append(component)
    bom.register_dependency(subject, roots)
    for parent_name, children in sorted(needs.items()):
        bom.register_dependency(components[parent_name], children)
    return bom


def render(bom: Bom, *, now: datetime | None = None) -> str:
    """The BOM as CycloneDX 1.6 JSON; its serial number is derived from its contents, its timestamp is ``now``."""
    from cyclonedx.output.json import JsonV1Dot6

    bom.metadata.timestamp = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    bom.serial_number = uuid.UUID(int=0)
    body = _comparable(JsonV1Dot6(bom).output_as_string(indent=2))
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, "offline-mirror:sbom:" + body)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def _comparable(text: str) -> str:
    """A BOM's JSON without what changes on every run (serial number, timestamp)."""
    data = json.loads(text)
    data.pop(_SERIAL_KEY, None)
    if isinstance(data.get("metadata"), dict):
        data["metadata"].pop("timestamp", None)
    return json.dumps(data, sort_keys=True)


def same_bom(old: str, new: str) -> bool:
    """Whether two BOM texts differ only in serial number and timestamp."""
    try:
        return _comparable(old) == _comparable(new)
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class SbomResult:
    written: tuple[Path, ...]  # new or changed
    unchanged: tuple[Path, ...]
    incomplete: tuple[str, ...]  # targets with files not here: no SBOM written

    def render(self) -> list[str]:
        paths = self.written + self.unchanged
        if not paths and not self.incomplete:
            return []
        lines = []
        if paths:
            changed = f", {len(self.written)} new or changed" if self.written and self.unchanged else ""
            where = paths[0].parent
            lines.append(f"SBOM (CycloneDX {SPEC_VERSION}) of {len(paths)} target(s) in {where}{changed}")
        if self.incomplete:
            lines.append(f"no SBOM for {', '.join(self.incomplete)}: locked files are missing")
        return lines


def write_sboms(
    manifest: Manifest,
    files_dir: Path,
    lockfiles: Path,
    cache: LicenseCache,
    *,
    targets: Sequence[str] = (),
    now: datetime | None = None,
) -> SbomResult:
    """Write ``<target>.cdx.json`` into ``lockfiles`` for each target (all by default) whose files are all in
    ``files_dir``; a BOM that differs from the one there only in timestamp and serial number is not rewritten."""
    written: list[Path] = []
    unchanged: list[Path] = []
    incomplete: list[str] = []
    for entry in manifest.select(targets):
        files = [manifest.files[f] for f in entry.filenames() if f in manifest.files]
        if any(not (files_dir / f.relpath).is_file() for f in files):
            incomplete.append(entry.name)
            continue
        declared = {f.filename: cache.declared(f, files_dir) for f in files}
        text = render(build_bom(entry, manifest, declared), now=now)
        path = lockfiles / sbom_name(entry.name)
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old is not None and same_bom(old, text):
            unchanged.append(path)
            continue
        _atomic.write_text(path, text)
        written.append(path)
    cache.save()
    return SbomResult(written=tuple(written), unchanged=tuple(unchanged), incomplete=tuple(incomplete))


@dataclass(frozen=True, kw_only=True, slots=True)
class SbomSummary:
    """What an SBOM says, in numbers (``mirror bundle verify``)."""

    target: str
    components: int
    runtime: int
    build_only: int
    licensed: int
    generator: str

    def render(self) -> str:
        plural = "" if self.components == 1 else "s"
        return (
            f"SBOM {self.target}: {self.components} component{plural} ({self.runtime} runtime,"
            f" {self.build_only} build-only), {self.licensed} with a declared license; by {self.generator}"
        )


def summarize(text: str | bytes, where: str) -> SbomSummary:
    """Count what a ``<target>.cdx.json`` lists; ``where`` names it in the error for one that is not an SBOM."""
    try:
        data = json.loads(text)
        if data.get("bomFormat") != "CycloneDX":
            raise ValueError("bomFormat is not CycloneDX")
        components = [c for c in data.get("components", []) if isinstance(c, dict)]
        tools = data.get("metadata", {}).get("tools", {}).get("components", [])
        target = str(data.get("metadata", {}).get("component", {}).get("name", "?"))
    except (ValueError, AttributeError) as exc:
        raise SbomError(f"{where}: not a CycloneDX JSON SBOM ({exc})") from None

    def role(component: Mapping[str, object]) -> str | None:
        for prop in component.get("properties", []) or []:  # type: ignore[attr-defined]
            if isinstance(prop, dict) and prop.get("name") == ROLE_PROPERTY:
                return str(prop.get("value"))
        return None

    generator = ", ".join(f"{t.get('name')} {t.get('version', '')}".strip() for t in tools if isinstance(t, dict))
    return SbomSummary(
        target=target,
        components=len(components),
        runtime=sum(1 for c in components if role(c) == "runtime"),
        build_only=sum(1 for c in components if role(c) == "build"),
        licensed=sum(1 for c in components if c.get("licenses")),
        generator=generator or "unknown",
    )


def is_sbom(member: str) -> bool:
    """Whether a bundle member is a target's SBOM, ``lockfiles/<target>.cdx.json``."""
    return re.fullmatch(r"lockfiles/[^/]+" + re.escape(SUFFIX), member) is not None


def validate(text: str) -> None:
    """Validate against the CycloneDX 1.6 JSON schema with the library's strict validator (needs its
    ``json-validation`` extra); raises :class:`SbomError` naming the first problem."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SbomError(f"not a valid CycloneDX 1.6 SBOM: {error}")
