"""A fixture project: it imports what its lock installs."""

import om_native  # noqa: F401
import om_pure

VERSION = om_pure.VERSION
