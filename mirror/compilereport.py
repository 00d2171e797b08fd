"""The compile report: which packages each target still has to build itself, and what that takes there.

A package lands in the report for a target when every file the lock gives it for that target is an sdist and no
wheel of it was built here (``mirror fetch`` with ``policy.build-wheels``). Each entry carries the build
requirements from the lock's ``builds`` entry for that sdist (``requires`` and the resolved ``pins``, which the
mirror holds) and an answer to "does it compile?":

* ``"yes"`` — the project is in :data:`SYSTEM_PACKAGES` (known to build C, C++, Rust or Fortran), or its build
  requirements name a tool that drives a compiler (:data:`COMPILING_BUILD_REQUIREMENTS`: Cython,
  setuptools-rust, maturin, pybind11, scikit-build, meson-python, …);
* ``"optional"`` — a table entry whose extension is optional (PyYAML without libyaml installs pure Python);
* ``"unknown"`` — anything else. This is never reported as "no": a plain setuptools ``setup.py`` can declare C
  extensions with no build requirement saying so, and only running the build tells.

System packages are given for the target's package manager: apt (Debian/Ubuntu) for glibc Linux, apk (Alpine)
for musl Linux; macOS and Windows get a note naming the compiler toolchain instead, as their libraries come from
places (Homebrew, vcpkg, installers) this table does not know. ``python3-dev`` in a list is only needed when the
target builds with the distribution's own Python: the official ``python`` container images ship the headers.

The report is plain data (JSON-serializable, deterministic: targets in lock order, packages by name and version);
:func:`render_compile_report` turns it into the lines the CLI prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror.manifest import BuildEntry, Manifest, TargetEntry
from mirror.targets import Target

Compiles = Literal["yes", "optional", "unknown"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SystemPackages:
    """What one well-known project needs from the target's operating system to build."""

    what: str  # why it compiles, in a few words
    apt: tuple[str, ...]  # Debian / Ubuntu
    apk: tuple[str, ...]  # Alpine
    compiles: Literal["yes", "optional"] = "yes"
    language: Literal["C", "Rust"] = "C"  # which toolchain: Rust also needs rustc and cargo
    note: str = ""


#: Well-known sdists that compile, keyed by normalized project name.
SYSTEM_PACKAGES: dict[str, SystemPackages] = {
    "cffi": SystemPackages(
        what="C extension linking libffi",
        apt=("libffi-dev", "gcc", "python3-dev"),
        apk=("libffi-dev", "build-base", "python3-dev"),
    ),
    "cryptography": SystemPackages(
        what="Rust extension (setuptools-rust; maturin since cryptography 42) linking OpenSSL",
        apt=("build-essential", "rustc", "cargo", "libssl-dev", "pkg-config"),
        apk=("build-base", "rust", "cargo", "openssl-dev", "pkgconf", "libffi-dev"),
        language="Rust",
        note="it needs a recent Rust: the distribution's rustc is often too old (rustup is the usual fix)",
    ),
    "gevent": SystemPackages(
        what="C extensions (bundled libev, libuv and c-ares)",
        apt=("gcc", "python3-dev"),
        apk=("build-base", "python3-dev", "libffi-dev"),
        note="the build takes minutes; greenlet is built first when it has no wheel either",
    ),
    "greenlet": SystemPackages(
        what="C++ extension",
        apt=("gcc", "g++", "python3-dev"),
        apk=("build-base", "python3-dev"),
    ),
    "lxml": SystemPackages(
        what="C extension linking libxml2 and libxslt",
        apt=("libxml2-dev", "libxslt1-dev", "gcc", "python3-dev"),
        apk=("libxml2-dev", "libxslt-dev", "build-base", "python3-dev"),
    ),
    "mysqlclient": SystemPackages(
        what="C extension linking the MySQL/MariaDB client library",
        apt=("default-libmysqlclient-dev", "pkg-config", "build-essential"),
        apk=("mariadb-dev", "pkgconf", "build-base"),
        note="libmysqlclient-dev instead of default-libmysqlclient-dev for Oracle MySQL's client on Ubuntu;"
        " mysqlclient >= 2.2 finds the library with pkg-config",
    ),
    "numpy": SystemPackages(
        what="C/C++ extensions (Meson)",
        apt=("gcc", "g++", "libopenblas-dev", "pkg-config", "python3-dev"),
        apk=("build-base", "openblas-dev", "pkgconf", "python3-dev"),
        note="BLAS/LAPACK (OpenBLAS) is optional: numpy falls back to its own slower routines",
    ),
    "pillow": SystemPackages(
        what="C extension linking libjpeg and zlib",
        apt=("libjpeg-dev", "zlib1g-dev", "gcc", "python3-dev"),
        apk=("jpeg-dev", "zlib-dev", "build-base", "python3-dev"),
        note="more formats need more -dev packages: libtiff, libwebp, freetype, lcms2, openjpeg",
    ),
    "psycopg-c": SystemPackages(
        what="C extension linking libpq",
        apt=("libpq-dev", "gcc", "python3-dev"),
        apk=("postgresql-dev", "build-base", "python3-dev"),
    ),
    "psycopg2": SystemPackages(
        what="C extension linking libpq",
        apt=("libpq-dev", "gcc", "python3-dev"),
        apk=("postgresql-dev", "build-base", "python3-dev"),
        note="pg_config (from libpq-dev / postgresql-dev) must be on PATH",
    ),
    "pycurl": SystemPackages(
        what="C extension linking libcurl",
        apt=("libcurl4-openssl-dev", "libssl-dev", "gcc", "python3-dev"),
        apk=("curl-dev", "openssl-dev", "build-base", "python3-dev"),
        note="its SSL backend must match libcurl's (PYCURL_SSL_LIBRARY=openssl)",
    ),
    "pyodbc": SystemPackages(
        what="C++ extension linking unixODBC",
        apt=("unixodbc-dev", "g++", "python3-dev"),
        apk=("unixodbc-dev", "build-base", "python3-dev"),
        note="running it also needs an ODBC driver for the database",
    ),
    "python-ldap": SystemPackages(
        what="C extension linking OpenLDAP and Cyrus SASL",
        apt=("libldap2-dev", "libsasl2-dev", "gcc", "python3-dev"),
        apk=("openldap-dev", "cyrus-sasl-dev", "build-base", "python3-dev"),
        note="Debian 12 and later call it libldap-dev (libldap2-dev is a transitional name)",
    ),
    "pyyaml": SystemPackages(
        what="optional C extension linking libyaml (the fast CLoader/CDumper)",
        apt=("libyaml-dev", "gcc", "python3-dev"),
        apk=("yaml-dev", "build-base", "python3-dev"),
        compiles="optional",
        note="without libyaml PyYAML builds as pure Python",
    ),
    "scipy": SystemPackages(
        what="C, C++ and Fortran extensions (Meson) linking BLAS/LAPACK",
        apt=("gcc", "g++", "gfortran", "libopenblas-dev", "pkg-config", "python3-dev"),
        apk=("build-base", "gfortran", "openblas-dev", "pkgconf", "python3-dev"),
        note="a long build; numpy and pythran are build requirements (locked)",
    ),
    "uwsgi": SystemPackages(
        what="C program and extension built by its own uwsgiconfig.py",
        apt=("gcc", "python3-dev"),
        apk=("linux-headers", "build-base", "python3-dev"),
        note="routing and TLS plugins need libpcre2-dev and libssl-dev",
    ),
}

#: Build requirements that drive a compiler (normalized name -> the language): their presence means "yes".
COMPILING_BUILD_REQUIREMENTS: dict[str, str] = {
    "cffi": "C",
    "cmake": "C/C++",
    "cython": "C",
    "extension-helpers": "C",
    "hatch-mypyc": "C",
    "maturin": "Rust",
    "meson-python": "C/C++",
    "mypy": "C",  # mypyc
    "nanobind": "C++",
    "numpy": "C",
    "oldest-supported-numpy": "C",
    "py-build-cmake": "C/C++",
    "pybind11": "C++",
    "pythran": "C++",
    "scikit-build": "C/C++",
    "scikit-build-core": "C/C++",
    "setuptools-rust": "Rust",
}

#: The toolchain a compiling sdist that is not in :data:`SYSTEM_PACKAGES` needs, per package manager.
_TOOLCHAIN = {
    "apt": {"C": ("build-essential",), "Rust": ("build-essential", "rustc", "cargo")},
    "apk": {"C": ("build-base",), "Rust": ("build-base", "rust", "cargo")},
}
_OS_TOOLCHAIN = {
    "macos": "a C compiler toolchain: the Xcode Command Line Tools (xcode-select --install)",
    "windows": "a C compiler toolchain: the Microsoft C++ Build Tools",
}
_INSTALL = {"apt": "apt-get install --no-install-recommends", "apk": "apk add"}


def package_manager(target: Target) -> Literal["apt", "apk"] | None:
    """``apt`` for glibc Linux, ``apk`` for musl Linux, ``None`` for macOS and Windows."""
    libc = target.info.libc
    return "apt" if libc == "glibc" else "apk" if libc == "musl" else None


def compile_report(
    manifest: Manifest | Mapping[str, object],
    *,
    built: Mapping[str, Set[str]],
    unfit: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[dict[str, object]]]:
    """Per target (in lock order), the packages that target still builds from an sdist, by name and version.

    ``manifest`` is ``mirror.lock.json`` (read or as a :class:`~mirror.manifest.Manifest`); ``built`` maps a target
    name to the sdist filenames a wheel was built from here; ``unfit`` maps a target name and an sdist to why the
    wheel built here from it does not load on that target. Raises :class:`~mirror.manifest.InvalidManifest` for a
    malformed manifest.
    """
    lock = manifest if isinstance(manifest, Manifest) else Manifest.from_dict(manifest)
    unfit = unfit or {}
    return {
        entry.name: _target_report(entry, lock, frozenset(built.get(entry.name, ())), unfit.get(entry.name, {}))
        for entry in lock.targets
    }


def _target_report(
    entry: TargetEntry, lock: Manifest, built: frozenset[str], unfit: Mapping[str, str]
) -> list[dict[str, object]]:
    builds = {build.requirer: build for build in entry.builds}
    roles: dict[tuple[str, str], set[str]] = {}
    sdists: dict[tuple[str, str], str] = {}
    for package in entry.packages:
        kinds = {lock.files[f].kind for f in package.files}
        candidates = sorted(f for f in package.files if lock.files[f].kind == "sdist")
        if "wheel" in kinds or not candidates or built & set(candidates):
            continue
        key = (package.name, package.version)
        roles.setdefault(key, set()).add(package.role)
        sdists.setdefault(key, candidates[0])
    manager = package_manager(entry.target)
    report = []
    for name, version in sorted(roles, key=lambda k: (k[0], k[1])):
        sdist = sdists[(name, version)]
        item = _entry(name, version, sdist, sorted(roles[(name, version)]), builds.get(sdist), manager, entry.target)
        report.append({**item, "built_here": unfit.get(sdist)})
    return report


def _entry(
    name: str,
    version: str,
    sdist: str,
    roles: list[str],
    build: BuildEntry | None,
    manager: Literal["apt", "apk"] | None,
    target: Target,
) -> dict[str, object]:
    requires = list(build.requires) if build else []
    known = SYSTEM_PACKAGES.get(str(canonicalize_name(name)))
    tools = _compiling_tools(requires)
    compiles: Compiles
    packages: tuple[str, ...] = ()
    note = ""
    rust = any(language == "Rust" for _, language in tools)
    if known is not None:
        compiles, reason, note = known.compiles, known.what, known.note
        rust = rust or known.language == "Rust"
        if manager is not None:
            packages = known.apt if manager == "apt" else known.apk
    elif tools:
        compiles = "yes"
        reason = "build requirement " + ", ".join(f"{tool} ({language})" for tool, language in tools)
        if manager is not None:
            packages = _TOOLCHAIN[manager]["Rust" if rust else "C"]
    else:
        compiles = "unknown"
        if build is None:
            reason = "the lock has no build information for it"
        elif build.backend.startswith("setuptools"):
            reason = "no build requirement drives a compiler, but setup.py can still build C extensions"
        else:
            reason = f"no build requirement drives a compiler, but a {build.backend} build hook still could"
    if compiles != "unknown" and manager is None:
        toolchain = _OS_TOOLCHAIN[target.info.os] + (", and Rust (rustup)" if rust else "")
        note = f"{toolchain}; {note}" if note else toolchain
    return {
        "name": name,
        "version": version,
        "sdist": sdist,
        "roles": roles,
        "compiles": compiles,
        "reason": reason,
        "build_backend": build.backend if build else None,
        "build_requires": requires,
        "build_pins": list(build.pins) if build else [],
        "build_error": build.error if build else None,
        "package_manager": manager,
        "system_packages": list(packages),
        "note": note,
    }


def _compiling_tools(requires: list[str]) -> list[tuple[str, str]]:
    tools = []
    for text in requires:
        try:
            name = str(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
        if name in COMPILING_BUILD_REQUIREMENTS:
            tools.append((name, COMPILING_BUILD_REQUIREMENTS[name]))
    return sorted(set(tools))


def render_compile_report(report: Mapping[str, list[dict[str, object]]]) -> list[str]:
    """The report as lines for a person: per target, each sdist, its build requirements and system packages."""
    lines: list[str] = []
    for target, entries in report.items():
        if not entries:
            lines.append(f"{target}: nothing to build on the target")
            continue
        count = len(entries)
        lines.append(f"{target}: {count} sdist{'s' if count != 1 else ''} to build on the target")
        wanted: set[str] = set()
        manager = None
        for item in entries:
            lines.append(f"  {item['name']} {item['version']} ({item['sdist']}): compiles: {item['compiles']}")
            lines.append(f"    why: {item['reason']}")
            requires = ", ".join(_strings(item["build_requires"])) or "none recorded"
            pins = ", ".join(_strings(item["build_pins"]))
            lines.append(f"    build requirements: {requires}" + (f" (locked: {pins})" if pins else ""))
            if item["build_error"]:
                lines.append(f"    its backend could not be asked: {item['build_error']}")
            if item.get("built_here"):
                lines.append(f"    a wheel built here does not load there: {item['built_here']}")
            packages = _strings(item["system_packages"])
            if packages and isinstance(item["package_manager"], str):
                manager = item["package_manager"]
                wanted.update(packages)
                lines.append(f"    system packages ({manager}): {' '.join(packages)}")
            if item["note"]:
                lines.append(f"    note: {item['note']}")
        if manager is not None:
            lines.append(f"  before building: {_INSTALL[manager]} {' '.join(sorted(wanted))}")
            if "python3-dev" in wanted:
                lines.append("  (python3-dev only for the distribution's Python: python images ship the headers)")
    return lines


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
