"""offline-mirror's own wheels, so that a bundle can install the tool on a host that has only Python.

A bundle carries, under ``tool/``: a wheel of the running offline-mirror (repacked from its installed files, so
the offline side gets exactly the tool that wrote the bundle), the wheels of its dependencies locked for the
chosen tool targets (by the same lock and fetch as any workspace, in ``<wheelhouse>/.tool``), one hash-pinned
requirements file per target, and ``install.sh``, which picks the file matching the host and runs
``python3 -m venv`` and ``pip install --no-index --find-links tool/wheels --require-hashes --no-deps``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import mirror
from mirror import _atomic
from mirror.errors import MirrorError
from mirror.layout import SPEC
from mirror.spec import Policy, Sources, Spec
from mirror.targets import Target

DISTRIBUTION = "offline-mirror"
OLDEST_PYTHON = (3, 10)  # offline-mirror's requires-python
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class SelfInstallError(MirrorError):
    """offline-mirror cannot package itself (not installed, no metadata, no target it runs on)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolWheel:
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SelfInstallError(f"{DISTRIBUTION} is not installed (no metadata); install it with pip first") from None


def version() -> str:
    return _distribution().version


def requirements(*, extra: Iterable[str] = ()) -> list[str]:
    """offline-mirror's runtime requirements (its ``Requires-Dist`` without extras), plus ``extra``."""
    out = []
    for text in _distribution().requires or []:
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        out.append(text)
    return out + list(extra)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def tool_wheel(package_dir: Path | None = None) -> ToolWheel:
    """A pure wheel of the running offline-mirror: the ``mirror`` package's files and the installed metadata.

    Deterministic: the same sources and metadata give the same bytes (sorted members, fixed timestamps).
    """
    dist = _distribution()
    metadata = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not metadata:
        raise SelfInstallError(f"{DISTRIBUTION} {dist.version}: its installed metadata has no METADATA")
    package_dir = package_dir or Path(mirror.__file__).parent
    name = str(canonicalize_name(DISTRIBUTION)).replace("-", "_")
    info = f"{name}-{dist.version}.dist-info"
    members: list[tuple[str, bytes]] = []
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
            members.append((f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path.read_bytes()))
    if not members:
        raise SelfInstallError(f"{package_dir}: no Python files to package")
    members.append((f"{info}/METADATA", metadata.encode("utf-8")))
    wheel_text = "Wheel-Version: 1.0\nGenerator: offline-mirror\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members.append((f"{info}/WHEEL", wheel_text.encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        members.append((f"{info}/entry_points.txt", entry_points.encode("utf-8")))
    record = "".join(f"{member},{_record_hash(data)},{len(data)}\n" for member, data in members)
    members.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members:
            entry = zipfile.ZipInfo(member, date_time=_ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return ToolWheel(filename=f"{name}-{dist.version}-py3-none-any.whl", data=buffer.getvalue())


def runs_on(target: Target) -> bool:
    """Whether offline-mirror can run on ``target`` (a POSIX platform and its minimum Python)."""
    return target.info.os in ("linux", "macos") and target.python_version >= OLDEST_PYTHON


def tool_targets(targets: Sequence[Target]) -> tuple[Target, ...]:
    """The targets of ``targets`` the tool can be installed on; an error naming why when there is none."""
    chosen = tuple(t for t in targets if runs_on(t))
    if not chosen:
        names = ", ".join(f"{t.name} ({t.describe()})" for t in targets)
        raise SelfInstallError(
            f"offline-mirror runs on Linux or macOS with Python >= 3.10; none of the targets does: {names}"
            " (choose one with --tool-target PLATFORM:PYTHON, or leave the tool out with --no-tool)"
        )
    return chosen


def tool_spec(spec: Spec, targets: Sequence[Target], *, extra: Iterable[str] = ()) -> Spec:
    """The workspace that locks and fetches the tool's dependencies: wheels only, under ``<wheelhouse>/.tool``."""
    root = spec.layout.tool
    return Spec(
        path=root / SPEC,
        indexes=(spec.routing.default,),  # the tool's own dependencies are public
        wheelhouse=root,
        lockfiles=root / "lockfiles",
        targets=tuple(targets),
        sources=Sources(packages=tuple(requirements(extra=extra))),
        policy=Policy(sdists="never", build_wheels=False),
    )


def requirements_file(target: Target, locked: str, wheel: ToolWheel) -> str:
    """``tool/<target>.txt``: the target's locked runtime requirements plus the tool's own wheel, all hashed."""
    return (
        f"# offline-mirror and its dependencies for {target.name}, {target.describe()}: installed by install.sh\n"
        f"# with pip install --no-index --find-links wheels --require-hashes --no-deps -r {target.name}.txt\n"
        f"{DISTRIBUTION}=={version()} \\\n    --hash=sha256:{wheel.sha256}\n" + locked
    )


def targets_json(targets: Sequence[Target]) -> str:
    """``tool/targets.json``: what install.sh compares with the host to pick a requirements file."""
    return (
        json.dumps(
            [
                {
                    "name": t.name,
                    "python": "{}.{}".format(*t.python_version),
                    "sys_platform": t.marker_environment()["sys_platform"],
                    "machine": t.info.machine,
                    "libc": t.info.libc or "",
                    "requirements": f"{t.name}.txt",
                }
                for t in targets
            ],
            indent=2,
        )
        + "\n"
    )


INSTALL_SH = r"""#!/bin/sh
# Install offline-mirror from this bundle with no network: a venv, then pip from tool/wheels only.
#
#   sh install.sh [VENV]        (default VENV: ~/.local/share/offline-mirror/venv; PYTHON=python3.12 to choose)
#
# It picks tool/<target>.txt matching this host (Python X.Y, machine, libc), installs exactly those hashed
# wheels (--no-index --require-hashes --no-deps) and prints where the `mirror` command is.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
venv=${1:-${HOME}/.local/share/offline-mirror/venv}

if ! command -v "$python" >/dev/null 2>&1; then
    echo "install.sh: $python not found; set PYTHON=/path/to/python3" >&2
    exit 1
fi
requirements=$("$python" - "$here/tool/targets.json" <<'PY'
import json, platform, sys

targets = json.load(open(sys.argv[1], encoding="utf-8"))
python = "%d.%d" % sys.version_info[:2]
libc = "glibc" if platform.libc_ver()[0] == "glibc" else ("musl" if sys.platform == "linux" else "")
machine = platform.machine().lower()
for t in targets:
    if (t["python"], t["sys_platform"], t["machine"].lower(), t["libc"]) == (python, sys.platform, machine, libc):
        print(t["requirements"])
        break
else:
    have = ", ".join("%s (Python %s, %s %s %s)" % (t["name"], t["python"], t["sys_platform"], t["machine"],
                                                    t["libc"]) for t in targets)
    sys.exit("install.sh: no tool target matches this host (Python %s, %s %s %s); the bundle has: %s"
             % (python, sys.platform, machine, libc or "-", have))
PY
)
echo "installing offline-mirror for $requirements into $venv"
"$python" -m venv "$venv"
PIP_CONFIG_FILE=/dev/null "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index --find-links "$here/tool/wheels" --require-hashes --no-deps -r "$here/tool/$requirements"
"$venv/bin/mirror" --version
echo "installed: $venv/bin/mirror  (next: $venv/bin/mirror bundle import BUNDLE --into DIR)"
"""


def write_wheel(wheel: ToolWheel, directory: Path) -> Path:
    path = directory / wheel.filename
    _atomic.write_bytes(path, wheel.data)
    return path
