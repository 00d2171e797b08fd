"""The ``mirror`` command: parse options, build a :class:`~mirror.workspace.Workspace`, call one method, print.

This package is the only code that prints. Every :class:`~mirror.errors.MirrorError` (and an ``OSError`` the library
did not turn into one) becomes a one-line ``error: …`` on stderr and exit status 1, in :mod:`mirror.cli._base` and
nowhere else. Each module holds the commands of one part of the pipeline and registers them on :func:`main`.
"""

from mirror.cli import audit, bundle, clients, pipeline, serving
from mirror.cli._base import main

__all__ = ["audit", "bundle", "clients", "main", "pipeline", "serving"]
