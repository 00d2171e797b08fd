"""What a Linux wheel built here really needs, and the tag that says so (auditwheel).

A build backend tags a wheel it compiles ``linux_<arch>`` and links it against **this host's** glibc. That tag
promises nothing about the glibc a target runs, and pip ranks it first: offered as it is, a wheel built on glibc
2.36 installs on a glibc 2.28 host and dies there ("version `GLIBC_2.34' not found"). A passing import on this host
proves nothing either. So every Linux wheel built here goes through pypa's auditwheel, as subprocesses of this
interpreter (its ``show --json`` output is versioned):

1. ``auditwheel show --json`` reads the ELF files: the glibc symbol versions they use (``sym_tag``, e.g.
   ``manylinux_2_34_x86_64``) and the shared libraries outside the manylinux policy they link;
2. ``auditwheel repair --plat <sym_tag>`` copies those libraries into the wheel (patchelf) and retags it with the
   manylinux tag it truly satisfies (``auditwheel`` picks a more compatible one itself when the wheel fits it).

The result replaces the wheel. Where no manylinux tag can be given (symbols newer than every policy auditwheel
knows, instructions beyond the architecture's baseline, a library it cannot copy), the wheel keeps its
``linux_<arch>`` tag and :attr:`Audit.problem` says why: such a wheel is never offered to a target
(:func:`mirror.builtwheels.unfit_reason`). Pure wheels and wheels for other systems are left as they are.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from mirror._process import Runner, clean_environment, log_tail, run_command

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Audit:
    """A wheel after auditwheel: where it is now, what it needs, what was copied in, or why it has no true tag."""

    wheel: Path
    tag: str | None = None  # the manylinux/musllinux platform tag it was given; None: unchanged
    libraries: tuple[str, ...] = ()  # shared libraries copied into the wheel
    problem: str | None = None  # why it keeps its linux_<arch> tag


def needs_audit(filename: str) -> bool:
    """Whether a wheel's platform tags are the ``linux_<arch>`` a build backend writes."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return any(tag.platform.startswith("linux_") for tag in tags)


def _environment() -> dict[str, str]:
    """No host pip/uv settings; this interpreter's ``bin`` first on PATH, for the patchelf the package ships."""
    env = clean_environment()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return env


def audit_wheel(wheel: Path, *, runner: Runner = run_command, python: str = sys.executable) -> Audit:
    """Give the Linux ``wheel`` the platform tag it truly satisfies, copying in the libraries it links."""
    if not needs_audit(wheel.name):
        return Audit(wheel=wheel)
    env = _environment()
    shown = runner([python, "-m", "auditwheel", "show", "--json", str(wheel)], env)
    if shown.returncode != 0:
        return Audit(wheel=wheel, problem=f"auditwheel show failed: {log_tail(shown.stderr or shown.stdout)}")
    try:
        report = json.loads(shown.stdout)
        sym_tag = str(report["sym_tag"])
    except (ValueError, KeyError, TypeError) as exc:
        return Audit(wheel=wheel, problem=f"auditwheel show said something unexpected: {exc}")
    if report.get("unsupported_isa"):
        return Audit(wheel=wheel, problem="it uses instructions beyond its architecture's baseline")
    if sym_tag.startswith("linux_"):
        symbols = sorted(v for versions in report.get("versioned_symbols", {}).values() for v in versions)
        return Audit(wheel=wheel, problem=f"its symbol versions ({', '.join(symbols)}) fit no manylinux policy")
    libraries = tuple(sorted(report.get("external_libs") or {}))
    with tempfile.TemporaryDirectory(prefix=".mirror-audit-", dir=wheel.parent) as staging:
        repaired = runner([python, "-m", "auditwheel", "repair", "--plat", sym_tag, "-w", staging, str(wheel)], env)
        made = sorted(Path(staging).glob("*.whl"))
        if repaired.returncode != 0 or len(made) != 1:
            why = log_tail(repaired.stderr or repaired.stdout)
            return Audit(wheel=wheel, problem=f"auditwheel repair --plat {sym_tag} failed: {why}")
        final = wheel.parent / made[0].name
        os.replace(made[0], final)
    if final != wheel:
        wheel.unlink(missing_ok=True)
    log.info("%s: auditwheel made it %s (libraries copied in: %s)", wheel.name, final.name, list(libraries))
    return Audit(wheel=final, tag=sym_tag, libraries=libraries)
