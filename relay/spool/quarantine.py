"""Where the spool puts deliveries Kafka refused for good, so the ones behind them flow.

Each refused delivery is written, as the spool held it (relay.spool.codec), to a file of
its own in ``<spool.directory>/quarantine/`` and fsynced before the spool lets go of it.
Nothing reads the directory back: the files are evidence for an operator, who fixes the
cause (the topic's max.message.bytes, an ACL) and can decode and re-send them.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from relay.spool.files import make_directory, replace_file


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, payload: bytes, reason: str) -> Path:
        """Store ``payload`` durably; the name sorts by time and says why it is here."""
        make_directory(self.directory)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{stamp}-{reason}-{uuid.uuid4().hex[:12]}.delivery"
        replace_file(path, payload, temporary=path.with_suffix(".partial"))
        return path
