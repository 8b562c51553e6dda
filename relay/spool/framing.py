"""Frames: ``length (u32) | crc32(length + payload) (u32) | payload``.

The checksum covers the length too, so a corrupted length is caught rather than followed
into the middle of the next record. A frame that is cut short (relay killed mid-write) or
fails its checksum marks the end of the valid log: replay stops there and the rest is
truncated.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_HEADER = struct.Struct(">II")
HEADER_SIZE = _HEADER.size
# Far above any delivery relay accepts (64 MiB decompressed by default); a larger length
# can only be corruption, and must not make replay try to allocate it.
MAX_PAYLOAD = 512 * 1024 * 1024


class FrameError(ValueError):
    """A frame whose checksum or length is wrong."""


def _checksum(length_bytes: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(length_bytes))


def encode_frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"a spool frame holds 1 to {MAX_PAYLOAD} bytes, not {len(payload)}")
    length = struct.pack(">I", len(payload))
    return length + struct.pack(">I", _checksum(length, payload)) + payload


def decode_frame(frame: bytes) -> bytes:
    """The payload of one whole frame; ``FrameError`` if it is not exactly one valid frame."""
    if len(frame) < HEADER_SIZE:
        raise FrameError("frame shorter than its header")
    length, crc = _HEADER.unpack_from(frame)
    payload = frame[HEADER_SIZE:]
    if length != len(payload) or crc != _checksum(frame[:4], payload):
        raise FrameError("frame checksum mismatch")
    return payload


@dataclass(frozen=True, slots=True)
class ScannedFrame:
    offset: int
    size: int
    payload: bytes


@dataclass(slots=True)
class ScanResult:
    """Where the valid frames end; ``end < file size`` means a torn or corrupt tail."""

    end: int
    torn: bool = False


def scan(handle: BinaryIO, start: int, result: ScanResult) -> Iterator[ScannedFrame]:
    """Yield the valid frames from ``start`` on; ``result.end`` follows the last one."""
    handle.seek(start)
    offset = start
    result.end = start
    while True:
        header = handle.read(HEADER_SIZE)
        if not header:
            return
        if len(header) < HEADER_SIZE:
            result.torn = True
            return
        length, crc = _HEADER.unpack(header)
        if not 0 < length <= MAX_PAYLOAD:
            result.torn = True
            return
        payload = handle.read(length)
        if len(payload) < length or crc != _checksum(header[:4], payload):
            result.torn = True
            return
        size = HEADER_SIZE + length
        yield ScannedFrame(offset=offset, size=size, payload=payload)
        offset += size
        result.end = offset
