"""The spool's checkpoint: (segment, offset) of the first frame Kafka has not acknowledged.

Twenty bytes with their own CRC32, replaced atomically; a damaged one is ignored (the whole
log is replayed: duplicates with the same ce_ids, nothing lost).
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

from relay.spool.files import replace_file

logger = logging.getLogger(__name__)

_CHECKPOINT = struct.Struct(">QQI")


def read_checkpoint(directory: Path) -> tuple[int, int] | None:
    try:
        raw = (directory / "checkpoint").read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) != _CHECKPOINT.size:
        logger.warning("spool checkpoint is damaged; replaying every segment")
        return None
    segment, offset, crc = _CHECKPOINT.unpack(raw)
    if crc != zlib.crc32(raw[:16]):
        logger.warning("spool checkpoint is damaged; replaying every segment")
        return None
    return segment, offset


def write_checkpoint(directory: Path, segment: int, offset: int, *, durable: bool) -> None:
    body = struct.pack(">QQ", segment, offset)
    raw = body + struct.pack(">I", zlib.crc32(body))
    # A crash leaves the old checkpoint or the new one, never half.
    replace_file(
        directory / "checkpoint", raw, temporary=directory / "checkpoint.tmp", durable=durable
    )
