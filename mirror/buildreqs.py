"""What building a distribution needs: static ``build-system.requires`` plus the PEP 517 dynamic requirements.

For an sdist or a project directory this reads ``[build-system]`` (pip's legacy default when absent: setuptools
with the ``__legacy__`` backend), then asks the backend itself — ``get_requires_for_build_wheel`` through
``pyproject_hooks`` — in a fresh environment whose static requirements come from the upstream index only.
That is where setuptools reports ``setup_requires`` and where backends add what they need at build time.
Setuptools-built distributions also get ``wheel``: pip 23.x (what a fresh Python 3.11 venv bundles) builds them
with ``setup.py bdist_wheel``.

A backend that fails to answer (a ``setup.py`` that needs a system library to even run) is not fatal: the static
requirements are kept and the failure is recorded, so the lock can say what may still be missing.
Results for an sdist are cached by its sha256.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror import _atomic, _toml
from mirror._process import Runner, clean_environment, log_tail, run_command
from mirror.errors import MirrorError
from mirror.resolve import condense
from mirror.sources import BuildSystem, parse_build_system

log = logging.getLogger(__name__)

# pyproject_hooks re-raises the backend's own warnings (deprecated classifiers and the like) in this process;
# they are about the package being inspected, not about mirroring it.
try:
    from pyproject_hooks import BuildBackendWarning

    warnings.filterwarnings("ignore", category=BuildBackendWarning)
except ImportError:  # pyproject_hooks < 1.1 does not re-raise them
    pass

HOOK_TIMEOUT = 600
CACHE_VERSION = 1


class BuildRequirementsError(MirrorError):
    """A distribution's build system cannot be read."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildRequirements:
    """Everything one distribution's isolated build installs."""

    static: tuple[str, ...]
    dynamic: tuple[str, ...] | None  # None when the backend could not be asked
    backend: str
    declared: bool = True
    error: str | None = None

    @property
    def requires(self) -> tuple[str, ...]:
        """Static + dynamic, plus ``wheel`` for setuptools builds; duplicates removed, order kept."""
        out: list[str] = []
        names: set[str] = set()
        for text in (*self.static, *(self.dynamic or ())):
            if text not in out:
                out.append(text)
                names.add(_name(text))
        if self.backend.split(":")[0] == "setuptools.build_meta" and "wheel" not in names:
            out.append("wheel")
        return tuple(out)

    def to_dict(self) -> dict[str, object]:
        return {
            "static": list(self.static),
            "dynamic": None if self.dynamic is None else list(self.dynamic),
            "backend": self.backend,
            "declared": self.declared,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BuildRequirements:
        static = data["static"]
        dynamic = data["dynamic"]
        assert isinstance(static, list) and (dynamic is None or isinstance(dynamic, list))
        return cls(
            static=tuple(str(s) for s in static),
            dynamic=None if dynamic is None else tuple(str(d) for d in dynamic),
            backend=str(data["backend"]),
            declared=bool(data["declared"]),
            error=None if data.get("error") is None else str(data["error"]),
        )


def _name(requirement: str) -> str:
    try:
        return str(canonicalize_name(Requirement(requirement).name))
    except InvalidRequirement:
        return requirement


def build_system_of(pyproject: str | None, *, label: str) -> BuildSystem:
    """The ``[build-system]`` of pyproject.toml text; pip's legacy default when there is no pyproject.toml."""
    if pyproject is None:
        return BuildSystem.legacy()
    try:
        data = _toml.loads(pyproject)
    except _toml.TOMLDecodeError as exc:
        raise BuildRequirementsError(f"{label}: pyproject.toml is not valid TOML: {exc}") from None
    return parse_build_system(data, label=label)


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def read_sdist_pyproject(sdist: Path) -> str | None:
    """The text of the sdist's top-level ``pyproject.toml``, or ``None`` when it has none."""
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                for name in archive.namelist():
                    if _safe_member(name) and len(PurePosixPath(name).parts) == 2 and name.endswith("/pyproject.toml"):
                        return archive.read(name).decode("utf-8")
            return None
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) == 2 and parts[1] == "pyproject.toml" and _safe_member(member.name):
                    handle = tar.extractfile(member)
                    return handle.read().decode("utf-8") if handle else None
        return None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise BuildRequirementsError(f"{sdist.name}: cannot read the sdist: {exc}") from None


def unpack_sdist(sdist: Path, into: Path) -> Path:
    """Extract an sdist safely (no absolute paths, ``..`` or links out) and return its project directory."""
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                for name in archive.namelist():
                    if not _safe_member(name):
                        raise BuildRequirementsError(f"{sdist.name}: unsafe member {name!r}")
                archive.extractall(into)
        else:
            with tarfile.open(sdist) as tar:
                tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise BuildRequirementsError(f"{sdist.name}: cannot unpack the sdist: {exc}") from None
    entries = [p for p in into.iterdir() if p.is_dir()]
    if len(entries) == 1:
        return entries[0]
    return into


class BuildRequirementsFinder:
    """Finds build requirements of sdists and projects, asking backends in environments fed from one index."""

    def __init__(
        self,
        *,
        index_url: str,
        cache_dir: Path | None = None,
        runner: Runner = run_command,
        uv: str | None = None,
        python: str = sys.executable,
    ) -> None:
        if uv is None:
            from uv import find_uv_bin

            uv = find_uv_bin()
        self.index_url = index_url
        self.cache_dir = cache_dir
        self.runner = runner
        self.uv = uv
        self.python = python

    def for_sdist(self, sdist: Path, *, sha256: str) -> BuildRequirements:
        """Build requirements of an sdist (cached by its sha256)."""
        cache = self.cache_dir / f"{sha256}.json" if self.cache_dir else None
        if cache is not None and cache.is_file():
            try:
                data = json.loads(cache.read_text(encoding="utf-8"))
                if data.get("version") == CACHE_VERSION:
                    return BuildRequirements.from_dict(data["requirements"])
            except (ValueError, KeyError, AssertionError):
                log.warning("ignoring a damaged cache entry %s", cache)
        build_system = build_system_of(read_sdist_pyproject(sdist), label=sdist.name)
        with tempfile.TemporaryDirectory(prefix="mirror-sdist-") as tmp:
            source = unpack_sdist(sdist, Path(tmp))
            result = self._ask_backend(source, build_system, label=sdist.name)
        if cache is not None:
            payload = {"version": CACHE_VERSION, "sdist": sdist.name, "requirements": result.to_dict()}
            _atomic.write_text(cache, json.dumps(payload, indent=1, sort_keys=True) + "\n")
        return result

    def for_project(self, path: Path, build_system: BuildSystem) -> BuildRequirements:
        """Build requirements of a project directory (its pyproject.toml and/or setup.py)."""
        return self._ask_backend(path, build_system, label=path.name or str(path))

    def _ask_backend(self, source: Path, build_system: BuildSystem, *, label: str) -> BuildRequirements:
        static = tuple(str(r) for r in build_system.requires)
        backend = build_system.effective_backend
        try:
            dynamic = self._dynamic(source, build_system)
        except _HookFailed as exc:
            log.warning("%s: the build backend could not report its requirements: %s", label, exc)
            return BuildRequirements(
                static=static,
                dynamic=None,
                backend=backend,
                declared=build_system.declared,
                error=str(exc),
            )
        return BuildRequirements(static=static, dynamic=dynamic, backend=backend, declared=build_system.declared)

    def _dynamic(self, source: Path, build_system: BuildSystem) -> tuple[str, ...]:
        from pyproject_hooks import BuildBackendHookCaller

        env = clean_environment()
        env["PIP_INDEX_URL"] = self.index_url  # anything the backend itself fetches comes from upstream too
        with tempfile.TemporaryDirectory(prefix="mirror-buildenv-") as tmp:
            venv = Path(tmp) / "env"
            self._run([self.uv, "venv", str(venv), "--python", self.python, "--no-config", "--quiet"], env)
            python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
            if build_system.requires:
                self._run(
                    [
                        self.uv,
                        "pip",
                        "install",
                        "--python",
                        python,
                        "--no-config",
                        "--quiet",
                        "--default-index",
                        self.index_url,
                        *(str(r) for r in build_system.requires),
                    ],
                    env,
                )

            def runner(
                cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
            ) -> None:
                done = subprocess.run(
                    list(cmd),
                    cwd=cwd,
                    env={**env, **(extra_environ or {})},
                    capture_output=True,
                    text=True,
                    timeout=HOOK_TIMEOUT,
                    check=False,
                )
                if done.returncode != 0:
                    raise _HookFailed(log_tail(done.stdout + done.stderr))

            caller = BuildBackendHookCaller(
                str(source),
                build_system.effective_backend,
                backend_path=list(build_system.backend_path) or None,
                runner=runner,
                python_executable=python,
            )
            try:
                requires = caller.get_requires_for_build_wheel({})
            except _HookFailed:
                raise
            except Exception as exc:  # pyproject_hooks reports a missing backend/hook as its own exceptions
                raise _HookFailed(f"{type(exc).__name__}: {exc}") from None
        return tuple(str(r) for r in requires)

    def _run(self, args: list[str], env: Mapping[str, str]) -> None:
        done = self.runner(args, env)
        if done.returncode != 0:
            raise _HookFailed(condense(done.stderr or done.stdout))


class _HookFailed(Exception):
    """The build backend (or its environment) failed; the message is the useful tail of its output."""
