"""offline-mirror: prepare a Python package mirror online, carry it in, serve it, prove installs work offline."""

from __future__ import annotations

# The one place the version is written: pyproject.toml reads it from here (dynamic = ["version"]). A literal, not
# importlib.metadata: every command starts faster, and a source tree without install reports it too.
__version__ = "0.1.0"

__all__ = ["__version__"]
