"""A tiny PEP 517 build backend for offline-mirror's test fixtures. Standard library only.

It builds the fixture sdists of ``tests/fixtures/dists.py`` into ``py3-none-any`` wheels, and the
fixture itself uses :func:`write_wheel`, :func:`write_sdist` and :func:`core_metadata` so that
wheels and sdists are written by one implementation.

The backend reads ``pyproject.toml``:

- ``[project]``: ``name``, ``version``, ``dependencies``, ``requires-python``;
- ``[tool.om-backend]``: ``dynamic-requires`` (returned by ``get_requires_for_build_wheel``: the
  PEP 517 dynamic build requirement case), ``import-check`` (modules that must import while the
  wheel is built: the build fails loudly otherwise, proving the build environment was complete),
  ``package`` (the import package to ship; default: the project name with ``-`` as ``_``).

The package is taken from ``src/`` when that directory exists, else from the top-level directory
named after the import package. It must stay compatible with Python >= 3.8: ``tomllib`` is used
when present, otherwise a small parser reads the subset of TOML that the fixture writes.
"""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import importlib
import io
import os
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "build_sdist",
    "build_wheel",
    "core_metadata",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
    "read_pyproject",
    "wheel_name",
    "write_sdist",
    "write_wheel",
]

# Every archive member gets this timestamp, so that builds are reproducible byte for byte.
ZIP_DATE_TIME = (2020, 1, 1, 0, 0, 0)
TAR_MTIME = 1577836800  # 2020-01-01T00:00:00Z
GENERATOR = "om_backend 1.0"


class BackendError(Exception):
    """Raised for any build failure; the message says what and where."""


# --- names -------------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def escaped(name: str) -> str:
    """The name as it appears in wheel and sdist file names (PEP 427 / PEP 625)."""
    return normalize(name).replace("-", "_")


def wheel_name(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{escaped(name)}-{version}-{tag}.whl"


def sdist_name(name: str, version: str) -> str:
    return f"{escaped(name)}-{version}.tar.gz"


def expand_tag(tag: str) -> list[str]:
    """``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`` -> the two tags it stands for."""
    parts = tag.split("-")
    if len(parts) != 3:
        raise BackendError(f"wheel tag {tag!r}: expected python-abi-platform")
    pythons, abis, platforms = (p.split(".") for p in parts)
    return [f"{p}-{a}-{x}" for p in pythons for a in abis for x in platforms]


# --- metadata ----------------------------------------------------------------------------------


def core_metadata(
    name: str,
    version: str,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    summary: str | None = None,
    metadata_version: str = "2.1",
    headers: Iterable[str] = (),
) -> str:
    """Core metadata (METADATA / PKG-INFO) text, in the field order of the specification; ``headers`` are more
    ``Field: value`` lines (License-Expression, Classifier, ...), after Requires-Dist."""
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {version}",
    ]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {r}" for r in requires_dist)
    lines.extend(headers)
    return "\n".join(lines) + "\n\n"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _wheel_file(tag: str, root_is_purelib: bool) -> str:
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: {GENERATOR}",
        "Root-Is-Purelib: {}".format("true" if root_is_purelib else "false"),
    ]
    lines.extend(f"Tag: {t}" for t in expand_tag(tag))
    return "\n".join(lines) + "\n"


def _dist_info_files(
    name: str,
    version: str,
    metadata: str,
    tag: str,
    root_is_purelib: bool,
    extra: Mapping[str, bytes],
) -> dict[str, bytes]:
    dist_info = f"{escaped(name)}-{version}.dist-info"
    files = {
        dist_info + "/METADATA": metadata.encode("utf-8"),
        dist_info + "/WHEEL": _wheel_file(tag, root_is_purelib).encode("utf-8"),
    }
    for path, data in extra.items():
        files[dist_info + "/" + path] = data
    return files


# --- archives ----------------------------------------------------------------------------------


def write_wheel(
    wheel_directory: str,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    metadata: str,
    tag: str = "py3-none-any",
    root_is_purelib: bool = True,
    dist_info_extra: Mapping[str, bytes] | None = None,
) -> str:
    """Write a wheel of ``files`` (posix path -> bytes) and return its file name.

    ``*.dist-info/METADATA`` is ``metadata``, ``WHEEL`` lists every tag that ``tag`` stands for,
    ``dist_info_extra`` adds files such as ``entry_points.txt``, and ``RECORD`` holds the sha256
    (urlsafe base64, unpadded) and size of every other member.
    """
    filename = wheel_name(name, version, tag)
    dist_info = _dist_info_files(name, version, metadata, tag, root_is_purelib, dist_info_extra or {})
    members = sorted(files.items()) + sorted(dist_info.items())
    record_path = f"{escaped(name)}-{version}.dist-info/RECORD"
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in members]
    record.append(f"{record_path},,")
    members.append((record_path, ("\n".join(record) + "\n").encode("utf-8")))
    path = os.path.join(wheel_directory, filename)
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members:
            info = zipfile.ZipInfo(member, date_time=ZIP_DATE_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, path)
    return filename


def write_sdist(
    sdist_directory: str,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    pkg_info: str,
) -> str:
    """Write ``<name>-<version>.tar.gz`` holding ``PKG-INFO`` and ``files`` under one top folder."""
    filename = sdist_name(name, version)
    root = f"{escaped(name)}-{version}"
    members = dict(files)
    members["PKG-INFO"] = pkg_info.encode("utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{root}/{member}")
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    path = os.path.join(sdist_directory, filename)
    tmp = path + ".part"
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buffer.getvalue())
    os.replace(tmp, path)
    return filename


# --- pyproject.toml ----------------------------------------------------------------------------


def _parse_toml_subset(text: str) -> dict[str, Any]:
    """Parse the TOML subset the fixture writes: ``[a.b]`` tables, ``key = "str"``, ``true``/``false`` and
    one-line arrays of strings. Used only where ``tomllib`` is missing (Python < 3.11)."""
    data: dict[str, Any] = {}
    table = data
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            table = data
            for key in line[1:-1].strip().split("."):
                table = table.setdefault(key.strip().strip('"'), {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BackendError(f"pyproject.toml:{number}: cannot parse {raw!r}")
        value = value.strip()
        try:
            literal = {"true": True, "false": False}.get(value)
            table[key.strip().strip('"')] = literal if literal is not None else ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise BackendError(f"pyproject.toml:{number}: cannot parse {raw!r}") from None
    return data


def read_pyproject(source_dir: str = ".") -> dict[str, Any]:
    path = os.path.join(source_dir, "pyproject.toml")
    with open(path, "rb") as f:
        raw = f.read()
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(raw.decode("utf-8"))
    return _parse_toml_subset(raw.decode("utf-8"))


class _Project:
    def __init__(self, pyproject: Mapping[str, Any]) -> None:
        project = pyproject.get("project")
        if not isinstance(project, dict):
            raise BackendError("pyproject.toml: [project] table is missing")
        try:
            self.name = str(project["name"])
            self.version = str(project["version"])
        except KeyError as e:
            raise BackendError(f"pyproject.toml: project.{e.args[0]} is missing") from None
        self.dependencies = [str(d) for d in project.get("dependencies", [])]
        requires_python = project.get("requires-python")
        self.requires_python = None if requires_python is None else str(requires_python)
        config = pyproject.get("tool", {}).get("om-backend", {})
        self.dynamic_requires = [str(r) for r in config.get("dynamic-requires", [])]
        self.import_check = [str(m) for m in config.get("import-check", [])]
        self.package = str(config.get("package", escaped(self.name)))

    def metadata(self) -> str:
        return core_metadata(self.name, self.version, self.dependencies, self.requires_python)


def _load(source_dir: str = ".") -> _Project:
    return _Project(read_pyproject(source_dir))


def _collect(base: str, prefix: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            if filename.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, filename)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            with open(full, "rb") as f:
                files[prefix + rel] = f.read()
    return files


def _sources(project: _Project, source_dir: str = ".") -> tuple[dict[str, bytes], str]:
    """The files to ship in the wheel, and where they came from."""
    src = os.path.join(source_dir, "src")
    if os.path.isdir(src):
        return _collect(src, ""), "src"
    package = os.path.join(source_dir, project.package)
    if os.path.isdir(package):
        return _collect(package, project.package + "/"), project.package
    module = package + ".py"
    if os.path.isfile(module):
        with open(module, "rb") as f:
            return {project.package + ".py": f.read()}, project.package + ".py"
    raise BackendError(
        f"{project.name}: no src/ directory, no {project.package}/ package and no {project.package}.py module"
    )


def _check_imports(project: _Project) -> None:
    for module in project.import_check:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise BackendError(
                f"{project.name}: [tool.om-backend] import-check: cannot import {module!r} in the build "
                f"environment: {e}"
            ) from e


# --- PEP 517 hooks -----------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return list(_load().dynamic_requires)


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    project = _load()
    files = _dist_info_files(project.name, project.version, project.metadata(), "py3-none-any", True, {})
    dist_info = ""
    for path, data in files.items():
        dist_info, _, member = path.partition("/")
        target = os.path.join(metadata_directory, dist_info)
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, member), "wb") as f:
            f.write(data)
    return dist_info


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    project = _load()
    _check_imports(project)
    files, _ = _sources(project)
    return write_wheel(wheel_directory, project.name, project.version, files, project.metadata())


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    project = _load()
    files, origin = _sources(project)
    if origin == "src":
        files = {"src/" + p: d for p, d in files.items()}
    with open("pyproject.toml", "rb") as f:
        files["pyproject.toml"] = f.read()
    pkg_info = core_metadata(
        project.name,
        project.version,
        project.dependencies,
        project.requires_python,
        metadata_version="2.2",
    )
    return write_sdist(sdist_directory, project.name, project.version, files, pkg_info)
