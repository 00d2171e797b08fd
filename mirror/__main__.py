"""``python -m mirror`` runs the ``mirror`` command."""

from mirror.cli import main

main()
