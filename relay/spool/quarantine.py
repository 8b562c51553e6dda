"""Where the spool puts deliveries Kafka refused for good, so the ones behind them flow.

Each refused delivery is written, as the spool held it (relay.spool.codec), to a file of
its own in ``<spool.directory>/quarantine/`` and fsynced before the spool lets go of it.
Nothing reads the directory back: the files are evidence for an operator, who fixes the
cause (the topic's max.message.bytes, an ACL) and can decode and re-send them.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, payload: bytes, reason: str) -> Path:
        """Store ``payload`` durably; the name sorts by time and says why it is here."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{stamp}-{reason}-{uuid.uuid4().hex[:12]}.delivery"
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path
