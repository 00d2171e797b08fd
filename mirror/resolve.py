"""Resolver backends: pin a set of requirements for one target.

Two backends, both run as subprocesses through an injectable runner:

* ``uv`` (default) — ``uv pip compile --python-platform … --python-version …`` from the ``uv`` package's own
  binary; resolves correctly for a foreign platform.
* ``pip-tools`` — ``pip-compile`` with pip's resolver semantics; only for the host's own platform and Python.

Both read the previous output as preferences, so re-running moves no pin unless ``upgrade`` asks for it.
Host configuration (pip.conf, uv.toml, ``PIP_*``/``UV_*`` variables) is kept out: the spec's upstream decides.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packaging.utils import canonicalize_name

from mirror._process import Runner, clean_environment, run_command
from mirror.errors import MirrorError
from mirror.targets import Target, host_target


class ResolutionError(MirrorError):
    """A resolver could not pin the requirements for a target."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Pin:
    """One pinned distribution and what pulled it in (as the resolver annotated it)."""

    name: str  # normalized
    version: str
    via: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolveRequest:
    """What to resolve, for which target, from which index."""

    label: str  # names the resolution in errors: a target name, or "<target>: build requirements of <sdist>"
    target: Target
    index_url: str
    requirements: str  # requirements.in text
    constraints: str = ""
    preferences: str | None = None  # a previous output: its pins are kept unless upgraded
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # names never to pin (the workspace's own projects)
    no_binary: tuple[str, ...] = ()  # pip's --no-binary: names or ":all:" (policy.no-binary)
    only_binary: tuple[str, ...] = ()  # pip's --only-binary (policy.only-binary)
    exclude_newer: str | None = None  # no file uploaded after this RFC 3339 moment (policy.exclude-newer)


class Resolver(Protocol):
    name: str

    def resolve(self, request: ResolveRequest) -> list[Pin]: ...


_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def parse_compiled(text: str) -> list[Pin]:
    """Read pip-compile / uv pip compile output (split annotations) into pins, in file order."""
    pins: list[Pin] = []
    current: tuple[str, str] | None = None
    via: list[str] = []

    def flush() -> None:
        if current is not None:
            pins.append(Pin(name=current[0], version=current[1], via=tuple(via)))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip()
            if current is None:
                continue
            if comment.startswith("via "):
                via.append(comment[4:].strip())
            elif comment != "via" and raw.startswith((" ", "\t")):
                via.append(comment)
            continue
        if line.startswith("--hash") or line.startswith("-"):
            continue
        match = _PIN_RE.match(line)
        if match:
            flush()
            current = (str(canonicalize_name(match[1])), match[2])
            via = []
        elif " @ " in line:  # a path requirement (a workspace project itself): not a pin
            flush()
            current = None
            via = []
    flush()
    return pins


def condense(output: str, *, limit: int = 600) -> str:
    """Turn a resolver's multi-line report into one readable line."""
    lines = []
    for raw in output.splitlines():
        line = re.sub(r"^[\s\u00d7\u2570\u2500\u25b6\u2502\u2506\u251c\u2514\u2022]+", "", raw).strip()
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if not line or line.startswith(("Resolved ", "Using ", "warning: The `--python-platform`")):
            continue
        lines.append(line.removeprefix("error: ").removeprefix("ERROR: "))
    text = " ".join(lines) or "no output"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _upgrade_args(request: ResolveRequest) -> list[str]:
    """``--upgrade`` / ``--upgrade-package NAME``: spelled the same by uv pip compile and pip-compile."""
    args = ["--upgrade"] if request.upgrade else []
    for name in request.upgrade_packages:
        args += ["--upgrade-package", name]
    return args


def _format_args(request: ResolveRequest) -> list[str]:
    """``--no-binary NAME`` / ``--only-binary NAME`` per name, as uv pip compile and pip spell them."""
    args = []
    for flag, names in (("--no-binary", request.no_binary), ("--only-binary", request.only_binary)):
        for name in names:
            args += [flag, name]
    return args


def _pip_args(request: ResolveRequest) -> list[str]:
    """pip-compile's ``--pip-args``: the format options and the cooldown (pip's ``--uploaded-prior-to``)."""
    args = _format_args(request) + ([f"--uploaded-prior-to={request.exclude_newer}"] if request.exclude_newer else [])
    return ["--pip-args", " ".join(args)] if args else []


class _CompileBackend:
    """What uv and pip-tools share: the temporary input files and reading the output."""

    name = "base"

    def __init__(self, runner: Runner = run_command) -> None:
        self.runner = runner

    def command(self, request: ResolveRequest, infile: Path, outfile: Path) -> list[str]:
        raise NotImplementedError

    def environment(self, request: ResolveRequest) -> dict[str, str]:
        return clean_environment()

    def resolve(self, request: ResolveRequest) -> list[Pin]:
        with tempfile.TemporaryDirectory(prefix="mirror-resolve-") as tmp:
            directory = Path(tmp)
            infile = directory / "requirements.in"
            outfile = directory / "requirements.txt"
            text = request.requirements
            if request.constraints.strip():
                (directory / "constraints.txt").write_text(request.constraints, encoding="utf-8")
                text = "-c constraints.txt\n" + text
            infile.write_text(text, encoding="utf-8")
            if request.preferences:
                outfile.write_text(request.preferences, encoding="utf-8")
            done = self.runner(self.command(request, infile, outfile), self.environment(request))
            if done.returncode != 0:
                raise ResolutionError(f"{request.label}: {self.name} could not resolve: {condense(done.stderr)}")
            pins = parse_compiled(outfile.read_text(encoding="utf-8"))
        excluded = {canonicalize_name(name) for name in request.exclude}
        return [pin for pin in pins if pin.name not in excluded]


class UvResolver(_CompileBackend):
    """``uv pip compile`` for any target platform."""

    name = "uv"

    def __init__(self, runner: Runner = run_command, uv: str | None = None) -> None:
        super().__init__(runner)
        if uv is None:
            from uv import find_uv_bin

            uv = find_uv_bin()
        self.uv = uv

    def command(self, request: ResolveRequest, infile: Path, outfile: Path) -> list[str]:
        target = request.target
        return [
            self.uv,
            "pip",
            "compile",
            str(infile),
            "--output-file",
            str(outfile),
            "--no-config",
            "--no-header",
            "--annotation-style",
            "split",
            "--python-platform",
            target.uv_python_platform,
            "--python-version",
            target.python,
            # builds for metadata run on this interpreter; uv would otherwise search for (or download) one
            # of the target's version
            "--python",
            sys.executable,
            "--default-index",
            request.index_url,
            "--index-strategy",
            "first-index",
            "--quiet",
            *_upgrade_args(request),
            *_format_args(request),
            *(["--exclude-newer", request.exclude_newer] if request.exclude_newer else []),
        ]

    def environment(self, request: ResolveRequest) -> dict[str, str]:
        return {**clean_environment(), **request.target.uv_environment()}


class PipToolsResolver(_CompileBackend):
    """``pip-compile``: pip's resolver, valid only for the host's own platform and Python."""

    name = "pip-tools"

    def __init__(self, runner: Runner = run_command, python: str = sys.executable) -> None:
        super().__init__(runner)
        self.python = python

    def command(self, request: ResolveRequest, infile: Path, outfile: Path) -> list[str]:
        check_host_target(request.target)
        return [
            self.python,
            "-m",
            "piptools",
            "compile",
            str(infile),
            "--output-file",
            str(outfile),
            "--no-header",
            "--annotation-style=split",
            "--no-emit-index-url",
            "--no-emit-trusted-host",
            "--index-url",
            request.index_url,
            "--quiet",
            *_upgrade_args(request),
            *_pip_args(request),
        ]

    def environment(self, request: ResolveRequest) -> dict[str, str]:
        # pip-compile builds sdists for their metadata in isolated environments: those must use the upstream too
        return {**clean_environment(), "PIP_INDEX_URL": request.index_url}


def check_host_target(target: Target) -> None:
    """pip-compile resolves with the running interpreter's markers and tags: refuse any other target."""
    host = host_target()
    if (target.platform, target.python_version) != (host.platform, host.python_version):
        raise ResolutionError(
            f"{target.name}: --resolver pip-tools resolves only for this host ({host.describe()}),"
            f" not {target.describe()}; use the default uv resolver for other targets"
        )


RESOLVERS: dict[str, Callable[[], Resolver]] = {"uv": UvResolver, "pip-tools": PipToolsResolver}


def make_resolver(name: str) -> Resolver:
    """The backend called ``name`` (``uv`` or ``pip-tools``)."""
    try:
        return RESOLVERS[name]()
    except KeyError:
        raise ResolutionError(f"unknown resolver {name!r}; expected one of: {', '.join(RESOLVERS)}") from None
