"""What can go wrong with the spool on disk, as the sink tells it apart."""

from __future__ import annotations

import errno


class SpoolFull(Exception):
    """Appending would take the spool beyond its byte limit."""


class SpoolDiskFull(Exception):
    """The filesystem has no room (ENOSPC, EDQUOT); nothing of the append was kept."""


# Errors that mean "no room on the volume", not "the volume is broken".
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class SpoolLocked(Exception):
    """Another process owns the spool directory."""


class SpoolFailed(Exception):
    """An earlier write or fsync failed; the spool takes nothing more until restarted."""
