"""mirror config: client configuration that sends every installer and build frontend to the mirror, and only there.

pip reads pip.conf, uv reads uv.toml and ignores pip.conf, and a legacy ``setup_requires`` is fetched by setuptools'
own fetcher (``pip wheel``) configured by ``[easy_install]`` in pydistutils.cfg: each one is a separate way back to
PyPI. :class:`ClientConfig` holds what they all need (the index URL, a trusted host, a CA bundle, a target's build
lock); the ``render_*`` functions are pure (a config in, the text of one file out) and :func:`render_files` renders
the set chosen with ``--for``. :func:`write_files` and :func:`install` are the file edges (atomic, with backups).

What every file guarantees: one index and nothing else. No generated file names PyPI or adds a second index — a
second index reopens dependency confusion and brings the offline failure back.

Facts this module relies on, checked against the tools:

* pip: ``build-constraint`` (``--build-constraint``, ``PIP_BUILD_CONSTRAINT``) constrains isolated build environments
  since pip 25.3 (pip changelog 25.3); an environment variable overrides the same key of any config file. pip ignores
  a plain-http index on a host other than loopback unless it is a ``trusted-host``; pip before 19.3 matches
  a trusted host only without its port (pypa/pip#6886), so the bare host is written too. pip reads config files with
  ``RawConfigParser`` (no ``%`` interpolation). Config files: ``$XDG_CONFIG_DIRS/pip/pip.conf`` then
  ``/etc/pip.conf`` (site-wide, the later wins), ``$XDG_CONFIG_HOME/pip/pip.conf`` (user), ``$VIRTUAL_ENV/pip.conf``.
* uv (docs.astral.sh/uv, settings reference and configuration files): top-level ``python-downloads = "never"``,
  ``index-strategy = "first-index"``, ``allow-insecure-host``, ``build-constraint-dependencies`` (read from uv.toml
  by ``uv pip`` and ``uv build``; ``uv lock/sync/run`` read it only from the workspace's pyproject.toml);
  ``[[index]]`` with ``default = true`` replaces PyPI. User config ``$XDG_CONFIG_HOME/uv/uv.toml``; system config
  ``$XDG_CONFIG_DIRS/uv/uv.toml`` (default ``/etc/xdg/uv/uv.toml``) *or* ``/etc/uv/uv.toml`` — the first found
  only. uv reads no configuration from a virtual environment (``UV_CONFIG_FILE`` names one). uv takes a CA bundle
  from ``SSL_CERT_FILE`` (no uv.toml key), and connects to plain-http hosts without ``allow-insecure-host``
  (checked with uv 0.13.9), which only skips TLS verification; it is written next to pip's ``trusted-host`` so
  that both clients name the same trusted host.
* setuptools (``setuptools/installer.py``): ``fetch_build_egg`` runs ``pip wheel --no-deps`` with ``--index-url``
  from ``[easy_install] index_url`` unless ``PIP_INDEX_URL`` is set, plus ``--find-links`` from ``find_links`` —
  never ``--no-index``. The file is read with an interpolating ``ConfigParser``, so ``%`` is written ``%%``.
  ``~/.pydistutils.cfg`` is the user's file; ``DIST_EXTRA_CONFIG`` names one more (setuptools >= 65.4).
* PEP 751 locks: uv installs one with ``uv pip install -r`` (since 0.6.15), pip since 26.1 (pip changelog 26.1:
  "experimental support to read requirements from standardized pylock.toml files (-r pylock.toml)"); both call it
  experimental. The file must be named ``pylock.toml`` or ``pylock.<name>.toml`` (uv refuses another name, pip reads
  it as a requirements file). Both download each file from its ``url`` and ignore ``--index-url`` for it; both take
  ``file://`` URLs and absolute ``path`` entries as well (checked with uv 0.13.9 and pip 26.3).
* Poetry: a ``primary`` source disables the implicit PyPI source (python-poetry/poetry#8771), but a source added to
  pyproject.toml changes the lock's content-hash and Poetry then refuses the lock; there is no PyPI-mirror setting
  (python-poetry/poetry#1632). ``mirror relocate-poetry-lock`` rewrites both together. PDM: ``pypi.url``,
  ``pypi.verify_ssl``, ``pypi.ca_certs`` in pdm.toml, ``PDM_PYPI_URL`` (project configuration, outside pdm.lock's
  content hash). Pipenv: ``PIPENV_PYPI_MIRROR`` replaces the PyPI URL in every operation without editing the
  Pipfile, whose hash Pipfile.lock holds. Each is run for real in tests/test_lock_clients.py.

Choices:

* **Build constraints.** The server serves only the wheelhouse tree, so the target's ``lockfiles/<target>.build.txt``
  is copied next to the other files as ``build-constraints.txt`` and pip.conf names it by absolute path: the output
  directory's copy (usable in place, ``PIP_CONFIG_FILE=client-config/pip.conf``), ``/etc/pip-build-constraints.txt``
  in a container (the Dockerfile snippet copies it there and sets ``PIP_BUILD_CONSTRAINT``, which overrides the
  path in the copied pip.conf), ``/etc/xdg/pip/build-constraints.txt`` in Kubernetes, next to pip.conf for
  ``--install``. uv.toml carries the active pins inline (``build-constraint-dependencies``), so it has no path.
* **Local trees** (``--find-links PATH``, a wheelhouse mounted with no server): pip's ``find-links`` and uv's flat
  indexes list one directory and do not descend into the tree's ``files/<project>/`` directories (checked: pip 26.3
  and uv 0.13.9 find nothing there), so pip, uv and setuptools all get ``PATH/simple`` as a ``file://`` simple
  index — which keeps hashes, ``requires-python`` and PEP 658 metadata, and never falls back to a network index.
* **The runtime lock** (``--target``): ``lockfiles/pylock.<target>.toml`` records the upstream's URLs, so a copy
  ``pylock.<target>.toml`` is written for pip and uv with every file at the mirror's ``/files/<project>/<file>``
  and ``index`` at its ``/simple/`` — wheels built here included, which the lock can only name by a path relative
  to the lockfiles. The mirror's static tree has ``files/`` beside ``simple/``, so the copy needs an ``--url``
  ending in ``/simple/`` (another server's file URLs are unknown: no copy, and a line says so). With
  ``--find-links`` the URLs are the tree's ``file://`` URLs. Only files the wheelhouse holds (present, verified)
  are named; a package with none is an error.
* **Credentials** (``https://user:token@host/simple``) are written only when the URL carries them; every file that
  holds the URL is then mode 0600, and the Kubernetes manifest is a Secret instead of a ConfigMap.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from mirror import _atomic
from mirror.errors import MirrorError
from mirror.layout import SIMPLE
from mirror.lockfile import Served, check_served, pylock_name, render_served_pylock
from mirror.manifest import Manifest, TargetEntry
from mirror.spec import Spec, load_spec

__all__ = [
    "BUILD_CONSTRAINTS",
    "CLIENTS",
    "INSTALLABLE",
    "BuildLock",
    "Change",
    "ClientConfig",
    "ClientConfigError",
    "InstallScope",
    "Placement",
    "RuntimeLock",
    "TargetLocks",
    "file_names",
    "install",
    "install_plan",
    "load_build_lock",
    "load_runtime_lock",
    "parse_clients",
    "render_dockerfile",
    "render_env",
    "render_files",
    "render_k8s",
    "render_pdm_toml",
    "render_pip_conf",
    "render_pipenv",
    "render_poetry",
    "render_pydistutils_cfg",
    "render_uv_toml",
    "summary",
    "write_files",
]

BUILD_CONSTRAINTS = "build-constraints.txt"
# --for names, in the order files are written, and the files each one needs (docker and k8s embed or copy the
# files of pip, uv and setuptools)
CLIENTS: tuple[str, ...] = ("pip", "uv", "setuptools", "env", "docker", "k8s", "poetry", "pdm", "pipenv")
_FILES: dict[str, tuple[str, ...]] = {
    "pip": ("pip.conf",),
    "uv": ("uv.toml",),
    "setuptools": ("pydistutils.cfg",),
    "env": ("mirror.env",),
    "docker": ("pip.conf", "uv.toml", "pydistutils.cfg", "Dockerfile.snippet"),
    "k8s": ("k8s-configmap.yaml",),
    "poetry": ("poetry.txt",),
    "pdm": ("pdm.toml",),
    "pipenv": ("pipenv.txt",),
}
INSTALLABLE: tuple[str, ...] = ("pip", "uv", "setuptools")  # what --install puts into this host's locations

# Where containers find the files (Dockerfile.snippet copies them there; the Kubernetes volumes mount directories,
# never single files with subPath, so that an updated ConfigMap reaches running pods)
DOCKER_PIP_CONF = "/etc/pip.conf"
DOCKER_UV_TOML = "/etc/uv/uv.toml"
DOCKER_PYDISTUTILS = "/root/.pydistutils.cfg"
DOCKER_CONSTRAINTS = "/etc/pip-build-constraints.txt"
K8S_PIP_DIR = "/etc/xdg/pip"
K8S_UV_DIR = "/etc/uv"
K8S_NAME = "offline-mirror-client"

# Characters that would need quoting in mirror.env (a KEY=value file for docker --env-file, systemd and sh) or
# escaping elsewhere: such a URL or path is refused rather than written half-right. Percent-encode them in a URL.
_UNSAFE = re.compile(r"[\s\"'`\\$;&|<>()\x00-\x1f\x7f]")
_PYPI_HOSTS = ("pypi.org", "pypi.python.org", "files.pythonhosted.org", "test.pypi.org")


class ClientConfigError(MirrorError):
    """A client configuration cannot be made as asked, or cannot be written."""


# --- the build lock ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildLock:
    """The active pins of a target's ``<target>.build.txt``, with their hashes.

    Comments are dropped — among them the lock's header, which names the upstream the lock was resolved from
    (PyPI, usually): nothing written for clients names it.
    """

    target: str
    entries: tuple[tuple[str, tuple[str, ...]], ...]  # ("name==version", ("sha256:…", …)), in file order

    @property
    def pins(self) -> tuple[str, ...]:
        return tuple(pin for pin, _ in self.entries)

    @classmethod
    def parse(cls, text: str, *, target: str, where: str) -> BuildLock:
        """Read the active pins of a build lock; ``where`` names the file in errors (``file:line: …``).

        Versions the lock keeps only as comments (conflicting build requirements) are not active.
        """
        entries: list[tuple[str, list[str]]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            item = line.strip().removesuffix("\\").strip()
            if not item or item.startswith("#"):
                continue
            if line[0] in " \t":  # a continuation: --hash=sha256:…
                option, _, digest = item.partition("=")
                if option != "--hash" or not entries:
                    raise ClientConfigError(f"{where}:{number}: {item!r} is not a --hash of a pin")
                entries[-1][1].append(digest)
                continue
            try:
                requirement = Requirement(item)
            except InvalidRequirement as exc:
                raise ClientConfigError(f"{where}:{number}: {item!r} is not a requirement: {exc}") from None
            specifiers = list(requirement.specifier)
            exact = len(specifiers) == 1 and specifiers[0].operator == "=="
            if not exact or requirement.url or requirement.extras or requirement.marker is not None:
                raise ClientConfigError(f"{where}:{number}: {item!r} is not a pin (name==version)")
            entries.append((f"{requirement.name}=={specifiers[0].version}", []))
        return cls(target=target, entries=tuple((pin, tuple(hashes)) for pin, hashes in entries))

    def render(self) -> str:
        """``build-constraints.txt``: the pins with their hashes, for pip's ``build-constraint``."""
        lines = [
            f"# The build lock of target {self.target} (lockfiles/{self.target}.build.txt, mirror lock): the versions",
            "# isolated builds get. Written by offline-mirror (mirror config); pip.conf names it (pip >= 25.3).",
        ]
        for pin, hashes in self.entries:
            lines.append(pin + (" \\" if hashes else ""))
            lines += [f"    --hash={h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes)]
        return "\n".join(lines) + "\n"


def load_build_lock(lockfiles: Path, target: str) -> BuildLock:
    """``lockfiles/<target>.build.txt``, parsed."""
    path = lockfiles / f"{target}.build.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClientConfigError(f"{path}: no such file; run mirror lock") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientConfigError(f"{path}: cannot read: {exc}") from None
    return BuildLock.parse(text, target=target, where=str(path))


@dataclass(frozen=True, kw_only=True, slots=True)
class RuntimeLock:
    """A target's runtime lock and the files the wheelhouse holds: what ``pylock.<target>.toml`` is made of."""

    entry: TargetEntry
    manifest: Manifest
    held: frozenset[str]  # file names present and verified in the wheelhouse

    @property
    def file_name(self) -> str:
        return pylock_name(self.entry.name)

    def render(self, root: str) -> str:
        """The PEP 751 lock for clients of the static tree at ``root`` (``root/files/``, ``root/simple/``)."""
        return render_served_pylock(self.entry, self.manifest, Served(root=root, held=self.held))


def load_runtime_lock(spec: Spec, target: str) -> RuntimeLock:
    """The current lock of ``target`` (wheels built here included) and the files the wheelhouse holds; raises when
    a package it installs has none."""
    from mirror._verified import verified_files
    from mirror.workspace import Workspace

    workspace = Workspace(spec)
    manifest = workspace.manifest()
    entry = manifest.target(target)
    ready, _ = verified_files(manifest, workspace.layout.files, purpose="named in a pylock")
    held = frozenset(file.filename for file in ready)
    try:
        check_served(entry, manifest, held)
    except MirrorError as exc:
        raise ClientConfigError(str(exc)) from None
    return RuntimeLock(entry=entry, manifest=manifest, held=held)


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetLocks:
    """What ``--target`` adds: the build lock and the runtime lock (both ``None`` without it); and the spec's
    target names, for the line that says how to get them."""

    build: BuildLock | None = None
    runtime: RuntimeLock | None = None
    targets: tuple[str, ...] = ()

    @classmethod
    def load(cls, spec_path: Path, target: str | None, *, runtime: bool = True) -> TargetLocks:
        """``runtime``: also the runtime lock (``--install`` writes no pylock)."""
        if target is None:
            try:
                return cls(targets=tuple(t.name for t in load_spec(spec_path).targets))
            except MirrorError:  # no workspace here (or a broken one): the names are only a hint
                return cls()
        spec = load_spec(spec_path)
        name = spec.target(target).name
        return cls(
            build=load_build_lock(spec.lockfiles, name),
            runtime=load_runtime_lock(spec, name) if runtime else None,
            targets=tuple(t.name for t in spec.targets),
        )


# --- the configuration ------------------------------------------------------------------------------------------


def _check_safe(option: str, value: str) -> None:
    bad = _UNSAFE.search(value)
    if bad:
        raise ClientConfigError(f"{option}: {value!r} contains {bad.group()!r}; percent-encode it or choose another")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """What every client is told. Build one with :meth:`for_url` or :meth:`for_local_tree`."""

    index_url: str  # the Simple API root clients use: http(s)://…/simple/ or file:///…/simple/
    local_tree: str | None = None  # --find-links: the wheelhouse tree as mounted on the clients (no server)
    cert: str | None = None  # a CA bundle's path on the clients
    build_lock: BuildLock | None = None
    runtime_lock: RuntimeLock | None = None  # pylock.<target>.toml for pip and uv, every URL on the mirror

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        cert: str | None = None,
        build_lock: BuildLock | None = None,
        runtime_lock: RuntimeLock | None = None,
    ) -> ClientConfig:
        """Clients of a mirror served at ``url`` (its Simple API root, e.g. ``http://mirror:3141/simple/``)."""
        _check_safe("--url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientConfigError(f"--url: {url!r} is not an http:// or https:// URL")
        host = parts.hostname.lower().rstrip(".")  # "pypi.org." is pypi.org too
        if host in _PYPI_HOSTS or host.endswith(".pypi.org"):
            raise ClientConfigError(f"--url: {url!r} is PyPI itself; give the URL of the mirror")
        if cert is not None:
            _check_safe("--cert", cert)
            if not PurePosixPath(cert).is_absolute():
                raise ClientConfigError(f"--cert: {cert!r} must be an absolute path (the CA bundle on the clients)")
        return cls(index_url=url, cert=cert, build_lock=build_lock, runtime_lock=runtime_lock)

    @classmethod
    def for_local_tree(
        cls, path: str, *, build_lock: BuildLock | None = None, runtime_lock: RuntimeLock | None = None
    ) -> ClientConfig:
        """Clients that read the wheelhouse tree at ``path`` (holding ``simple/`` and ``files/``) with no server."""
        _check_safe("--find-links", path)
        tree = PurePosixPath(path)
        if not tree.is_absolute():
            raise ClientConfigError(f"--find-links: {path!r} must be an absolute path (the tree on the clients)")
        index_url = (tree / SIMPLE).as_uri() + "/"
        return cls(index_url=index_url, local_tree=str(tree), build_lock=build_lock, runtime_lock=runtime_lock)

    @classmethod
    def for_mirror(
        cls,
        *,
        url: str | None = None,
        find_links: str | None = None,
        cert: str | None = None,
        build_lock: BuildLock | None = None,
        runtime_lock: RuntimeLock | None = None,
    ) -> ClientConfig:
        """Clients of the mirror at ``url`` or of the tree at ``find_links`` (exactly one); relative paths
        (``cert``, ``find_links``) are made absolute."""
        if (url is None) == (find_links is None):
            raise ClientConfigError("give either --url (a served mirror) or --find-links (a wheelhouse with no server)")
        if url is not None:
            absolute_cert = str(Path(cert).absolute()) if cert is not None else None
            return cls.for_url(url, cert=absolute_cert, build_lock=build_lock, runtime_lock=runtime_lock)
        assert find_links is not None
        return cls.for_local_tree(str(Path(find_links).absolute()), build_lock=build_lock, runtime_lock=runtime_lock)

    @property
    def trusted_host(self) -> str | None:
        """``host[:port]`` pip must trust: plain http to a host that is not loopback (pip ignores it otherwise)."""
        parts = urlsplit(self.index_url)
        if parts.scheme != "http" or parts.hostname is None or _is_loopback(parts.hostname):
            return None
        return parts.netloc.rpartition("@")[2]

    @property
    def trusted_hostname(self) -> str | None:
        """The trusted host without its port (an IPv6 address without brackets): the form every pip matches.

        pip before 19.3 (9.0.3 on CentOS 7, 9.0.1 on Ubuntu 18.04 and Debian 10, 18.1 in a ``python3.6 -m venv``)
        compares a trusted host with the index URL's host alone, so ``mirror:3141`` never matches and the index
        is ignored ("is not a trusted or secure host and is being ignored"; pypa/pip#6886, fixed in 19.3). From
        19.3 on, a host given without a port is trusted on every port, and ``fd00::2`` is read as ``[fd00::2]``.
        """
        if self.trusted_host is None:
            return None
        return urlsplit(self.index_url).hostname

    @property
    def pip_trusted_hosts(self) -> tuple[str, ...]:
        """pip.conf's ``trusted-host`` values: ``host:port`` (what pip >= 19.3 matches exactly) and, when the URL has
        a port, the bare host for older pips (:attr:`trusted_hostname`). pip splits a multi-value option's config
        value on whitespace, newlines included (``ConfigOptionParser._update_defaults``, since pip 8)."""
        if self.trusted_host is None or self.trusted_hostname is None:
            return ()
        return tuple(dict.fromkeys((self.trusted_host, self.trusted_hostname)))

    @property
    def uv_insecure_host(self) -> str | None:
        """The trusted host as uv's ``allow-insecure-host`` takes it: uv rejects IPv6 literals there (uv 0.13.9:
        "invalid port for `--trusted-host`") and needs none for plain http, so an IPv6 host gets no entry."""
        host = self.trusted_host
        return None if host is None or host.startswith("[") else host

    @property
    def has_credentials(self) -> bool:
        """The URL carries a user name or password: files holding it are written mode 0600."""
        parts = urlsplit(self.index_url)
        return parts.username is not None or parts.password is not None

    @property
    def public_url(self) -> str:
        """The index URL without credentials (for messages)."""
        parts = urlsplit(self.index_url)
        if not self.has_credentials:
            return self.index_url
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    @property
    def files_root(self) -> str | None:
        """The root of the mirror's static tree, under which ``files/<project>/<file>`` sits beside ``simple/``:
        the tree's ``file://`` URL, or ``--url`` without its final ``/simple/``; ``None`` when ``--url`` does not
        end in ``/simple/`` (another server, whose file URLs are unknown)."""
        if self.local_tree is not None:
            return PurePosixPath(self.local_tree).as_uri().removesuffix("/")
        parts = urlsplit(self.index_url)
        path = parts.path.rstrip("/")
        if not path.endswith("/" + SIMPLE) or parts.query or parts.fragment:
            return None
        return parts._replace(path=path.removesuffix("/" + SIMPLE)).geturl()

    @property
    def pylock(self) -> str | None:
        """The name of the runtime lock written for pip and uv, if any (a target's, on a known static tree)."""
        if self.runtime_lock is None or self.files_root is None:
            return None
        return self.runtime_lock.file_name


# --- renderers (pure) -------------------------------------------------------------------------------------------


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def render_pip_conf(config: ClientConfig, *, build_constraint: str | None = None) -> str:
    """pip.conf: the mirror as the only index; ``build_constraint`` is where the build lock is on that machine."""
    where = f"the wheelhouse at {config.local_tree} (no server)" if config.local_tree else "the offline mirror"
    lines = [
        f"# pip: {where} is the only index. Written by offline-mirror (mirror config).",
        "# One index and no second one: a second index reopens dependency confusion and the offline failure.",
        "[global]",
        f"index-url = {config.index_url}",
    ]
    if config.pip_trusted_hosts:
        lines.append("# plain http off loopback: pip ignores the index unless its host is trusted")
        first, *rest = config.pip_trusted_hosts
        if rest:
            lines.append("# pip < 19.3 (CentOS 7, Ubuntu 18.04, Debian 10) matches only the host without its port")
        lines.append(f"trusted-host = {first}")
        lines += [f"    {host}" for host in rest]
    if config.cert:
        lines.append(f"cert = {config.cert}")
    if config.build_lock is not None and build_constraint is not None:
        lines.append(
            f"# the build lock of target {config.build_lock.target}; pip >= 25.3 applies it to isolated builds"
        )
        lines.append(f"build-constraint = {build_constraint}")
    return "\n".join(lines) + "\n"


def render_uv_toml(config: ClientConfig) -> str:
    """uv.toml: top-level settings first (a key after ``[[index]]`` would belong to it), then the one index."""
    where = f"the wheelhouse at {config.local_tree} (no server)" if config.local_tree else "the offline mirror"
    lines = [
        f"# uv: {where} is the only index. Written by offline-mirror (mirror config).",
        "# Top-level settings come first: a key written after [[index]] would belong to the index table.",
        'python-downloads = "never"',
        'index-strategy = "first-index"',
    ]
    if config.uv_insecure_host:
        lines.append(f"allow-insecure-host = [{_toml(config.uv_insecure_host)}]")
    if config.cert:
        lines.append(f"# TLS: uv reads the CA bundle from SSL_CERT_FILE={config.cert} (mirror.env); uv.toml has no key")
    if config.build_lock is not None and config.build_lock.pins:
        lines.append(
            f"# the build lock of target {config.build_lock.target}, for uv pip and uv build"
            " (uv lock/sync/run read pyproject.toml's)"
        )
        lines.append("build-constraint-dependencies = [")
        lines += [f"    {_toml(pin)}," for pin in config.build_lock.pins]
        lines.append("]")
    lines += ["", "[[index]]", 'name = "mirror"', f"url = {_toml(config.index_url)}", "default = true"]
    return "\n".join(lines) + "\n"


def render_pydistutils_cfg(config: ClientConfig) -> str:
    """pydistutils.cfg: where setuptools' own fetcher (legacy ``setup_requires``) gets packages."""
    lines = [
        "# setuptools: legacy setup_requires, fetched by setuptools' own fetcher (pip wheel), come from the mirror",
        "# only. Written by offline-mirror (mirror config). Install as ~/.pydistutils.cfg, or name it in",
        "# DIST_EXTRA_CONFIG (setuptools >= 65.4). PIP_INDEX_URL, when set, wins over index_url.",
    ]
    if config.trusted_host:
        lines.append(
            "# plain http off loopback: the fetcher's pip also needs trusted-host (pip.conf or PIP_TRUSTED_HOST)"
        )
    lines += ["[easy_install]", f"index_url = {config.index_url.replace('%', '%%')}"]
    return "\n".join(lines) + "\n"


def _environment(config: ClientConfig, *, build_constraint: str | None = None) -> list[tuple[str, str]]:
    env = [("PIP_INDEX_URL", config.index_url)]
    if config.trusted_hostname:
        # the bare host: every pip matches it (pip < 19.3 ignores host:port), and one word needs no quoting in
        # mirror.env, which docker --env-file, systemd and sh all read
        env.append(("PIP_TRUSTED_HOST", config.trusted_hostname))
    if config.cert:
        env.append(("PIP_CERT", config.cert))
    if config.build_lock is not None and build_constraint is not None:
        env.append(("PIP_BUILD_CONSTRAINT", build_constraint))
    env.append(("UV_DEFAULT_INDEX", config.index_url))
    if config.uv_insecure_host:
        env.append(("UV_INSECURE_HOST", config.uv_insecure_host))
    env.append(("UV_PYTHON_DOWNLOADS", "never"))
    if config.cert:
        env.append(("SSL_CERT_FILE", config.cert))
    env += [("PDM_PYPI_URL", config.index_url), ("PIPENV_PYPI_MIRROR", config.index_url)]
    return env


def render_env(config: ClientConfig) -> str:
    """mirror.env: ``KEY=value`` lines, no quoting (values never need it), for docker, systemd and sh alike."""
    lines = [
        "# The offline mirror for every client, by environment. Written by offline-mirror (mirror config).",
        "# docker run --env-file mirror.env | systemd EnvironmentFile= | sh: set -a; . ./mirror.env; set +a",
    ]
    lines += [f"{key}={value}" for key, value in _environment(config)]
    return "\n".join(lines) + "\n"


def render_dockerfile(config: ClientConfig, *, context: str = "client-config") -> str:
    """Dockerfile.snippet: COPY the files (``context``: their directory in the build context) and the ENV lines."""
    source = PurePosixPath(context)
    lines = [
        "# The offline mirror for every installer and build frontend in the image. Written by offline-mirror",
        f"# (mirror config); paste into the Dockerfile before the first install. {context}/ is in the build context.",
    ]
    if config.local_tree:
        lines.append(f"# The wheelhouse must be at {config.local_tree} in the image (COPY it or RUN --mount it).")
    if config.has_credentials:
        lines.append("# The URL holds credentials: ENV and COPY keep them in the image; prefer build secrets.")
    lines += [
        f"COPY {source / 'pip.conf'} {DOCKER_PIP_CONF}",
        f"COPY {source / 'uv.toml'} {DOCKER_UV_TOML}",
        f"COPY {source / 'pydistutils.cfg'} {DOCKER_PYDISTUTILS}",
    ]
    constraint = None
    if config.build_lock is not None:
        constraint = DOCKER_CONSTRAINTS
        lines.append(f"COPY {source / BUILD_CONSTRAINTS} {DOCKER_CONSTRAINTS}")
        lines.append("# PIP_BUILD_CONSTRAINT overrides the build-constraint path pip.conf has outside the image")
    env = _environment(config, build_constraint=constraint)
    lines.append("ENV " + " \\\n    ".join(f"{key}={value}" for key, value in env))
    return "\n".join(lines) + "\n"


def _block(text: str, indent: str) -> list[str]:
    return [f"{indent}{line}" if line else "" for line in text.splitlines()]


def render_k8s(config: ClientConfig) -> str:
    """k8s-configmap.yaml: a ConfigMap (a Secret when the URL holds credentials) and the pod template to merge.

    pip.conf, the build lock and pydistutils.cfg are mounted as the directory /etc/xdg/pip, uv.toml as /etc/uv
    (no subPath: an updated ConfigMap reaches running pods); the environment variables are set too, because they
    win over any /etc/pip.conf or /etc/xdg/uv/uv.toml the image has.
    """
    constraint = f"{K8S_PIP_DIR}/{BUILD_CONSTRAINTS}" if config.build_lock is not None else None
    files = {
        "pip.conf": render_pip_conf(config, build_constraint=constraint),
        "pydistutils.cfg": render_pydistutils_cfg(config),
    }
    if config.build_lock is not None:
        files[BUILD_CONSTRAINTS] = config.build_lock.render()
    kind, data = ("Secret", "stringData") if config.has_credentials else ("ConfigMap", "data")
    lines = [
        "# The offline mirror for every installer and build frontend in a pod. Written by offline-mirror",
        "# (mirror config). kubectl apply -f the first document; merge the second into the pod template.",
    ]
    if config.local_tree:
        lines.append(f"# The wheelhouse must be mounted at {config.local_tree} in the container.")
    lines += ["apiVersion: v1", f"kind: {kind}", "metadata:", f"  name: {K8S_NAME}", f"{data}:"]
    for name, text in [*files.items(), ("uv.toml", render_uv_toml(config))]:
        lines.append(f"  {name}: |")
        lines += _block(text, "    ")
    env = [*_environment(config, build_constraint=constraint), ("DIST_EXTRA_CONFIG", f"{K8S_PIP_DIR}/pydistutils.cfg")]
    source = "secret" if config.has_credentials else "configMap"
    ref = "secretName" if config.has_credentials else "name"
    lines += [
        "---",
        "# Merge into the pod template (e.g. kubectl patch deployment NAME --patch-file); rename the container.",
        "spec:",
        "  template:",
        "    spec:",
        "      containers:",
        "        - name: app",
        "          env:",
    ]
    for key, value in env:
        lines += [f"            - name: {key}", f"              value: {_toml(value)}"]
    lines += [
        "          volumeMounts:",
        "            - name: mirror-pip",
        f"              mountPath: {K8S_PIP_DIR}",
        "              readOnly: true",
        "            - name: mirror-uv",
        f"              mountPath: {K8S_UV_DIR}",
        "              readOnly: true",
        "      volumes:",
        "        - name: mirror-pip",
        f"          {source}:",
        f"            {ref}: {K8S_NAME}",
        "            items:",
    ]
    for name in files:
        lines += [f"              - key: {name}", f"                path: {name}"]
    lines += [
        "        - name: mirror-uv",
        f"          {source}:",
        f"            {ref}: {K8S_NAME}",
        "            items:",
        "              - key: uv.toml",
        "                path: uv.toml",
    ]
    return "\n".join(lines) + "\n"


def render_poetry(config: ClientConfig) -> str:
    """poetry.txt: how a Poetry project installs its poetry.lock from the mirror (tests/test_lock_clients.py)."""
    url = shlex.quote(config.index_url)
    lines = [
        "# Poetry: install the project's poetry.lock from the mirror. Written by offline-mirror (mirror config).",
        '# Poetry has no PyPI-mirror setting, and `poetry source add` alone makes it refuse the lock ("pyproject.toml',
        '# changed significantly"): point the project and its lock at the mirror together (a primary source',
        "# 'mirror', every locked package from it, versions and hashes kept, the lock's content-hash computed again).",
        "# In the project directory (offline-mirror installed, e.g. by a bundle's install.sh):",
        f"mirror relocate-poetry-lock . --url {url}",
    ]
    if config.cert:
        lines.append(f"poetry config certificates.mirror.cert {shlex.quote(config.cert)}")
    lines += [
        "poetry install --only main",
        "# (--only main unless the mirror's lock entry names the project's other groups too)",
    ]
    return "\n".join(lines) + "\n"


def render_pdm_toml(config: ClientConfig) -> str:
    """pdm.toml: PDM's project configuration (next to pyproject.toml) with the mirror as ``pypi.url``."""
    lines = [
        "# PDM: the mirror as the only index. Written by offline-mirror (mirror config). Save as pdm.toml next",
        "# to pyproject.toml (project configuration), or set PDM_PYPI_URL (mirror.env).",
        "[pypi]",
        f"url = {_toml(config.index_url)}",
    ]
    if config.trusted_host:
        lines.append("verify_ssl = false")
    if config.cert:
        lines.append(f"ca_certs = {_toml(config.cert)}")
    return "\n".join(lines) + "\n"


def render_pipenv(config: ClientConfig) -> str:
    """pipenv.txt: how a Pipenv project installs its Pipfile.lock from the mirror (tests/test_lock_clients.py)."""
    lines = [
        "# Pipenv: install the project's Pipfile.lock from the mirror. Written by offline-mirror (mirror config).",
        "# Keep the Pipfile as it is: Pipfile.lock holds its hash and `pipenv install --deploy` refuses a changed",
        "# one. PIPENV_PYPI_MIRROR puts the mirror in place of PyPI for every operation (mirror.env sets it, and",
        "# pip's trusted host for a plain-http mirror). In the project directory:",
        "set -a; . ./mirror.env; set +a",
        "pipenv install --deploy",
        f"# or, alone: PIPENV_PYPI_MIRROR={shlex.quote(config.index_url)} pipenv install --deploy",
    ]
    return "\n".join(lines) + "\n"


def parse_clients(value: str) -> tuple[str, ...]:
    """``--for``: ``all`` or a comma-separated list of :data:`CLIENTS`, in :data:`CLIENTS` order."""
    names = {name.strip() for name in value.split(",") if name.strip()}
    if not names:
        raise ClientConfigError(f"--for: {value!r} names no client; choose from all, {', '.join(CLIENTS)}")
    if "all" in names:
        return CLIENTS
    unknown = sorted(names - set(CLIENTS))
    if unknown:
        raise ClientConfigError(f"--for: {unknown[0]!r} is not a client; choose from all, {', '.join(CLIENTS)}")
    return tuple(name for name in CLIENTS if name in names)


def file_names(clients: Iterable[str], *, build_lock: bool, pylock: str | None = None) -> list[str]:
    """The files the chosen clients need, in writing order (``build-constraints.txt`` with pip or docker; the
    runtime lock ``pylock``, if any, with pip or uv)."""
    chosen = set(clients)
    names: list[str] = []
    for client in CLIENTS:
        if client in chosen:
            names += [name for name in _FILES[client] if name not in names]
    if build_lock and chosen & {"pip", "docker"}:
        names.append(BUILD_CONSTRAINTS)
    if pylock is not None and chosen & {"pip", "uv"}:
        names.append(pylock)
    return names


def render_files(
    config: ClientConfig,
    *,
    clients: Iterable[str] = CLIENTS,
    build_constraint: str | None = None,
    docker_context: str = "client-config",
) -> dict[str, str]:
    """File name -> text for the chosen clients. ``build_constraint``: the absolute path pip.conf gives for
    ``build-constraints.txt`` (where the output directory's copy is)."""
    renderers: dict[str, Callable[[], str]] = {
        "pip.conf": lambda: render_pip_conf(config, build_constraint=build_constraint),
        "uv.toml": lambda: render_uv_toml(config),
        "pydistutils.cfg": lambda: render_pydistutils_cfg(config),
        "mirror.env": lambda: render_env(config),
        "Dockerfile.snippet": lambda: render_dockerfile(config, context=docker_context),
        "k8s-configmap.yaml": lambda: render_k8s(config),
        "poetry.txt": lambda: render_poetry(config),
        "pdm.toml": lambda: render_pdm_toml(config),
        "pipenv.txt": lambda: render_pipenv(config),
        BUILD_CONSTRAINTS: lambda: config.build_lock.render() if config.build_lock is not None else "",
    }
    pylock = config.pylock
    if pylock is not None:
        lock, root = config.runtime_lock, config.files_root
        assert lock is not None and root is not None
        renderers[pylock] = lambda: lock.render(root)
    names = file_names(clients, build_lock=config.build_lock is not None, pylock=pylock)
    return {name: renderers[name]() for name in names}


def summary(
    config: ClientConfig,
    files: Mapping[str, str],
    *,
    out: Path,
    clients: Iterable[str] = CLIENTS,
    targets: Iterable[str] = (),
) -> list[str]:
    """What ``mirror config`` says after writing ``files`` into ``out`` (as the user named it): credentials, what
    ``--target`` would add, the index, and a command to try for each installer. ``targets``: the spec's."""
    lines = []
    if config.has_credentials:
        lines.append("the URL holds credentials: every file holding it is mode 0600")
    if config.build_lock is None:
        lines.append("no --target: builds are not pinned to a build lock (add --target NAME)")
    names = list(targets)
    installers = set(clients) & {"pip", "uv"}
    if config.runtime_lock is None and names and installers and config.files_root is not None:
        lines.append(f"no --target: no pylock.<target>.toml for pip and uv either (targets: {', '.join(names)})")
    if config.runtime_lock is not None and config.pylock is None:
        lines.append(
            f"no {config.runtime_lock.file_name}: --url does not end in /{SIMPLE}/, so the mirror's file URLs are"
            " unknown (give the URL of the static tree's /simple/)"
        )
    lines.append(f"index: {config.public_url}")
    if "pip.conf" in files:
        lines.append(f"  try: PIP_CONFIG_FILE={out / 'pip.conf'} pip install PACKAGE")
    if "uv.toml" in files:
        lines.append(f"  try: UV_CONFIG_FILE={out / 'uv.toml'} uv pip install PACKAGE")
    pylock = config.pylock
    if pylock is not None and pylock in files:
        if "pip.conf" in files:
            lines.append(f"  try: PIP_CONFIG_FILE={out / 'pip.conf'} pip install -r {out / pylock}   (pip >= 26.1)")
        if "uv.toml" in files:
            lines.append(f"  try: UV_CONFIG_FILE={out / 'uv.toml'} uv pip install -r {out / pylock}")
    return lines


def _mode(config: ClientConfig, name: str) -> int:
    return 0o600 if config.has_credentials and name != BUILD_CONSTRAINTS else 0o644


def write_files(out_dir: Path, files: Mapping[str, str], config: ClientConfig) -> list[Path]:
    """Write each file atomically into ``out_dir``; 0600 for those holding credentials. The paths written."""
    written = []
    for name, text in files.items():
        path = out_dir / name
        try:
            _atomic.write_text(path, text, mode=_mode(config, name))
        except OSError as exc:
            raise ClientConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written


# --- installing into this host's locations ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallScope:
    """``--scope``: ``system``, ``user`` or ``venv[=PATH]`` (PATH defaults to the active virtual environment)."""

    kind: Literal["system", "user", "venv"]
    venv: Path | None = None

    @classmethod
    def parse(cls, value: str, *, virtual_env: str | None = None) -> InstallScope:
        kind, sep, path = value.partition("=")
        if kind in ("system", "user") and not sep:
            return cls(kind="system" if kind == "system" else "user")
        if kind != "venv":
            raise ClientConfigError(f"--scope: {value!r} is not system, user or venv[=PATH]")
        if not path:
            if not virtual_env:
                raise ClientConfigError("--scope: venv needs =PATH when no virtual environment is active")
            path = virtual_env
        return cls(kind="venv", venv=Path(path))


@dataclass(frozen=True, kw_only=True, slots=True)
class Placement:
    """One file to install: where, what, with which mode."""

    path: Path
    text: str
    mode: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """What :func:`install` did to one path."""

    path: Path
    action: Literal["created", "replaced", "unchanged"]
    backup: Path | None = None  # the previous file, for "replaced"


def install_plan(
    config: ClientConfig,
    scope: InstallScope,
    *,
    clients: Iterable[str] = INSTALLABLE,
    home: Path,
    xdg_config_home: Path | None = None,
    exists: Callable[[Path], bool] = Path.exists,
) -> tuple[list[Placement], list[str]]:
    """The files to write for ``scope`` on this host and notes for the user (what each client will not see).

    system: /etc/pip.conf, /etc/uv/uv.toml, /etc/pip-build-constraints.txt, and the invoking user's
    ~/.pydistutils.cfg (setuptools has no site-wide file outside its own install). user: $XDG_CONFIG_HOME/pip/pip.conf
    and uv/uv.toml, ~/.pydistutils.cfg. venv=PATH: PATH/pip.conf and PATH/uv.toml (uv reads it only through
    UV_CONFIG_FILE).
    """
    chosen = [c for c in INSTALLABLE if c in set(clients)]
    if not chosen:
        raise ClientConfigError(f"--install: --for names nothing to install; installable: {', '.join(INSTALLABLE)}")
    notes: list[str] = []
    config_home = xdg_config_home or home / ".config"
    pydistutils: Path | None = home / ".pydistutils.cfg"
    if scope.kind == "system":
        pip_conf, uv_toml, constraints = Path("/etc/pip.conf"), Path("/etc/uv/uv.toml"), Path(DOCKER_CONSTRAINTS)
        if "uv" in chosen and exists(Path("/etc/xdg/uv/uv.toml")):
            notes.append("uv reads /etc/xdg/uv/uv.toml instead of /etc/uv/uv.toml: remove it, or use UV_CONFIG_FILE")
        if "setuptools" in chosen:
            notes.append(f"setuptools has no site-wide file: {pydistutils} serves the user running setup.py")
    elif scope.kind == "user":
        pip_conf, uv_toml = config_home / "pip" / "pip.conf", config_home / "uv" / "uv.toml"
        constraints = config_home / "pip" / BUILD_CONSTRAINTS
    else:
        assert scope.venv is not None
        if not (scope.venv / "pyvenv.cfg").is_file():
            raise ClientConfigError(f"--scope: {scope.venv} is not a virtual environment (no pyvenv.cfg)")
        pip_conf, uv_toml, constraints = scope.venv / "pip.conf", scope.venv / "uv.toml", scope.venv / BUILD_CONSTRAINTS
        pydistutils = None
        if "uv" in chosen:
            notes.append(f"uv reads no configuration from a virtual environment: export UV_CONFIG_FILE={uv_toml}")
        if "setuptools" in chosen:
            notes.append("setuptools has no per-environment file: use --scope user, or DIST_EXTRA_CONFIG")
    mode = 0o600 if config.has_credentials else 0o644
    placements = []
    if "pip" in chosen:
        constraint = str(constraints) if config.build_lock is not None else None
        placements.append(
            Placement(path=pip_conf, text=render_pip_conf(config, build_constraint=constraint), mode=mode)
        )
        if config.build_lock is not None:
            placements.append(Placement(path=constraints, text=config.build_lock.render(), mode=0o644))
    if "uv" in chosen:
        placements.append(Placement(path=uv_toml, text=render_uv_toml(config), mode=mode))
    if "setuptools" in chosen and pydistutils is not None:
        placements.append(Placement(path=pydistutils, text=render_pydistutils_cfg(config), mode=mode))
    return placements, notes


def install_here(
    config: ClientConfig, scope: str, *, clients: Iterable[str], environ: Mapping[str, str], home: Path
) -> tuple[list[Change], list[str]]:
    """Write the clients' files into this host's places for ``scope`` (``system``, ``user``, ``venv[=PATH]``),
    keeping a backup of each file replaced: what changed, and notes for the user."""
    xdg = environ.get("XDG_CONFIG_HOME")
    placements, notes = install_plan(
        config,
        InstallScope.parse(scope, virtual_env=environ.get("VIRTUAL_ENV")),
        clients=clients,
        home=home,
        xdg_config_home=Path(xdg) if xdg else None,
    )
    return install(placements), notes


def _backup_path(path: Path) -> Path:
    candidate = path.with_name(path.name + ".bak")
    number = 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.bak.{number}")
    return candidate


def install(placements: Iterable[Placement]) -> list[Change]:
    """Write each placement atomically; a different existing file is first copied to ``<name>.bak`` (``.bak.N``)."""
    changes = []
    for placement in placements:
        path = placement.path
        try:
            try:
                current: bytes | None = path.read_bytes()
            except FileNotFoundError:
                current = None
            new = placement.text.encode("utf-8")
            if current == new and (path.stat().st_mode & 0o777) == placement.mode:
                changes.append(Change(path=path, action="unchanged"))
                continue
            backup = None
            if current is not None:
                backup = _backup_path(path)
                # a temporary file is created 0600 and takes the original's mode only when complete:
                # a credentialed file's copy is never readable by others, not even for a moment
                _atomic.write_bytes(backup, current, mode=stat.S_IMODE(path.stat().st_mode))
            _atomic.write_bytes(path, new, mode=placement.mode)
        except OSError as exc:
            raise ClientConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        changes.append(Change(path=path, action="created" if current is None else "replaced", backup=backup))
    return changes
