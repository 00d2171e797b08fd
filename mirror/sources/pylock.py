"""pylock.toml (PEP 751): read and validated with ``packaging.pylock``, its pins kept exactly per target.

``Pylock.select`` is the standard's own selection: for the target's marker environment and wheel tags, the chosen
``extras`` and ``dependency-groups`` (default: the lock's ``default-groups``), it checks ``requires-python`` and
``environments`` (a lock that does not cover the target is an error) and yields each package to install. A package
from a VCS or an archive URL cannot come from an index and is refused; a directory is built, not mirrored. Every
wheel and sdist the lock lists for a selected package is kept with its sha256, for the check against the upstream.
"""

from __future__ import annotations

from packaging.pylock import (
    PackageArchive,
    PackageDirectory,
    PackageVcs,
    Pylock,
    PylockSelectError,
    PylockUnsupportedVersionError,
    PylockValidationError,
)
from packaging.tags import Tag

from mirror.sources.inputs import RELEASE_ADVICE, InvalidSource, LockedFiles, read_toml
from mirror.targets import Target


def parse_pylock(text: str, *, label: str) -> Pylock:
    """Parse and validate the PEP 751 ``text`` of the file shown as ``label``."""
    try:
        return Pylock.from_dict(read_toml(text, label))
    except (PylockValidationError, PylockUnsupportedVersionError) as exc:
        raise InvalidSource(label, str(exc)) from None


def locked(
    lock: Pylock, target: Target, *, label: str, groups: tuple[str, ...] = (), extras: tuple[str, ...] = ()
) -> list[LockedFiles]:
    """The packages ``lock`` installs on ``target`` with ``extras`` and ``groups`` (default: its default groups)."""
    tags: list[Tag] = list(target.tags())
    try:
        selected = list(
            lock.select(
                environment=target.marker_environment(),  # type: ignore[arg-type]
                tags=tags,
                extras=extras,
                dependency_groups=groups or None,
            )
        )
    except PylockSelectError as exc:
        raise InvalidSource(label, f"target {target.name!r} ({target.describe()}): {exc}") from None
    out = []
    for package, chosen in selected:
        if isinstance(chosen, PackageDirectory):
            continue
        if isinstance(chosen, PackageVcs | PackageArchive) or package.version is None:
            raise InvalidSource(
                label, f"package {package.name} is locked from a VCS or an archive URL; {RELEASE_ADVICE}"
            )
        files = [(wheel.name, wheel.hashes.get("sha256")) for wheel in package.wheels or ()]
        if package.sdist is not None:
            files.append((package.sdist.name, package.sdist.hashes.get("sha256")))
        out.append(
            LockedFiles(
                name=str(package.name),
                version=str(package.version),
                origin=label,
                files=tuple((name, digest.lower()) for name, digest in files if digest),
                index=package.index,
            )
        )
    return out
