"""mirror doctor: the lint for offline deploys — a project read against the mirror, with no network.

Each check is a pure function over text already read (a :class:`ProjectFiles`) and what the mirror offers one
target (a :class:`MirrorView`); :func:`read_project_files` and :func:`mirror_view` are the thin file edges. The
hazards are the ones DESIGN.md lists from real deployments:

* ``missing-import`` (error): a module the runtime code imports (not setup.py, tests or docs) that no locked
  runtime distribution provides. Which modules a distribution provides comes from its wheels in the wheelhouse
  (``top_level.txt``, else the archive's top-level entries); the standard library (``sys.stdlib_module_names``)
  and the project's own modules are never flagged. Well-known import/distribution mismatches (``jwt`` is PyJWT)
  name the distribution to add; an import guarded by ``except ImportError`` or a ``sys.version_info`` /
  ``sys.platform`` test is only a warning.
* ``missing-from-lock`` (error): an import the mirror has a distribution for, which the project's own lock
  (uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pylock.toml, read for the target, default groups) does not
  install: a deploy from that lock lacks it whatever the mirror holds.
* ``uv-run-build`` (error): ``uv run``/``uv sync`` in a start command builds a ``[build-system]`` project, and
  the build requirements are not in the mirror.
* ``setup-requires`` (warning): setuptools fetches ``setup_requires`` itself, through pydistutils.cfg.
* ``unpinned`` (warning), ``compiles-on-target`` (warning, from :func:`~mirror.compilereport.compile_report`),
  ``uv-lock-pypi`` (warning), ``stale-venv`` (warning).
* ``bad-file`` (warning): a file doctor could not parse (a Python syntax error, invalid TOML).
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror import _toml
from mirror._records import fields_dict
from mirror.compilereport import compile_report
from mirror.errors import MirrorError
from mirror.manifest import Manifest
from mirror.sources import InvalidSource, parse_build_system
from mirror.spec import LockSource, lock_format
from mirror.targets import Target

Severity = Literal["error", "warning"]

#: Import names whose distribution is named differently, keyed by the dotted import (longest prefix wins).
DISTRIBUTION_FOR_IMPORT: dict[str, str] = {
    "jwt": "PyJWT",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "jose": "python-jose",
    "dotenv": "python-dotenv",
    "MySQLdb": "mysqlclient",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "google.protobuf": "protobuf",
    "magic": "python-magic",
    "ldap": "python-ldap",
    "Crypto": "pycryptodome",
    "OpenSSL": "pyOpenSSL",
    "serial": "pyserial",
    "usb": "pyusb",
    "psycopg2": "psycopg2-binary",
    "attr": "attrs",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "multipart": "python-multipart",
    "slugify": "python-slugify",
    "zmq": "pyzmq",
    "git": "GitPython",
    "win32api": "pywin32",
    "Levenshtein": "python-Levenshtein",
    "socks": "PySocks",
    "nacl": "PyNaCl",
    "fitz": "PyMuPDF",
    "websocket": "websocket-client",
    "pkg_resources": "setuptools",
}

#: Directories never scanned: virtual environments, VCS metadata, build output, caches.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        ".env",
        ".tox",
        ".nox",
        "build",
        "dist",
        "node_modules",
        "__pycache__",
        "site-packages",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "wheelhouse",
    }
)
_MAX_BYTES = 2_000_000  # bigger files are data, not code or configuration
_UV_RUN = re.compile(r"\buv\s+(?:run|sync)\b")
_STALE_VENV = (
    re.compile(r"\[\[?\s*!\s+-[de]\s+[\"']?[\w./${}-]*venv"),  # [ ! -d venv ], [[ ! -d "$APP/.venv" ]]
    re.compile(r"\btest\s+!\s+-[de]\s+[\"']?[\w./${}-]*venv"),
    re.compile(r"\[\[?\s+-[de]\s+[\"']?[\w./${}-]*venv[\"']?\s*\]\]?\s*\|\|"),  # [ -d venv ] || python -m venv
    re.compile(r"(?i)\bif\s+not\s+exist\s+[\"']?[\w./\\%-]*venv"),  # cmd.exe
    re.compile(r"(?i)if\s*\(\s*-not\s*\(\s*Test-Path\s+[\"']?[\w./\\$-]*venv"),  # PowerShell
)
_PYPI_LOCK = re.compile(r"registry\s*=\s*\"https://pypi\.org/simple/?\"|files\.pythonhosted\.org")


class DoctorError(MirrorError):
    """The project directory cannot be read, or the mirror offers no target to check against."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One hazard, with where it is (``path`` relative to the project, 1-based ``line``) and what to do."""

    severity: Severity
    code: str
    message: str
    path: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def to_dict(self) -> dict[str, object]:
        return {**fields_dict(self, "severity", "code", "path", "line"), "location": self.location or None,
                "message": self.message}  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """Every finding for one project and one target: errors first, then by location."""

    project: str
    target: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def to_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "target": self.target,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }

    def render(self) -> list[str]:
        """Lines for a person: errors, then warnings, then a count."""
        lines = []
        for finding in self.findings:
            where = f" {finding.location}:" if finding.location else ""
            lines.append(f"{finding.severity}[{finding.code}]{where} {finding.message}")
        errors, warnings = len(self.errors), len(self.warnings)
        summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
        lines.append(f"{self.project} for {self.target}: {summary}" if self.findings else f"{summary}: no hazards")
        return lines


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectFiles:
    """The project's files doctor reads: path relative to the project (POSIX) → text."""

    texts: Mapping[str, str]
    own_modules: frozenset[str] = frozenset()  # top-level packages and modules of the project (also under src/)

    def matching(self, predicate: Iterable[str] | None = None) -> list[str]:
        return sorted(self.texts) if predicate is None else sorted(set(predicate) & set(self.texts))


@dataclass(frozen=True, kw_only=True, slots=True)
class MirrorView:
    """What the mirror offers one target."""

    target: str
    modules: Mapping[str, str]  # top-level import name → distribution providing it (runtime packages)
    available: Mapping[str, str]  # normalized name → version, every package of the target whose files are here
    compiles: Sequence[Mapping[str, object]] = field(default_factory=tuple)  # compile_report entries
    platform: Target | None = None  # the target itself: a project's own lock is read for it


# -- the file edges --------------------------------------------------------------------------------------------


def _wanted(relpath: str) -> bool:
    name = PurePosixPath(relpath).name
    lowered = name.lower()
    return (
        lowered.endswith((".py", ".sh", ".bash", ".conf", ".bat", ".cmd", ".ps1", ".yml", ".yaml"))
        or name in ("pyproject.toml", "setup.cfg", "Procfile", "Makefile")
        or lock_format(PurePosixPath(name)) is not None
        or lowered.startswith(("dockerfile", "containerfile"))
        or lowered.endswith(".dockerfile")
        or (lowered.startswith("requirements") and lowered.endswith((".txt", ".in")))
    )


def _skipped(directory: Path) -> bool:
    name = directory.name
    return name in SKIPPED_DIRS or name.endswith(".egg-info") or (directory / "pyvenv.cfg").exists()


def _walk(directory: Path, root: Path) -> Iterator[Path]:
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise DoctorError(f"{directory}: cannot read: {exc}") from None
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if not _skipped(entry):
                yield from _walk(entry, root)
        elif entry.is_file():
            yield entry


def _top_level_modules(directory: Path) -> set[str]:
    names: set[str] = set()
    if not directory.is_dir():
        return names
    for entry in directory.iterdir():
        if entry.is_file() and entry.suffix == ".py":
            names.add(entry.stem)
        elif (
            entry.is_dir()
            and entry.name != "src"
            and entry.name.isidentifier()
            and not _skipped(entry)
            and (any(entry.glob("*.py")) or any(entry.glob("*/__init__.py")))
        ):
            names.add(entry.name)
    return names


def read_project_files(project: Path) -> ProjectFiles:
    """Read the files doctor looks at under ``project``, skipping venvs, VCS and build directories."""
    if not project.is_dir():
        raise DoctorError(f"{project}: not a directory")
    texts = {}
    for path in _walk(project, project):
        relpath = path.relative_to(project).as_posix()
        if not _wanted(relpath):
            continue
        try:
            if path.stat().st_size > _MAX_BYTES:
                continue
            texts[relpath] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DoctorError(f"{path}: cannot read: {exc}") from None
    own = _top_level_modules(project) | _top_level_modules(project / "src")
    return ProjectFiles(texts=texts, own_modules=frozenset(own))


def wheel_modules(names: Sequence[str], top_level: str | None) -> set[str]:
    """The top-level import names a wheel provides: its ``top_level.txt``, else its archive's top-level entries."""
    if top_level is not None:
        return {line.strip().split("/")[0] for line in top_level.splitlines() if line.strip()}
    modules = set()
    for name in names:
        parts = name.split("/")
        if parts[0].endswith(".data") and len(parts) > 3 and parts[1] in ("purelib", "platlib"):
            parts = parts[2:]
        elif parts[0].endswith((".dist-info", ".data")):
            continue
        first = parts[0]
        if len(parts) > 1:
            if first.isidentifier():
                modules.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            stem = first.split(".")[0]
            if stem.isidentifier():
                modules.add(stem)
    return modules


def _read_wheel(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            tops = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/top_level.txt")]
            top_level = archive.read(tops[0]).decode("utf-8", "replace") if tops else None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DoctorError(f"{path}: cannot read the wheel: {exc}") from None
    return wheel_modules(names, top_level)


def mirror_view(manifest: Manifest, target: str, files_dir: Path) -> MirrorView:
    """What ``manifest`` offers ``target``, with module names read from the wheels under ``files_dir``."""
    entry = manifest.target(target)
    modules: dict[str, str] = {}
    available: dict[str, str] = {}
    for package in entry.packages:
        present = [f for f in package.files if (files_dir / manifest.files[f].relpath).is_file()]
        if present:
            available[str(canonicalize_name(package.name))] = package.version
        if package.role != "runtime":
            continue
        wheels = [f for f in present if manifest.files[f].kind == "wheel"]
        provided = set()
        for filename in wheels:
            provided |= _read_wheel(files_dir / manifest.files[filename].relpath)
        if not wheels:  # only an sdist (or nothing fetched yet): the usual convention
            provided.add(str(canonicalize_name(package.name)).replace("-", "_"))
        for module in provided:
            modules.setdefault(module, package.name)
    report = compile_report(manifest, built={}).get(target, [])
    return MirrorView(
        target=target, modules=modules, available=available, compiles=tuple(report), platform=entry.target
    )


# -- the checks (pure) -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportRef:
    """One absolute import in a file: the dotted name and its 1-based line."""

    module: str
    line: int
    guarded: bool  # inside ``try: … except ImportError``, ``if TYPE_CHECKING:`` or ``if sys.version_info …``


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type
    names: list[ast.expr] = [] if kinds is None else list(kinds.elts) if isinstance(kinds, ast.Tuple) else [kinds]
    return kinds is None or any(
        isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError", "Exception") for n in names
    )


def find_imports(text: str, label: str) -> list[ImportRef]:
    """The absolute imports of Python source ``text``; raises :class:`DoctorError` on a syntax error."""
    try:
        tree = ast.parse(text, filename=label)
    except (SyntaxError, ValueError) as exc:
        raise DoctorError(f"{label}: not valid Python: {exc}") from None
    found: list[ImportRef] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(ImportRef(module=a.name, line=node.lineno, guarded=guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(ImportRef(module=node.module, line=node.lineno, guarded=guarded))
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for child in node.body:
                visit(child, True)
            for other in (*node.handlers, *node.orelse, *node.finalbody):
                visit(other, guarded)
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.If) and re.search(r"\bsys\.(version_info|platform)\b", ast.unparse(node.test)):
            for child in (*node.body, *node.orelse):  # one branch does not run on the target
                visit(child, True)
            return
        for sub in ast.iter_child_nodes(node):
            visit(sub, guarded)

    visit(tree, False)
    return found


def suggest_distribution(module: str) -> str | None:
    """The distribution to add for a well-known import name that differs from it (longest dotted prefix)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = DISTRIBUTION_FOR_IMPORT.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def _sibling_modules(files: ProjectFiles, relpath: str) -> set[str]:
    """Modules next to a script (``python app/main.py`` puts ``app/`` on sys.path)."""
    parent = PurePosixPath(relpath).parent
    names = set()
    for other in files.texts:
        path = PurePosixPath(other)
        if path.parent == parent and path.suffix == ".py":
            names.add(path.stem)
        elif path.parent.parent == parent and path.name == "__init__.py":
            names.add(path.parent.name)
    return names


#: Python files whose imports are not the runtime's: build scripts, tests, documentation, task runners.
_NOT_RUNTIME_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "tasks.py"})
_NOT_RUNTIME_DIRS = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "benchmarks"})


def _runtime_source(relpath: str) -> bool:
    path = PurePosixPath(relpath)
    return (
        path.suffix == ".py"
        and path.name not in _NOT_RUNTIME_FILES
        and not path.name.startswith("test_")
        and not path.stem.endswith("_test")
        and not _NOT_RUNTIME_DIRS & set(path.parts[:-1])
    )


def check_imports(files: ProjectFiles, mirror: MirrorView) -> list[Finding]:
    """``missing-import``: imports no locked runtime distribution, the stdlib or the project provides."""
    findings = []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for relpath in files.matching():
        if not _runtime_source(relpath):
            continue
        try:
            imports = find_imports(files.texts[relpath], relpath)
        except DoctorError as exc:
            findings.append(Finding(severity="warning", code="bad-file", message=str(exc), path=relpath))
            continue
        local: set[str] | None = None
        reported: set[str] = set()
        for ref in imports:
            top = ref.module.split(".")[0]
            if top in stdlib or top in files.own_modules or top in mirror.modules or top in reported:
                continue
            if local is None:
                local = _sibling_modules(files, relpath)
            if top in local:
                continue
            reported.add(top)
            suggestion = suggest_distribution(ref.module)
            if suggestion is not None and canonicalize_name(suggestion) in mirror.available:
                advice = f"{suggestion} is in the mirror only as a build requirement: add {suggestion} to the runtime"
            elif suggestion is not None:
                advice = f"add {suggestion} to the requirements (the distribution providing {top!r})"
            else:
                advice = "add the distribution providing it to the requirements and re-lock"
            guarded = " (guarded by an ImportError fallback)" if ref.guarded else ""
            findings.append(
                Finding(
                    severity="warning" if ref.guarded else "error",
                    code="missing-import",
                    message=f"import {ref.module!r}: no locked distribution for {mirror.target} provides "
                    f"{top!r}{guarded}; {advice}",
                    path=relpath,
                    line=ref.line,
                )
            )
    return findings


def _is_command_file(relpath: str) -> bool:
    path = PurePosixPath(relpath)
    lowered = path.name.lower()
    return (
        path.name in ("Procfile", "Makefile", "app_desc.yaml")
        or lowered.endswith((".conf", ".sh", ".bash", ".dockerfile"))
        or lowered.startswith(("dockerfile", "containerfile"))
        or (lowered.endswith((".yml", ".yaml")) and ("compose" in lowered or lowered.startswith("app_desc")))
    )


def _toml_data(files: ProjectFiles, relpath: str) -> tuple[dict[str, object] | None, Finding | None]:
    try:
        return _toml.loads(files.texts[relpath]), None
    except _toml.TOMLDecodeError as exc:
        return None, Finding(severity="warning", code="bad-file", message=f"not valid TOML: {exc}", path=relpath)


def _uv_package(data: Mapping[str, object]) -> object:
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    return uv.get("package") if isinstance(uv, dict) else None


def check_uv_run(files: ProjectFiles, mirror: MirrorView) -> list[Finding]:
    """``uv-run-build``: ``uv run``/``uv sync`` builds a ``[build-system]`` project whose requirements are missing."""
    if "pyproject.toml" not in files.texts:
        return []
    data, bad = _toml_data(files, "pyproject.toml")
    if data is None:
        return [bad] if bad else []
    try:
        build_system = parse_build_system(data, label="pyproject.toml")
    except InvalidSource as exc:
        return [Finding(severity="warning", code="bad-file", message=str(exc), path="pyproject.toml")]
    if not build_system.declared or _uv_package(data) is False:
        return []
    missing = []
    for requirement in build_system.requires:
        version = mirror.available.get(str(canonicalize_name(requirement.name)))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(str(requirement))
    if not missing:
        return []
    findings = []
    for relpath in files.matching():
        if not _is_command_file(relpath):
            continue
        for number, line in enumerate(files.texts[relpath].splitlines(), 1):
            match = _UV_RUN.search(line)
            if match is None or line.lstrip().startswith("#"):
                continue
            findings.append(
                Finding(
                    severity="error",
                    code="uv-run-build",
                    message=f"'{match.group(0)}' builds the project (pyproject.toml has [build-system]), and the "
                    f"mirror lacks its build requirements for {mirror.target}: {', '.join(missing)}; add the "
                    "project to mirror.toml's sources (its build requirements are locked too), or set "
                    "[tool.uv] package = false when the project is not a package, or start "
                    ".venv/bin/<tool> directly",
                    path=relpath,
                    line=number,
                )
            )
    return findings


def _setup_py_requires(text: str, label: str) -> list[tuple[int, list[str]]]:
    try:
        tree = ast.parse(text, filename=label)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "setup_requires":
                    try:
                        value = ast.literal_eval(keyword.value)
                    except ValueError:
                        value = ["(computed)"]
                    items = [value] if isinstance(value, str) else [str(v) for v in value] if value else []
                    if items:
                        found.append((keyword.value.lineno, items))
    return found


def _setup_cfg_requires(text: str) -> list[tuple[int, list[str]]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    value = parser.get("options", "setup_requires", fallback="")
    items = [item.strip() for item in re.split(r"[\n;]", value) if item.strip()]
    if not items:
        return []
    line = next((n for n, t in enumerate(text.splitlines(), 1) if t.strip().startswith("setup_requires")), None)
    return [(line or 1, items)]


def check_setup_requires(files: ProjectFiles) -> list[Finding]:
    """``setup-requires``: setuptools fetches these itself, configured by pydistutils.cfg, not pip.conf."""
    findings = []
    for relpath in files.matching():
        name = PurePosixPath(relpath).name
        if name == "setup.py":
            found = _setup_py_requires(files.texts[relpath], relpath)
        elif name == "setup.cfg":
            found = _setup_cfg_requires(files.texts[relpath])
        else:
            continue
        for line, items in found:
            findings.append(
                Finding(
                    severity="warning",
                    code="setup-requires",
                    message=f"setup_requires {', '.join(items)}: setuptools fetches these itself through "
                    "easy_install, which reads pydistutils.cfg and ignores pip.conf and uv.toml; deploy the "
                    "pydistutils.cfg written by 'mirror config'",
                    path=relpath,
                    line=line,
                )
            )
    return findings


def _requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical, pending = (pending + line).strip(), ""
        if logical:
            yield start, logical


def check_unpinned(files: ProjectFiles) -> list[Finding]:
    """``unpinned``: requirements*.txt lines without ``==`` resolve differently on the next deploy."""
    findings = []
    for relpath in files.matching():
        name = PurePosixPath(relpath).name.lower()
        if not (name.startswith("requirements") and name.endswith(".txt")):
            continue
        for line, text in _requirement_lines(files.texts[relpath]):
            if text.startswith("-"):
                continue  # options: -r, -c, -e, --hash alone, --index-url
            try:
                requirement = Requirement(text.split(" --")[0].split(";")[0].strip())
            except InvalidRequirement:
                continue  # a URL or a path: not a pin to check here
            if requirement.url is not None or any(s.operator in ("==", "===") for s in requirement.specifier):
                continue
            findings.append(
                Finding(
                    severity="warning",
                    code="unpinned",
                    message=f"{requirement.name}{requirement.specifier}: not pinned with '==' — each deploy may "
                    "resolve another version than the mirror holds; install from the lock (lockfiles/<target>.txt "
                    "with --require-hashes) or pin it",
                    path=relpath,
                    line=line,
                )
            )
    return findings


def check_compiles(mirror: MirrorView) -> list[Finding]:
    """``compiles-on-target``: packages the target builds from an sdist, with the system packages it needs."""
    findings = []
    for item in mirror.compiles:
        packages = cast(list[str], item.get("system_packages") or [])
        needs = f"; system packages ({item['package_manager']}): {' '.join(packages)}" if packages else ""
        note = f"; {item['note']}" if item.get("note") else ""
        findings.append(
            Finding(
                severity="warning",
                code="compiles-on-target",
                message=f"{item['name']} {item['version']} is built from {item['sdist']} on {mirror.target} "
                f"(compiles: {item['compiles']}: {item['reason']}){needs}{note}",
            )
        )
    return findings


def check_uv_lock(files: ProjectFiles) -> list[Finding]:
    """``uv-lock-pypi``: ``uv sync --frozen`` downloads from the URLs in uv.lock, whatever the index setting."""
    findings = []
    for relpath in files.matching():
        if PurePosixPath(relpath).name != "uv.lock":
            continue
        hits = [n for n, line in enumerate(files.texts[relpath].splitlines(), 1) if _PYPI_LOCK.search(line)]
        if hits:
            findings.append(
                Finding(
                    severity="warning",
                    code="uv-lock-pypi",
                    message=f"{len(hits)} line{'s' if len(hits) != 1 else ''} point at PyPI, which "
                    "'uv sync --frozen' uses whatever the index setting; run 'mirror relocate-uv-lock' to point "
                    "them at the mirror",
                    path=relpath,
                    line=hits[0],
                )
            )
    return findings


def locked_names(relpath: str, text: str, target: Target) -> set[str] | None:
    """The distributions the lock at ``relpath`` installs on ``target`` (default groups); None if not a lock."""
    from mirror.sources import lock_inputs_of_text

    found = lock_format(Path(relpath))
    if found is None:
        return None
    inputs = lock_inputs_of_text(text, LockSource(path=Path(relpath), format=found), target, label=relpath)
    return {str(canonicalize_name(root.requirement.name)) for root in inputs.requirements}


def check_lock_imports(files: ProjectFiles, mirror: MirrorView) -> list[Finding]:
    """``missing-from-lock``: an import the mirror has a distribution for, which the project's own lock
    (uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pylock.toml) does not install: the deploy from that lock lacks
    it, whatever the mirror holds."""
    if mirror.platform is None:
        return []
    locks: dict[str, set[str]] = {}
    findings = []
    for relpath in files.matching():
        try:
            names = locked_names(relpath, files.texts[relpath], mirror.platform)
        except MirrorError as exc:
            if PurePosixPath(relpath).name != "uv.lock":  # a uv.lock is also read as text (uv-lock-pypi)
                findings.append(Finding(severity="warning", code="bad-file", message=str(exc), path=relpath))
            continue
        if names is not None and PurePosixPath(relpath).parent == PurePosixPath("."):
            locks[relpath] = names
    for lock, names in sorted(locks.items()):
        reported: set[str] = set()
        for relpath in files.matching():
            if not _runtime_source(relpath):
                continue
            try:
                imports = find_imports(files.texts[relpath], relpath)
            except DoctorError:
                continue  # check_imports reports it
            for ref in imports:
                top = ref.module.split(".")[0]
                distribution = mirror.modules.get(top)
                if distribution is None or str(canonicalize_name(distribution)) in names or top in reported:
                    continue
                reported.add(top)
                findings.append(
                    Finding(
                        severity="warning" if ref.guarded else "error",
                        code="missing-from-lock",
                        message=f"import {ref.module!r}: {distribution} provides {top!r} in the mirror, but {lock}"
                        f" does not install it on {mirror.target}; add {distribution} to the project's dependencies"
                        " and re-lock",
                        path=relpath,
                        line=ref.line,
                    )
                )
    return findings


def check_stale_venv(files: ProjectFiles) -> list[Finding]:
    """``stale-venv``: a deploy script that keeps an existing venv hides requirements missing from the lock."""
    findings = []
    for relpath in files.matching():
        lowered = relpath.lower()
        if not (_is_command_file(relpath) or lowered.endswith((".bat", ".cmd", ".ps1"))):
            continue
        for number, line in enumerate(files.texts[relpath].splitlines(), 1):
            if line.lstrip().startswith(("#", "REM ", "rem ")) or not any(p.search(line) for p in _STALE_VENV):
                continue
            findings.append(
                Finding(
                    severity="warning",
                    code="stale-venv",
                    message="the venv is only created when missing, so one kept from an earlier deploy hides "
                    "requirements the lock lacks until the next clean deploy; recreate it on every deploy "
                    "('python -m venv --clear venv') and install from the lock",
                    path=relpath,
                    line=number,
                )
            )
    return findings


def diagnose(files: ProjectFiles, mirror: MirrorView, *, project: str = ".") -> Report:
    """Every check over ``files`` against ``mirror``; findings sorted errors first, then by location."""
    findings = [
        *check_imports(files, mirror),
        *check_uv_run(files, mirror),
        *check_setup_requires(files),
        *check_unpinned(files),
        *check_compiles(mirror),
        *check_uv_lock(files),
        *check_lock_imports(files, mirror),
        *check_stale_venv(files),
    ]
    findings.sort(key=lambda f: (f.severity != "error", f.path or "", f.line or 0, f.code, f.message))
    return Report(project=project, target=mirror.target, findings=tuple(findings))


def choose_target(manifest: Manifest, name: str | None, host: str) -> str:
    """``name`` if given; else the only target, else the host's target; else a :class:`DoctorError`."""
    if name is not None:
        return manifest.target(name).name
    names = [t.name for t in manifest.targets]
    if len(names) == 1:
        return names[0]
    if host in names:
        return host
    raise DoctorError(f"the mirror has several targets ({', '.join(names)}): choose one with --target")
