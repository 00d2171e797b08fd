"""mirror verify: the proof that installs and builds succeed from the mirror alone, with no route out.

The CLI re-runs itself under ``unshare --user --map-root-user --net --mount`` (:func:`namespace_command`): a new
network namespace whose only interface is loopback, and a private mount namespace. Inside (:func:`enter_namespace`)
loopback is brought up (``SIOCSIFFLAGS`` on ``lo``: no dependency on iproute2), the host's site-wide pip and uv
configuration files are hidden behind empty bind mounts, and :func:`verify` runs:

* ``isolation``: a connection to 192.0.2.1 (TEST-NET-1, never routed) must fail, or nothing below proves anything;
* the embedded server (:func:`mirror.serve.serving`) on 127.0.0.1 over the wheelhouse, and the files
  :mod:`mirror.config` renders for that URL (pip.conf, uv.toml, pydistutils.cfg, the build lock) in a temporary
  directory. Every client runs with a temporary ``HOME``/``XDG_*``, ``PIP_CONFIG_FILE``/``UV_CONFIG_FILE`` naming
  those files, and no ``PIP_*``/``UV_*``/proxy/``PYTHONPATH``/``VIRTUAL_ENV`` variable of this host;
* for every target this host can run (:func:`mirror.interpreters.interpreter_for`): ``pip install
  --require-hashes -r lockfiles/<target>.txt`` in a fresh ``python -m venv`` (its bundled pip, not upgraded —
  unless it is older than 20.3 and the lock pins pip: then it installs the locked pip from the mirror first, as a
  legacy host is told to; the commands adapt to the pip version, see :func:`sdist_build_command`);
  ``uv pip install -r`` in a fresh ``uv venv``; an import of every top-level module of every locked distribution
  installed (``top_level.txt``, else ``RECORD``); ``pip wheel --no-deps`` of every sdist the target locks (an
  isolated build whose requirements come from the mirror); ``pip install DIR`` of every ``--project``; and for
  a project with a ``uv.lock``, in a copy of it: the lock relocated onto the served mirror (in memory,
  :func:`mirror.sources.uvlock.relocate`), ``uv sync --frozen --no-default-groups`` (with the mirror as
  ``UV_DEFAULT_INDEX``: uv resolves the project's own ``build-system.requires`` from the index even when frozen)
  and ``uv run --frozen python -c pass``;
* for every target (runnable or not), the static checks: every locked file present with its sha256
  (:func:`mirror.fetch.check`), every wheel's tags accepted by the target (:meth:`Target.accepts`), every pin of
  every build in the manifest held by the wheelhouse.

A failed step keeps the last lines of its output and what was missing: requirements named by pip's or uv's
error, and every URL the mirror answered 404. Nothing is printed: progress goes through a
:class:`~mirror.progress.Progress`, and the inner process hands its :class:`Report` to the outer one as JSON.

A ``--project`` whose setup.py/setup.cfg asks for ``setup_requires`` also runs ``setup.py egg_info`` with pip's
configuration hidden, so setuptools' own fetcher must find them through pydistutils.cfg alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mirror._process import Runner, clean_environment, run_command
from mirror._records import fields_dict
from mirror._verified import verified_files
from mirror.config import BUILD_CONSTRAINTS, BuildLock, ClientConfig, load_build_lock, render_files
from mirror.errors import MirrorError
from mirror.fetch import check
from mirror.interpreters import Interpreter, discover, interpreter_for
from mirror.layout import Layout
from mirror.manifest import FileEntry, Manifest, TargetEntry
from mirror.progress import NullProgress, Progress
from mirror.serve import AccessRecord, serving
from mirror.sources.uvlock import parse_uv_lock, relocate, unserved

__all__ = [
    "NAMESPACE_HINT",
    "PROBE_ADDRESS",
    "NamespaceUnavailable",
    "Report",
    "Step",
    "TargetPlan",
    "VerifyError",
    "VerifyPlan",
    "enter_namespace",
    "namespace_command",
    "plan_verify",
    "probe_isolation",
    "render_table",
    "run_isolated",
    "run_verify",
    "static_steps",
]

#: TEST-NET-1 (RFC 5737): documentation only, routed nowhere. Inside the namespace a connection must fail at once.
PROBE_ADDRESS = ("192.0.2.1", 80)
NAMESPACE_HINT = (
    "unprivileged user namespaces are needed (unshare from util-linux, run as `unshare --user --map-root-user"
    " --net --mount true`); enable them with `sysctl -w kernel.unprivileged_userns_clone=1` (Debian/Ubuntu),"
    " `sysctl -w user.max_user_namespaces=15000`, or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
    " (Ubuntu >= 23.10); in a container, run it with a seccomp/AppArmor profile that allows unshare(CLONE_NEWUSER)"
)
#: Site-wide client configuration a temporary HOME and XDG_CONFIG_DIRS do not hide (pip always reads /etc/pip.conf
#: unless PIP_CONFIG_FILE is os.devnull; uv reads /etc/uv/uv.toml). Inside the namespace each is bind-mounted over.
SITE_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/etc/uv/uv.toml", "/etc/xdg/uv/uv.toml")
TAIL_LINES = 15

_MISSING_PATTERNS = (
    re.compile(r"No matching distribution found for ([^\s;]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s;]+)"),
    re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry"),
    re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the provided package locations"),
)
_ROW_ORDER = ("files", "tags", "build closure", "pip install", "uv pip install", "imports", "sdist builds")

#: Run by a venv's python: import every top-level module of the named distributions. Standard library only, and
#: valid Python 3.6: before 3.8 there is no ``importlib.metadata``, and the ``*.dist-info`` (wheels) and
#: ``*.egg-info`` (``setup.py install``, what pip < 19 does with an sdist when ``wheel`` is missing) directories on
#: ``sys.path`` are read directly: ``METADATA``/``PKG-INFO``, ``top_level.txt``, ``RECORD``/``installed-files.txt``.
IMPORT_SCRIPT = r"""
import csv, email.parser, importlib, io, json, os, re, sys, traceback
try:
    import importlib.metadata as md
except ImportError:
    md = None
wanted = set(json.loads(sys.argv[1]))
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
class Legacy(object):
    def __init__(self, path):
        self.path = path
        text = self.read_text("METADATA") or self.read_text("PKG-INFO") or ""
        self.metadata = email.parser.Parser().parsestr(text)
    def read_text(self, name):
        try:
            with io.open(os.path.join(self.path, name), encoding="utf-8") as f:
                return f.read()
        except (IOError, OSError):
            return None
    @property
    def files(self):
        record = self.read_text("RECORD")
        if record is not None:
            return [row[0].split("/") for row in csv.reader(record.splitlines()) if row]
        installed = self.read_text("installed-files.txt")  # egg-info: paths relative to it
        if installed is None:
            return None
        base = os.path.dirname(self.path)
        out = []
        for line in installed.splitlines():
            if line.strip():
                rel = os.path.relpath(os.path.normpath(os.path.join(self.path, line.strip())), base)
                out.append(rel.split(os.sep))
        return out
def distributions():
    if md is not None:
        for dist in md.distributions():
            yield dist.metadata["Name"], dist.read_text, [e.parts for e in dist.files or ()]
        return
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")) and os.path.isdir(os.path.join(entry, name)):
                dist = Legacy(os.path.join(entry, name))
                yield dist.metadata["Name"], dist.read_text, dist.files or []
def modules(read_text, files):
    text = read_text("top_level.txt")
    if text:
        return sorted({line.strip().replace("/", ".") for line in text.splitlines() if line.strip()}), "top_level.txt"
    found = set()
    for parts in files:
        head = parts[0]
        if head in ("..", "__pycache__") or head.endswith((".dist-info", ".data", ".egg-info")):
            continue
        if len(parts) == 1:
            name, dot, suffix = head.partition(".")
            if suffix == "py" or (dot and suffix.endswith(("so", "pyd"))):
                found.add(name)
        elif head.isidentifier():
            found.add(head)
    return sorted(found), "RECORD"
out = []
for raw_name, read_text, files in distributions():
    name = norm(raw_name or "")
    if name not in wanted:
        continue
    mods, source = modules(read_text, files)
    for mod in mods:
        if mod.endswith("-stubs") or not mod.replace(".", "_").isidentifier():
            out.append([name, mod, "skipped: not an importable module name (" + source + ")", True])
            continue
        try:
            importlib.import_module(mod)
        except BaseException as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            out.append([name, mod, last, False])
        else:
            out.append([name, mod, None, True])
print(json.dumps(out))
"""


class VerifyError(MirrorError):
    """mirror verify could not run (as opposed to: it ran, and a step failed)."""


class NamespaceUnavailable(VerifyError):
    """This machine cannot create an unprivileged network namespace."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """One step for one target: ``files``, ``pip install``, … (``target`` is ``*`` for the isolation probe)."""

    step: str
    target: str
    ok: bool
    summary: str = ""
    output: tuple[str, ...] = ()  # the last lines of the failing command's output
    missing: tuple[str, ...] = ()  # requirements named by the installer, URLs the mirror answered 404

    def to_dict(self) -> dict[str, object]:
        return fields_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Step:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise VerifyError(f"verify report: {key!r} of a step is not a list of strings")
            return tuple(value)

        step, target, ok, summary = data.get("step"), data.get("target"), data.get("ok"), data.get("summary", "")
        if not isinstance(step, str) or not isinstance(target, str) or not isinstance(ok, bool):
            raise VerifyError(f"verify report: malformed step {dict(data)!r}")
        return cls(
            step=step,
            target=target,
            ok=ok,
            summary=str(summary),
            output=strings("output"),
            missing=strings("missing"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """Every step run, in order, and the targets in column order."""

    targets: tuple[str, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def failures(self) -> list[Step]:
        return [step for step in self.steps if not step.ok]

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "targets": list(self.targets),
            "steps": [step.to_dict() for step in self.steps],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Report:
        targets, steps, notes = data.get("targets"), data.get("steps"), data.get("notes", [])
        if not isinstance(targets, list) or not isinstance(steps, list) or not isinstance(notes, list):
            raise VerifyError("verify report: 'targets', 'steps' and 'notes' must be lists")
        return cls(
            targets=tuple(str(t) for t in targets),
            steps=tuple(Step.from_dict(s) for s in steps if isinstance(s, dict)),
            notes=tuple(str(n) for n in notes),
        )


def render_table(report: Report) -> str:
    """The step-by-target table (✓ passed, ✗ failed, · not run), then each failure with its output tail."""
    cells = {(s.step, s.target): s for s in report.steps}
    rows = [name for name in _ROW_ORDER if any(s.step == name for s in report.steps)]
    rows += list(dict.fromkeys(s.step for s in report.steps if s.step not in rows and s.target != "*"))
    width = max([len("step"), *(len(r) for r in rows)])
    columns = [max(len(t), 1) for t in report.targets]
    lines = [_probe_line(s) for s in report.steps if s.target == "*"]
    lines.append("  ".join(["step".ljust(width), *(t.ljust(w) for t, w in zip(report.targets, columns, strict=True))]))
    for row in rows:
        marks = []
        for target, w in zip(report.targets, columns, strict=True):
            step = cells.get((row, target))
            marks.append(("·" if step is None else "✓" if step.ok else "✗").ljust(w))
        lines.append("  ".join([row.ljust(width), *marks]).rstrip())
    for step in report.failures():
        lines.append("")
        lines.append(f"✗ {step.step} [{step.target}]: {step.summary}")
        lines += [f"  missing: {item}" for item in step.missing]
        lines += [f"  | {line}" for line in step.output]
    lines += [f"note: {note}" for note in report.notes]
    lines.append("")
    lines.append("verify: all steps passed" if report.ok else f"verify: {len(report.failures())} steps failed")
    return "\n".join(lines) + "\n"


def _probe_line(step: Step) -> str:
    return f"{step.step}: {'✓' if step.ok else '✗'} {step.summary}"


# --- outside: run the inner process in a new namespace ------------------------------------------------------------


def namespace_command(argv: Sequence[str]) -> list[str]:
    """``argv`` in a new user, network and mount namespace (root mapped to the caller; no privileges needed)."""
    return ["unshare", "--user", "--map-root-user", "--net", "--mount", *argv]


def _run_showing_stderr(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The outer runner: stdout captured (the report), stderr passed through (the inner progress lines)."""
    return subprocess.run(list(args), env=dict(env), stdout=subprocess.PIPE, text=True, check=False)


def run_isolated(
    inner_argv: Sequence[str],
    *,
    runner: Runner = _run_showing_stderr,
    probe_runner: Runner = run_command,
    env: Mapping[str, str] | None = None,
) -> Report:
    """Run ``inner_argv`` (``mirror verify --inside --json …``) in a new namespace and read its report."""
    environ = dict(os.environ if env is None else env)
    try:
        probe = probe_runner(namespace_command(["true"]), environ)
    except FileNotFoundError:
        raise NamespaceUnavailable(f"`unshare` is not installed (util-linux); {NAMESPACE_HINT}") from None
    if probe.returncode != 0:
        reason = (probe.stderr or "").strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        raise NamespaceUnavailable(f"cannot create a network namespace: {reason[0]}; {NAMESPACE_HINT}")
    done = runner(namespace_command(inner_argv), environ)
    try:
        data = json.loads(done.stdout or "")
    except ValueError:
        tail = " | ".join((done.stdout or "").strip().splitlines()[-5:])
        raise VerifyError(f"the isolated verify process exited {done.returncode} without a report: {tail}") from None
    if not isinstance(data, dict):
        raise VerifyError("the isolated verify process wrote a report that is not a JSON object")
    return Report.from_dict(data)


# --- inside: set up the namespace ---------------------------------------------------------------------------------

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_MS_BIND = 4096


def _bring_up(interface: str = "lo") -> None:
    """``ip link set lo up`` without iproute2: SIOCGIFFLAGS, set IFF_UP, SIOCSIFFLAGS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", interface.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", interface.encode(), flags | _IFF_UP))


def _shadow(paths: Iterable[str], empty: Path) -> list[str]:
    """Bind-mount ``empty`` over each existing file of ``paths``; the notes to report."""
    existing = [p for p in paths if os.path.isfile(p)]
    if not existing:
        return []
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    notes = []
    for path in existing:
        if libc.mount(str(empty).encode(), path.encode(), None, _MS_BIND, None) != 0:
            errno = ctypes.get_errno()
            notes.append(f"could not hide {path} from the clients ({os.strerror(errno)}); its settings apply")
        else:
            notes.append(f"hid this host's {path} from the clients (an empty file is mounted over it)")
    return notes


def enter_namespace(scratch: Path) -> list[str]:
    """Inside the new namespace: loopback up, this host's site-wide client configuration hidden. Notes."""
    try:
        _bring_up("lo")
    except OSError as exc:
        raise VerifyError(f"cannot bring up loopback in the network namespace: {exc.strerror or exc}") from None
    empty = scratch / "empty.conf"
    empty.write_text("")
    return _shadow(SITE_CONFIGS, empty)


def probe_isolation(address: tuple[str, int] = PROBE_ADDRESS) -> Step:
    """The namespace has no route out: a connection to a TEST-NET address must fail (without sending anything)."""
    host, port = address
    try:
        with socket.create_connection(address, timeout=1):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Step(step="isolation", target="*", ok=True, summary=f"no route out (connect {host}:{port}: {reason})")
    return Step(step="isolation", target="*", ok=False, summary=f"connected to {host}:{port}: the network is reachable")


# --- static checks (every target) ---------------------------------------------------------------------------------


def _verdict(step: str, target: str, problems: list[str], ok: str, bad: str) -> Step:
    """A static step: passed with summary ``ok`` when ``problems`` is empty, else ``bad`` listing them."""
    return Step(step=step, target=target, ok=not problems, summary=bad if problems else ok, missing=tuple(problems))


def static_steps(manifest: Manifest, entry: TargetEntry, files_dir: Path) -> list[Step]:
    """files (present, right sha256), tags (every wheel fits the target), build closure (every build pin held)."""
    name = entry.name
    result = check(manifest, files_dir, targets=[name])
    bad = [*(f"{f} (missing)" for f in result.missing), *result.corrupt]
    wheels = [f for f in entry.filenames() if manifest.files[f].kind == "wheel"]
    unfit = [f for f in wheels if not entry.target.accepts(f)]
    by_pin = {p.pin: p for p in entry.packages}
    gaps = []
    pins = 0
    for build in entry.builds:
        for pin in build.pins:
            pins += 1
            package = by_pin.get(pin)
            held = package is not None and any(
                (files_dir / manifest.files[f].relpath).is_file() for f in package.files if f in manifest.files
            )
            if not held:
                gaps.append(f"{pin} (needed by {build.requirer})")
    described = entry.target.describe()
    return [
        _verdict(
            "files",
            name,
            bad,
            f"{len(result.ok)} files present with their locked sha256",
            f"{len(result.missing)} missing, {len(result.corrupt)} with the wrong sha256",
        ),
        _verdict(
            "tags", name, unfit, f"{len(wheels)} wheels fit {described}", f"{len(unfit)} wheels do not fit {described}"
        ),
        _verdict(
            "build closure",
            name,
            gaps,
            f"{len(entry.builds)} builds, {pins} pins held",
            f"{len(gaps)} build requirements have no file in the wheelhouse",
        ),
    ]


# --- dynamic checks (targets this host runs) ----------------------------------------------------------------------


def _tail(*texts: str | None) -> tuple[str, ...]:
    lines = [line for text in texts if text for line in text.rstrip().splitlines()]
    return tuple(lines[-TAIL_LINES:])


def _short(args: object) -> str:
    """A command for a summary line: absolute paths shortened to their last part (the output has the rest)."""
    words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    return " ".join(Path(w).name if w.startswith("/") else w for w in words)


def _named_missing(text: str) -> list[str]:
    found: list[str] = []
    for pattern in _MISSING_PATTERNS:
        found += [m.group(1).rstrip(".,:'\"`") for m in pattern.finditer(text)]
    return list(dict.fromkeys(found))


def client_environment(base: Mapping[str, str], home: Path, config_dir: Path) -> dict[str, str]:
    """``base`` without this host's pip/uv/proxy/Python-path settings; HOME and XDG in ``home``; our files."""
    env = clean_environment(base, keep=(), proxies=False, python_paths=False)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_DIRS=str(home / "xdg-dirs"),
        PIP_CONFIG_FILE=str(config_dir / "pip.conf"),
        UV_CONFIG_FILE=str(config_dir / "uv.toml"),
        PYTHONNOUSERSITE="1",
    )
    return env


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetPlan:
    """What verify does for one target: dynamic steps with ``interpreter``, or static checks only (``None``)."""

    entry: TargetEntry
    interpreter: Interpreter | None
    build_lock: BuildLock | None  # pins the target's isolated builds (its <target>.build.txt)


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyPlan:
    """Every step verify will run, decided before anything runs or is written."""

    manifest: Manifest
    layout: Layout  # the wheelhouse served, the lockfiles installed
    targets: tuple[TargetPlan, ...]
    projects: tuple[Path, ...]
    held: Mapping[str, FileEntry]  # the files a project's uv.lock can be relocated onto
    notes: tuple[str, ...]

    @property
    def runnable(self) -> tuple[TargetPlan, ...]:
        return tuple(t for t in self.targets if t.interpreter is not None)


def plan_verify(
    manifest: Manifest,
    *,
    layout: Layout,
    targets: Sequence[str] = (),
    projects: Sequence[Path] = (),
    interpreters: Sequence[Interpreter] | None = None,
) -> VerifyPlan:
    """Which targets this host runs (the others get static checks), their build locks, the files served."""
    found = discover() if interpreters is None else interpreters
    plans = []
    for entry in manifest.select(targets):
        has_build_lock = (layout.lockfiles / f"{entry.name}.build.txt").is_file()
        plans.append(
            TargetPlan(
                entry=entry,
                interpreter=interpreter_for(entry.target, found),
                build_lock=load_build_lock(layout.lockfiles, entry.name) if has_build_lock else None,
            )
        )
    notes = [f"{p.entry.name}: no interpreter on this host; static checks only" for p in plans if p.interpreter is None]
    runnable = any(p.interpreter is not None for p in plans)
    if not runnable and projects:
        notes.append("no target runs on this host: --project was not installed")
    held: dict[str, FileEntry] = {}
    if runnable and any((project / "uv.lock").is_file() for project in projects):
        ready, _ = verified_files(manifest, layout.files, purpose="relocated onto")
        held = {file.filename: file for file in ready}
    return VerifyPlan(
        manifest=manifest,
        layout=layout,
        targets=tuple(plans),
        projects=tuple(projects),
        held=held,
        notes=tuple(notes),
    )


def run_verify(
    plan: VerifyPlan,
    *,
    progress: Progress | None = None,
    runner: Runner = run_command,
    env: Mapping[str, str] | None = None,
    uv: str | None = None,
) -> Report:
    """Run ``plan`` against the wheelhouse served on 127.0.0.1: the isolation probe, the static checks of every
    target, then the dynamic steps of each target this host runs, with clients configured for the mirror only.

    Meant to run inside the namespace (see :func:`run_isolated`); the ``isolation`` step says whether it is.
    """
    if uv is None:
        from uv import find_uv_bin

        uv = find_uv_bin()
    progress = progress or NullProgress()
    steps = [probe_isolation()]
    progress.message(steps[0].summary)
    for target in plan.targets:
        progress.message(f"{target.entry.name}: static checks")
        steps += static_steps(plan.manifest, target.entry, plan.layout.files)
    if plan.runnable:
        log = _AccessLog()
        with (
            tempfile.TemporaryDirectory(prefix="mirror-verify-") as tmp,
            serving(plan.layout.wheelhouse, access_log=log.add) as server,
        ):
            progress.message(f"serving {plan.layout.wheelhouse} at {server.index_url}")
            for target in plan.runnable:
                work = Path(tmp) / target.entry.name
                run = _TargetRun(
                    plan=plan,
                    target=target,
                    runner=runner,
                    env=os.environ if env is None else env,
                    log=log,
                    index_url=server.index_url,
                    mirror_url=server.url,
                    work=work,
                    uv=uv,
                    progress=progress,
                )
                steps += _dynamic_steps(run)
    return Report(targets=tuple(t.entry.name for t in plan.targets), steps=tuple(steps), notes=plan.notes)


class _AccessLog:
    """The mirror's access records, taken by each step to name the URLs it answered 404."""

    def __init__(self) -> None:
        self._records: list[AccessRecord] = []
        self._lock = threading.Lock()

    def add(self, record: AccessRecord) -> None:
        with self._lock:
            self._records.append(record)

    def take(self) -> list[AccessRecord]:
        with self._lock:
            taken, self._records = self._records, []
        return taken


class _TargetRun:
    """One target's dynamic steps: its clients' files and environment, the commands, the mirror's 404s."""

    def __init__(
        self,
        *,
        plan: VerifyPlan,
        target: TargetPlan,
        runner: Runner,
        env: Mapping[str, str],
        log: _AccessLog,
        index_url: str,
        mirror_url: str,
        work: Path,
        uv: str,
        progress: Progress,
    ) -> None:
        assert target.interpreter is not None
        self.plan = plan
        self.entry = target.entry
        self.name = target.entry.name
        self.interpreter = target.interpreter
        self.runner = runner
        self.log = log
        self.mirror_url = mirror_url.rstrip("/")
        self.work = work
        self.uv = uv
        self.progress = progress
        config_dir, home = work / "config", work / "home"
        self.env = client_environment(env, home, config_dir)
        self._write_client_files(target, index_url, config_dir, home)

    @staticmethod
    def _write_client_files(target: TargetPlan, index_url: str, config_dir: Path, home: Path) -> None:
        """pip.conf, uv.toml, pydistutils.cfg and the build lock for the served mirror, as ``mirror config``
        writes them."""
        config_dir.mkdir(parents=True)
        (home / "xdg-dirs").mkdir(parents=True)
        rendered = render_files(
            ClientConfig.for_url(index_url, build_lock=target.build_lock),
            clients=("pip", "uv", "setuptools"),
            build_constraint=str(config_dir / BUILD_CONSTRAINTS),
        )
        for file_name, text in rendered.items():
            (config_dir / file_name).write_text(text, encoding="utf-8")
        (home / ".pydistutils.cfg").write_text(rendered["pydistutils.cfg"], encoding="utf-8")

    def take_404s(self) -> list[str]:
        return list(dict.fromkeys(f"{self.mirror_url}{r.target}" for r in self.log.take() if r.status == 404))

    def run(self, args: Sequence[str], extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.take_404s()
        try:
            return self.runner([str(a) for a in args], {**self.env, **(extra_env or {})})
        except OSError as exc:
            return subprocess.CompletedProcess(list(args), 127, "", f"cannot run {args[0]}: {exc}")

    def step(self, name: str, done: subprocess.CompletedProcess[str], summary: str) -> Step:
        text = (done.stdout or "") + "\n" + (done.stderr or "")
        missing = [*_named_missing(text), *self.take_404s()]
        if done.returncode == 0:
            return Step(step=name, target=self.name, ok=True, summary=summary)
        return Step(
            step=name,
            target=self.name,
            ok=False,
            summary=f"exit status {done.returncode}: {_short(done.args)}",
            output=_tail(done.stdout, done.stderr),
            missing=tuple(missing),
        )

    def venv(self, path: Path) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.interpreter.path), "-m", "venv", str(path)])


def _dynamic_steps(run: _TargetRun) -> list[Step]:
    """pip and uv installs of the target's lock, imports, sdist builds, and each --project."""
    name, entry, work, uv, progress = run.name, run.entry, run.work, run.uv, run.progress
    lock = run.plan.layout.lockfiles / f"{name}.txt"
    steps: list[Step] = []
    pip_venv, uv_venv = work / f"{name}-pip", work / f"{name}-uv"
    pip_python, uv_python = pip_venv / "bin" / "python", uv_venv / "bin" / "python"

    progress.message(f"{name}: pip install --require-hashes -r {lock.name} ({run.interpreter.describe()})")
    made = run.venv(pip_venv)
    install = [str(pip_python), "-m", "pip", "install", "--disable-pip-version-check", "--require-hashes", "-r"]
    bundled, upgrade = venv_pip_version(pip_python), pip_upgrade(run.plan.manifest, entry)
    how = "with the venv's bundled pip"
    if made.returncode == 0 and upgrade is not None and bundled is not None and bundled < PEP600_PIP:
        # as docs/deploy.md tells legacy hosts: the locked pip from the mirror first, then the lock
        progress.message(f"{name}: pip {bundled[0]}.{bundled[1]} upgrades itself to the locked {upgrade[0]} first")
        requirement = work / f"{name}-pip.txt"
        requirement.write_text(upgrade[1], encoding="utf-8")
        made = run.run([*install, str(requirement)])
        how = f"after the venv's pip {bundled[0]}.{bundled[1]} upgraded itself to the locked pip {upgrade[0]}"
    if made.returncode != 0:
        steps.append(run.step("pip install", made, ""))
    else:
        done = run.run([*install, str(lock)])
        steps.append(run.step("pip install", done, f"installed {lock.name} {how}"))

    progress.message(f"{name}: uv pip install -r {lock.name}")
    made = run.run([uv, "venv", "--no-project", "--python", str(run.interpreter.path), str(uv_venv)])
    if made.returncode != 0:
        steps.append(run.step("uv pip install", made, ""))
    else:
        done = run.run([uv, "pip", "install", "--python", str(uv_python), "-r", str(lock)])
        steps.append(run.step("uv pip install", done, f"installed {lock.name} with uv"))

    if steps[0].ok:
        progress.message(f"{name}: importing every installed module")
        steps.append(_imports(run, pip_python))

    sdists = [run.plan.manifest.files[f] for f in entry.filenames() if run.plan.manifest.files[f].kind == "sdist"]
    if sdists and pip_python.exists():
        failed: list[Step] = []
        how = "built"
        for sdist in sdists:
            command, how = sdist_build_command(
                pip_python, run.plan.layout.files / sdist.relpath, work / f"{name}-built" / sdist.filename
            )
            progress.message(f"{name}: pip {command[3]} --no-deps {sdist.filename}")
            step = run.step("sdist builds", run.run(command), "")
            if not step.ok:
                failed.append(
                    Step(
                        step=step.step,
                        target=name,
                        ok=False,
                        summary=f"{sdist.filename}: {step.summary}",
                        output=step.output,
                        missing=step.missing,
                    )
                )
        steps += failed or [Step(step="sdist builds", target=name, ok=True, summary=f"{len(sdists)} sdists {how}")]

    for project in run.plan.projects:
        label = f"project {project.name}"
        progress.message(f"{name}: pip install {project}")
        venv = work / f"{name}-project-{project.name}"
        made = run.venv(venv)
        if made.returncode != 0:
            steps.append(run.step(label, made, ""))
            continue
        done = run.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", str(project)]
        )
        steps.append(run.step(label, done, f"pip install {project} (build requirements from the mirror)"))
        if uses_setup_requires(project):
            steps.append(_setup_requires_step(run, venv, project, label=label))
        if (project / "uv.lock").is_file():
            steps += _uv_project_steps(run, project, label=label)
    return steps


def uses_setup_requires(project: Path) -> bool:
    """Whether a project's setup.py or setup.cfg asks for ``setup_requires`` (setuptools' own fetcher)."""
    for name in ("setup.py", "setup.cfg"):
        path = project / name
        if path.is_file() and "setup_requires" in path.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def _setup_requires_step(run: _TargetRun, venv: Path, project: Path, *, label: str) -> Step:
    """``setup.py egg_info`` in a copy of the project with pip's configuration hidden: setuptools' fetcher must get
    ``setup_requires`` from the mirror through ``[easy_install] index_url`` in pydistutils.cfg alone."""
    target, name = run.name, f"{label}: setup_requires"
    run.progress.message(f"{target}: setup.py egg_info in {project} (setup_requires through pydistutils.cfg alone)")
    copy = run.work / f"{target}-setup-requires-{project.name}"
    try:
        shutil.copytree(
            project, copy, symlinks=True, ignore=shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", ".eggs")
        )
    except OSError as exc:
        return Step(step=name, target=target, ok=False, summary=f"cannot copy {project}: {exc}")
    python = str(venv / "bin" / "python")
    ready = run.run([python, "-m", "pip", "install", "--disable-pip-version-check", "setuptools", "wheel"])
    if ready.returncode != 0:
        return run.step(name, ready, "")
    script = (
        f"import os, runpy, sys; os.chdir({str(copy)!r}); sys.argv = ['setup.py', '-q', 'egg_info'];"
        " runpy.run_path('setup.py', run_name='__main__')"
    )
    done = run.run([python, "-c", script], extra_env={"PIP_CONFIG_FILE": os.devnull})
    return run.step(name, done, "setup_requires came from the mirror via pydistutils.cfg alone")


def _uv_project_steps(run: _TargetRun, project: Path, *, label: str) -> list[Step]:
    """In a copy of ``project``: its uv.lock relocated onto the mirror, ``uv sync --frozen``, ``uv run``."""
    name, entry, uv, progress = run.name, run.entry, run.uv, run.progress
    sync_label, run_label = f"{label}: uv sync --frozen", f"{label}: uv run"
    progress.message(f"{name}: uv sync --frozen {project} (its uv.lock relocated onto the mirror)")
    copy = run.work / f"{name}-uv-project-{project.name}"
    lock_label = str(project / "uv.lock")
    try:
        shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
        text = (copy / "uv.lock").read_bytes().decode("utf-8")
        relocation = relocate(text, root=run.mirror_url, held=run.plan.held, label=lock_label)
        missing = unserved(parse_uv_lock(text, path=project / "uv.lock", label=lock_label), relocation, [entry.target])
        (copy / "uv.lock").write_bytes(relocation.text.encode("utf-8"))
    except (MirrorError, OSError, UnicodeDecodeError) as exc:
        return [Step(step=sync_label, target=name, ok=False, summary=f"cannot relocate {lock_label}: {exc}")]
    if missing:
        return [
            Step(
                step=sync_label,
                target=name,
                ok=False,
                summary=f"{lock_label}: {len(missing)} packages the target installs have no file in the wheelhouse",
                missing=tuple(missing),
            )
        ]
    extra = {
        "UV_DEFAULT_INDEX": f"{run.mirror_url}/simple/",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": str(run.interpreter.path),
        "UV_CACHE_DIR": str(run.work / f"{name}-uv-project-{project.name}-cache"),
    }
    done = run.run([uv, "sync", "--directory", str(copy), "--frozen", "--no-default-groups"], extra)
    steps = [run.step(sync_label, done, "uv sync --frozen of the relocated uv.lock")]
    if steps[0].ok:
        progress.message(f"{name}: uv run python -c pass in {project}")
        done = run.run(
            [uv, "run", "--directory", str(copy), "--frozen", "--no-default-groups", "python", "-c", "pass"], extra
        )
        steps.append(run.step(run_label, done, "uv run --frozen python -c pass"))
    return steps


def _imports(run: _TargetRun, python: Path) -> Step:
    entry = run.entry
    wanted = sorted({re.sub(r"[-_.]+", "-", p.name).lower() for p in entry.runtime()})
    done = run.run([str(python), "-c", IMPORT_SCRIPT, json.dumps(wanted)])
    try:
        results = json.loads(done.stdout)
    except ValueError:
        return run.step("imports", done, "")
    failed = [f"{mod} ({dist}): {error}" for dist, mod, error, ok in results if not ok]
    known = [f"{mod} ({dist}): {error}" for dist, mod, error, ok in results if ok and error]
    imported = sum(1 for _, _, error, ok in results if ok and not error)
    dists = {dist for dist, *_ in results}
    unchecked = [d for d in wanted if d not in dists]
    summary = f"{imported} modules of {len(dists)} distributions imported"
    if known:
        summary += f"; {len(known)} not importable for a known reason"
    return Step(
        step="imports",
        target=entry.name,
        ok=not failed,
        summary=summary if not failed else f"{len(failed)} modules failed to import",
        output=tuple(known + [f"not installed, not checked: {d}" for d in unchecked]),
        missing=tuple(failed),
    )


def inner_argv(
    *, spec: Path, targets: Sequence[str], projects: Sequence[Path], executable: str = sys.executable
) -> list[str]:
    """The command the outer process runs in the namespace (``python -m mirror verify --inside --json …``)."""
    argv = [executable, "-m", "mirror", "verify", "--inside", "--json", "--spec", str(spec.absolute())]
    for target in targets:
        argv += ["--target", target]
    for project in projects:
        argv += ["--project", str(project.absolute())]
    return argv


#: pip 19.0 added PEP 517 builds and ``--use-pep517``; an older pip (18.1 in a ``python3.6 -m venv``, 9.0.3 on
#: CentOS 7) rejects the option, and its ``pip wheel`` needs the ``wheel`` package in the venv.
PEP517_PIP = (19, 0)
#: pip 20.3 reads PEP 600 ``manylinux_2_N`` tags (19.3 ``manylinux2014``, 19.0 ``manylinux2010``): an older pip
#: passes over many wheels a lock chooses, so verify lets it upgrade itself to the locked pip first, as deploys do.
PEP600_PIP = (20, 3)
#: From pip 23.1 a setup.py-only sdist gets an isolated build without being asked.
ISOLATED_BY_DEFAULT_PIP = (23, 1)


def venv_pip_version(python: Path) -> tuple[int, int] | None:
    """The major.minor version of the pip installed in the venv of ``python`` (its ``pip-*.dist-info``), if any."""
    for info in python.parent.parent.glob("lib/python3*/site-packages/pip-*.dist-info"):
        try:
            major, minor = info.name.removesuffix(".dist-info").split("-")[1].split(".")[:2]
            return int(major), int(minor)
        except ValueError:
            continue
    return None


def pip_upgrade(manifest: Manifest, entry: TargetEntry) -> tuple[str, str] | None:
    """The pip a target's lock pins: its version and a ``--require-hashes`` requirements line, or ``None``."""
    for package in entry.runtime():
        if package.name == "pip":
            hashes = " ".join(f"--hash=sha256:{manifest.files[f].sha256}" for f in package.files if f in manifest.files)
            return package.version, f"pip=={package.version} {hashes}\n"
    return None


def isolated_build_flag(python: Path) -> list[str]:
    """``--use-pep517`` for a venv whose pip is 19.0 to 23.0 (bundled with Python 3.7 to 3.10): it would build a
    setup.py-only sdist with ``setup.py bdist_wheel`` in the venv, which has no ``wheel``, where newer pips make an
    isolated build fed by the mirror. Newer pips need no flag (pip 26 hides it); older ones do not know it."""
    version = venv_pip_version(python)
    return ["--use-pep517"] if version is not None and PEP517_PIP <= version < ISOLATED_BY_DEFAULT_PIP else []


def sdist_build_command(python: Path, sdist: Path, out_dir: Path) -> tuple[list[str], str]:
    """The command that proves ``sdist`` builds with the venv's own pip, and what it proves.

    ``pip wheel --no-deps`` (isolated, see :func:`isolated_build_flag`); with a pip older than 19.0, which has no
    PEP 517 builds and whose ``pip wheel`` needs ``wheel`` in the venv, ``pip install --no-deps --target``: what
    that pip does with the sdist on the target (``setup.py install``, or ``bdist_wheel`` when ``wheel`` is there).
    """
    pip = [str(python), "-m", "pip"]
    version = venv_pip_version(python)
    if version is not None and version < PEP517_PIP:
        command = [*pip, "install", "--disable-pip-version-check", "--no-deps", "--target", str(out_dir), str(sdist)]
        return command, f"built and installed with pip {version[0]}.{version[1]}"
    command = [
        *pip,
        "wheel",
        "--disable-pip-version-check",
        "--no-deps",
        *isolated_build_flag(python),
        "-w",
        str(out_dir),
        str(sdist),
    ]
    return command, "built"
