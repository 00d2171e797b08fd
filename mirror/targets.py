"""Target platforms: exactly which wheels a target accepts and how its environment markers evaluate.

A :class:`Target` is one deployment platform (OS, CPU, C library and its version) with one Python version.
It yields

* its ordered list of compatible wheel tags (best first), generated with ``packaging.tags`` for explicit
  platforms — ``packaging`` only generates the manylinux/musllinux ladders for the *running* host, so the
  ladders are generated here, following the same rules (PEP 600 / PEP 656, legacy ``manylinux2014/2010/1``
  aliases); macOS ladders come from ``packaging.tags.mac_platforms`` which takes an explicit version;
* a complete PEP 508 marker environment, so that evaluating a marker never falls back to the host's values
  (``packaging.markers.Marker.evaluate`` merges the given environment over the running interpreter's);
* the ``--python-platform`` value (and environment) that makes uv resolve for the same platform.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from packaging.markers import InvalidMarker, Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms, platform_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from mirror._records import Fields
from mirror.errors import InvalidTarget

OS = Literal["linux", "macos", "windows"]
Libc = Literal["glibc", "musl"]

#: Default C library / OS versions a target is assumed to run when the spec does not say.
DEFAULT_GLIBC = (2, 28)
DEFAULT_MUSL = (1, 2)
#: uv assumes the oldest macOS that Apple still supports; so do we (set ``macos = "…"`` to change it).
DEFAULT_MACOS = (13, 0)
#: The oldest glibc uv can resolve for (``x86_64-manylinux_2_17``); older targets cannot be locked.
OLDEST_GLIBC = (2, 17)
#: glibc minors that uv accepts as ``<arch>-manylinux_2_<minor>`` (``uv pip compile --help``).
UV_GLIBC_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
#: The oldest CPython a target can run: 3.6 (CentOS 7, Ubuntu 18.04) and 3.7 (Debian 10) still run closed networks.
OLDEST_PYTHON = (3, 6)
#: CPython before 3.8 builds its extensions for the ``m`` (pymalloc) ABI: ``cp36-cp36m``, ``cp37-cp37m`` (PEP 3149;
#: 3.8 dropped the flag). ``packaging.tags.cpython_tags`` derives it only for the running interpreter.
PYMALLOC_ABI_BEFORE = (3, 8)

_WINDOWS_TAGS = {"win_amd64": "windows/amd64", "win_arm64": "windows/arm64", "win32": "windows/386"}
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True, kw_only=True, slots=True)
class PlatformInfo:
    """What a ``platform = "os/arch[/musl]"`` value means."""

    os: OS
    arch: str  # Docker-style: amd64, arm64, 386
    libc: Libc | None
    tag_arch: str  # as in wheel platform tags: x86_64, aarch64, arm64, amd64, win32
    machine: str  # platform.machine() on that platform, the PEP 508 platform_machine value
    uv_triple: str  # uv --python-platform (for glibc Linux the manylinux variant is chosen per glibc)


#: platform -> (os, Docker arch, libc, wheel-tag arch, platform_machine, uv --python-platform)
_PLATFORM_TABLE: tuple[tuple[str, OS, str, Libc | None, str, str, str], ...] = (
    ("linux/amd64", "linux", "amd64", "glibc", "x86_64", "x86_64", "x86_64"),
    ("linux/arm64", "linux", "arm64", "glibc", "aarch64", "aarch64", "aarch64"),
    ("linux/amd64/musl", "linux", "amd64", "musl", "x86_64", "x86_64", "x86_64-unknown-linux-musl"),
    ("linux/arm64/musl", "linux", "arm64", "musl", "aarch64", "aarch64", "aarch64-unknown-linux-musl"),
    ("macos/arm64", "macos", "arm64", None, "arm64", "arm64", "aarch64-apple-darwin"),
    ("macos/amd64", "macos", "amd64", None, "x86_64", "x86_64", "x86_64-apple-darwin"),
    ("windows/amd64", "windows", "amd64", None, "amd64", "AMD64", "x86_64-pc-windows-msvc"),
    ("windows/arm64", "windows", "arm64", None, "arm64", "ARM64", "aarch64-pc-windows-msvc"),
    ("windows/386", "windows", "386", None, "win32", "x86", "i686-pc-windows-msvc"),
)
PLATFORMS: dict[str, PlatformInfo] = {
    name: PlatformInfo(os=os_, arch=arch, libc=libc, tag_arch=tag_arch, machine=machine, uv_triple=uv_triple)
    for name, os_, arch, libc, tag_arch, machine, uv_triple in _PLATFORM_TABLE
}

_OS_MARKERS: dict[str, dict[str, str]] = {
    "linux": {"sys_platform": "linux", "os_name": "posix", "platform_system": "Linux"},
    "macos": {"sys_platform": "darwin", "os_name": "posix", "platform_system": "Darwin"},
    "windows": {"sys_platform": "win32", "os_name": "nt", "platform_system": "Windows"},
}

_TARGET_KEYS = ("platform", "python", "implementation", "glibc", "musl", "macos", "name")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PYTHON_RE = re.compile(r"^(?:cp)?(\d)\.?(\d{1,2})(?:\.(\d{1,3}))?$")
_UNSUPPORTED = f"is not supported; expected {OLDEST_PYTHON[0]}.{OLDEST_PYTHON[1]} or newer"
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def _platform_for(os_: str, tag_arch: str, libc: Libc | None) -> str | None:
    for key, info in PLATFORMS.items():
        if info.os == os_ and info.tag_arch == tag_arch and info.libc == libc:
            return key
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class PlatformTag:
    """A wheel platform tag such as ``manylinux_2_28_aarch64`` read as a platform and an OS/libc version."""

    platform: str
    version: tuple[int, int] | None


def parse_platform_tag(tag: str) -> PlatformTag | None:
    """Read an explicit wheel platform tag; ``None`` when it names no platform offline-mirror can target."""
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    if m := re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag):
        libc: Libc | None = "glibc"
        os_, version, arch = "linux", (int(m[1]), int(m[2])), m[3]
    elif (m := re.fullmatch(r"(manylinux\d+)_(\w+)", tag)) and m[1] in legacy:
        libc, os_, version, arch = "glibc", "linux", (2, legacy[m[1]]), m[2]
    elif m := re.fullmatch(r"musllinux_(\d+)_(\d+)_(\w+)", tag):
        libc, os_, version, arch = "musl", "linux", (int(m[1]), int(m[2])), m[3]
    elif m := re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag):
        libc, os_, version, arch = None, "macos", (int(m[1]), int(m[2])), m[3]
    elif tag in _WINDOWS_TAGS:
        return PlatformTag(platform=_WINDOWS_TAGS[tag], version=None)
    else:
        return None
    key = _platform_for(os_, arch, libc)
    return PlatformTag(platform=key, version=version) if key else None


def manylinux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """The ``manylinux`` ladder a glibc ``glibc`` system on ``arch`` accepts, best first (PEP 600).

    Down to ``manylinux_2_17`` (``2_5`` on x86_64/i686, the architectures manylinux1 covered), with the legacy
    aliases ``manylinux2014`` (2.17), ``manylinux2010`` (2.12) and ``manylinux1`` (2.5) right after their
    PEP 600 equivalents, as pip orders them.
    """
    floor = 5 if arch in ("x86_64", "i686") else 17
    tags: list[str] = []
    for minor in range(glibc[1], floor - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return tags


def musllinux_platforms(arch: str, musl: tuple[int, int]) -> list[str]:
    """The ``musllinux`` ladder a musl ``musl`` system on ``arch`` accepts, best first (PEP 656)."""
    return [f"musllinux_{musl[0]}_{minor}_{arch}" for minor in range(musl[1], -1, -1)]


def _format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """One deployment target: a platform and a CPython version."""

    name: str
    platform: str  # a key of PLATFORMS
    python: str  # "3.11" or "3.11.4"
    implementation: str = "cp"
    glibc: tuple[int, int] | None = None  # glibc Linux only
    musl: tuple[int, int] | None = None  # musl Linux only
    macos: tuple[int, int] | None = None  # macOS only

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        platform: str,
        python: str,
        *,
        name: str | None = None,
        implementation: str = "cp",
        glibc: str | None = None,
        musl: str | None = None,
        macos: str | None = None,
    ) -> Target:
        """Build a target from spec-style values (``"linux/amd64"`` or a platform tag, ``"3.11"``)."""
        data: dict[str, object] = {"platform": platform, "python": python, "implementation": implementation}
        for key, value in (("name", name), ("glibc", glibc), ("musl", musl), ("macos", macos)):
            if value is not None:
                data[key] = value
        return cls.from_dict(data, where="target")

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, where: str = "target") -> Target:
        """Parse one ``[[target]]`` table; every problem is an :class:`InvalidTarget` naming ``where.key``."""
        for key in data:
            if key not in _TARGET_KEYS:
                raise InvalidTarget(f"{where}.{key}", f"unknown key; expected one of: {', '.join(_TARGET_KEYS)}")
        raw_platform = _required_str(data, "platform", where)
        raw_python = _required_str(data, "python", where)

        implementation = _optional_str(data, "implementation", where) or "cp"
        if implementation != "cp":
            raise InvalidTarget(
                f"{where}.implementation", f"{implementation!r} is not supported; expected 'cp' (CPython)"
            )
        m = _PYTHON_RE.fullmatch(raw_python)
        if m and (int(m[1]), int(m[2])) < OLDEST_PYTHON:  # Python 2.7, 3.5, …: one clear line, not "not a version"
            raise InvalidTarget(f"{where}.python", f"{raw_python!r} {_UNSUPPORTED}")
        if not m or int(m[1]) != 3:
            raise InvalidTarget(f"{where}.python", f"{raw_python!r} is not a Python version; expected e.g. '3.11'")
        minor = int(m[2])
        python = f"3.{minor}" + (f".{int(m[3])}" if m[3] is not None else "")

        explicit = None
        if raw_platform in PLATFORMS:
            platform = raw_platform
        else:
            explicit = parse_platform_tag(raw_platform)
            if explicit is None:
                raise InvalidTarget(
                    f"{where}.platform",
                    f"{raw_platform!r} is not a known platform; known: {', '.join(PLATFORMS)}"
                    " or a wheel platform tag such as manylinux_2_28_aarch64, musllinux_1_2_x86_64,"
                    " macosx_11_0_arm64, win_amd64",
                )
            platform = explicit.platform
        info = PLATFORMS[platform]

        versions: dict[str, tuple[int, int] | None] = {"glibc": None, "musl": None, "macos": None}
        applies = {"glibc": info.libc == "glibc", "musl": info.libc == "musl", "macos": info.os == "macos"}
        defaults = {"glibc": DEFAULT_GLIBC, "musl": DEFAULT_MUSL, "macos": DEFAULT_MACOS}
        for key in versions:
            raw = _optional_str(data, key, where)
            if raw is not None and not applies[key]:
                raise InvalidTarget(f"{where}.{key}", f"does not apply to platform {raw_platform!r}")
            if not applies[key]:
                continue
            value = _parse_version(raw, f"{where}.{key}") if raw is not None else None
            if explicit is not None and explicit.version is not None:
                if value is not None and value != explicit.version:
                    raise InvalidTarget(
                        f"{where}.{key}",
                        f"{raw!r} contradicts platform {raw_platform!r} ({key} {_format_version(explicit.version)})",
                    )
                value = explicit.version
            versions[key] = value or defaults[key]
        glibc = versions["glibc"]
        if glibc is not None and glibc < OLDEST_GLIBC:
            raise InvalidTarget(
                f"{where}.glibc" if "glibc" in data else f"{where}.platform",
                f"glibc {_format_version(glibc)} is older than {_format_version(OLDEST_GLIBC)},"
                " the oldest glibc that can be resolved for",
            )

        name = _optional_str(data, "name", where)
        if name is None:
            name = "-".join([info.os, info.arch, *(["musl"] if info.libc == "musl" else []), f"cp3{minor}"])
        elif not _NAME_RE.fullmatch(name):
            raise InvalidTarget(
                f"{where}.name", f"{name!r} is not a valid name; expected letters, digits, '.', '_' and '-'"
            )
        return cls(
            name=name,
            platform=platform,
            python=python,
            implementation=implementation,
            glibc=glibc,
            musl=versions["musl"],
            macos=versions["macos"],
        )

    def to_dict(self) -> dict[str, str]:
        """The ``[[target]]`` table that parses back to this target."""
        out = {"name": self.name, "platform": self.platform, "python": self.python}
        for key, value in (("glibc", self.glibc), ("musl", self.musl), ("macos", self.macos)):
            if value is not None:
                out[key] = _format_version(value)
        return out

    # -- what the target is -----------------------------------------------------------------------------------

    @property
    def info(self) -> PlatformInfo:
        return PLATFORMS[self.platform]

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    @property
    def python_full_version(self) -> str:
        """``3.11`` means the oldest 3.11 release, as uv reads ``--python-version 3.11``."""
        return self.python if self.python.count(".") == 2 else f"{self.python}.0"

    @property
    def interpreter(self) -> str:
        """The interpreter tag, e.g. ``cp311``."""
        major, minor = self.python_version
        return f"{self.implementation}{major}{minor}"

    @property
    def abi(self) -> str:
        """The ABI tag of the target's extension modules: ``cp311``, or ``cp36m``/``cp37m`` before 3.8."""
        return self.interpreter + ("m" if self.python_version < PYMALLOC_ABI_BEFORE else "")

    def describe(self) -> str:
        """A short human description: ``linux/amd64 (glibc 2.28) CPython 3.11``."""
        detail = ""
        if self.glibc:
            detail = f" (glibc {_format_version(self.glibc)})"
        elif self.musl:
            detail = f" (musl {_format_version(self.musl)})"
        elif self.macos:
            detail = f" (macOS {_format_version(self.macos)})"
        return f"{self.platform}{detail} CPython {self.python}"

    # -- wheel tags ---------------------------------------------------------------------------------------------

    def platform_tags(self) -> list[str]:
        """Wheel platform tags this target accepts, best first."""
        info = self.info
        if info.os == "linux":
            ladder = (
                manylinux_platforms(info.tag_arch, self.glibc)
                if self.glibc
                else musllinux_platforms(info.tag_arch, self.musl or DEFAULT_MUSL)
            )
            # pip (packaging >= 26.3) ranks a wheel built for this very machine (linux_<arch>) first.
            return [f"linux_{info.tag_arch}", *ladder]
        if info.os == "macos":
            return list(mac_platforms(self.macos or DEFAULT_MACOS, info.tag_arch))
        return ["win32" if info.tag_arch == "win32" else f"win_{info.tag_arch}"]

    def tags(self) -> tuple[Tag, ...]:
        """Every wheel tag this target accepts, best first (the order pip and uv prefer)."""
        return _tags(self)

    def wheel_rank(self, filename: str) -> int | None:
        """Rank of a wheel for this target (0 is best) or ``None`` when the target cannot install it."""
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        ranks = _tag_ranks(self)
        return min((ranks[tag] for tag in wheel_tags if tag in ranks), default=None)

    def accepts(self, filename: str) -> bool:
        """Whether a wheel with this filename installs on the target."""
        return self.wheel_rank(filename) is not None

    def best_wheel(self, filenames: Iterable[str]) -> str | None:
        """The best-ranked wheel for this target among ``filenames`` (first one wins a tie), if any fits."""
        ranked = [(rank, i, f) for i, f in enumerate(filenames) if (rank := self.wheel_rank(f)) is not None]
        return min(ranked)[2] if ranked else None

    # -- markers ----------------------------------------------------------------------------------------------

    def marker_environment(self) -> dict[str, str]:
        """A complete PEP 508 environment for this target: no key is left for the host to fill in.

        ``platform_release`` and ``platform_version`` (kernel/OS build strings) are unknowable for a target and
        are empty, as in uv's resolution for a ``--python-platform``.
        """
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": _OS_MARKERS[self.info.os]["os_name"],
            "platform_machine": self.info.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": _OS_MARKERS[self.info.os]["platform_system"],
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": f"{self.python_version[0]}.{self.python_version[1]}",
            "sys_platform": _OS_MARKERS[self.info.os]["sys_platform"],
        }

    def evaluate(self, marker: Marker | str | None, *, extras: Iterable[str] = ()) -> bool:
        """Evaluate a PEP 508 marker for this target (``extra == …`` true for any of ``extras``)."""
        if marker is None:
            return True
        if isinstance(marker, str):
            try:
                marker = Marker(marker)
            except InvalidMarker as exc:
                raise InvalidTarget("marker", f"{marker!r} is not a valid PEP 508 marker: {exc}") from None
        environment: dict[str, str] = self.marker_environment()
        wanted = list(extras) or [""]
        return any(marker.evaluate({**environment, "extra": extra}) for extra in wanted)

    # -- uv -----------------------------------------------------------------------------------------------------

    @property
    def uv_python_platform(self) -> str:
        """The ``uv pip compile --python-platform`` value for this target.

        For glibc Linux it is the newest ``<arch>-manylinux_2_N`` uv knows that is not newer than the target's
        glibc, so uv never picks a wheel the target cannot load.
        """
        info = self.info
        if info.libc == "glibc" and self.glibc is not None:
            minor = max(m for m in UV_GLIBC_MINORS if m <= self.glibc[1]) if self.glibc[0] == 2 else 17
            return f"{info.uv_triple}-manylinux_2_{minor}"
        return info.uv_triple

    def report(self, tag_limit: int = 0) -> dict[str, object]:
        """Everything about the target for people and tools: platform, uv's view, markers, the first
        ``tag_limit`` wheel tags it accepts, best first (all with 0)."""
        tags = [str(tag) for tag in self.tags()]
        return {
            "name": self.name,
            "platform": self.platform,
            "python": self.python,
            "implementation": self.implementation,
            "abi": self.abi,
            **{k: v for k, v in self.to_dict().items() if k in ("glibc", "musl", "macos")},
            "uv_python_platform": self.uv_python_platform,
            "uv_environment": self.uv_environment(),
            "markers": self.marker_environment(),
            "tag_count": len(tags),
            "tags": tags[:tag_limit] if tag_limit else tags,
        }

    def uv_environment(self) -> dict[str, str]:
        """Environment variables uv needs to resolve for this target (the macOS version it assumes)."""
        if self.macos is not None:
            return {"MACOSX_DEPLOYMENT_TARGET": _format_version(self.macos)}
        return {}


@functools.lru_cache(maxsize=256)
def _tags(target: Target) -> tuple[Tag, ...]:
    platforms = target.platform_tags()
    version = target.python_version
    return (
        *cpython_tags(version, [target.abi], platforms),
        *compatible_tags(version, target.interpreter, platforms),
    )


@functools.lru_cache(maxsize=256)
def _tag_ranks(target: Target) -> dict[Tag, int]:
    ranks: dict[Tag, int] = {}
    for index, tag in enumerate(_tags(target)):
        ranks.setdefault(tag, index)
    return ranks


def _required_str(data: Mapping[str, object], key: str, where: str) -> str:
    if key not in data:
        raise InvalidTarget(f"{where}.{key}", "missing; it is required")
    value = _optional_str(data, key, where)
    assert value is not None
    return value


def _optional_str(data: Mapping[str, object], key: str, where: str) -> str | None:
    value = _FIELDS.optional_string(data.get(key), where, key)
    return None if value is None else value.strip()


_FIELDS = Fields(InvalidTarget, shown="type repr")


def _parse_version(raw: str, key: str) -> tuple[int, int]:
    m = _VERSION_RE.fullmatch(raw)
    if not m:
        raise InvalidTarget(key, f"{raw!r} is not a version; expected MAJOR.MINOR such as '2.28'")
    return int(m[1]), int(m[2])


def host_target(name: str | None = None) -> Target:
    """The target this interpreter runs on (platform, C library version, Python version)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for tag in platform_tags():
        parsed = parse_platform_tag(tag)
        if parsed is not None:
            info = PLATFORMS[parsed.platform]
            key = info.libc or info.os  # the spec key holding this platform's OS / C library version
            extra = {key: _format_version(parsed.version)} if parsed.version and key != "windows" else {}
            return Target.create(parsed.platform, version, name=name, **extra)
    raise InvalidTarget("host", "this machine's platform is not one offline-mirror can target; name one explicitly")
