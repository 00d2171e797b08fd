"""mirror bundle: carry a mirror across the air gap as one hash-checked archive, full or incremental.

* :mod:`mirror.bundle.format` — ``bundle.json``, which paths a member may have, reading and verifying an archive;
* :mod:`mirror.bundle.export` — planning the members (a delta on a previous bundle), writing the archive;
* :mod:`mirror.bundle.importing` — staging and verifying everything, deciding every change
  (:func:`~mirror.bundle.importing.plan_import`), then making them (:func:`~mirror.bundle.importing.apply_import`).

The ids of imported bundles are kept in ``<wheelhouse>/.bundles.json``, so a delta whose base was never imported
is refused. :class:`mirror.workspace.Workspace` runs export and import for a workspace.
"""

from __future__ import annotations

from mirror.bundle.format import (
    BundleError,
    BundleManifest,
    Compression,
    Member,
    MissingBase,
    UnsafeMember,
    VerifyResult,
    read_bundle,
    read_manifest,
)

__all__ = [
    "BundleError",
    "BundleManifest",
    "Compression",
    "Member",
    "MissingBase",
    "UnsafeMember",
    "VerifyResult",
    "read_bundle",
    "read_manifest",
]
