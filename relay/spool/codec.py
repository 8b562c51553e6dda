"""One delivery's records as a frame payload, and back.

A small binary layout rather than JSON: values are arbitrary bytes, and replay after an
outage decodes every spooled record. All integers are big-endian.

  appended_at_ms u64 | record count u32 | records
  record: topic (u16 len + utf-8) | label (u16 + utf-8) | key (i32 len, -1 = none) |
          value (u32 len) | header count (u16) | headers: name (u16 + utf-8),
          value (i32 len, -1 = none)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from relay.events.records import Headers, Record

_PREFIX = struct.Struct(">QI")
PREFIX_SIZE = _PREFIX.size
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class SpooledDelivery:
    appended_at: float
    records: list[Record]


def encode_delivery(records: Sequence[Record], appended_at: float) -> bytes:
    parts = [_PREFIX.pack(round(appended_at * 1000), len(records))]
    for record in records:
        _text(parts, record.topic)
        _text(parts, record.label)
        _optional(parts, record.key)
        parts.append(_U32.pack(len(record.value)))
        parts.append(record.value)
        parts.append(_U16.pack(len(record.headers)))
        for name, value in record.headers:
            _text(parts, name)
            _optional(parts, value.encode() if isinstance(value, str) else value)
    return b"".join(parts)


def peek(payload: bytes) -> tuple[float, int]:
    """``(appended_at, record count)`` without decoding the records (for replay)."""
    millis, count = _PREFIX.unpack_from(payload)
    return millis / 1000, count


def decode_delivery(payload: bytes) -> SpooledDelivery:
    reader = _Reader(payload)
    millis, count = reader.unpack(_PREFIX)
    records = []
    for _ in range(count):
        topic = reader.text()
        label = reader.text()
        key = reader.optional()
        value = reader.take(reader.unpack(_U32)[0])
        headers: Headers = []
        for _ in range(reader.unpack(_U16)[0]):
            name = reader.text()
            headers.append((name, reader.optional()))
        records.append(Record(topic=topic, key=key, value=value, headers=headers, label=label))
    if reader.position != len(payload):
        raise ValueError("trailing bytes after the last spooled record")
    return SpooledDelivery(appended_at=millis / 1000, records=records)


def _text(parts: list[bytes], text: str) -> None:
    raw = text.encode()
    parts.append(_U16.pack(len(raw)))
    parts.append(raw)


def _optional(parts: list[bytes], raw: bytes | None) -> None:
    if raw is None:
        parts.append(_I32.pack(-1))
        return
    parts.append(_I32.pack(len(raw)))
    parts.append(raw)


class _Reader:
    __slots__ = ("_data", "position")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        end = self.position + size
        if size < 0 or end > len(self._data):
            raise ValueError("spooled delivery is shorter than its fields say")
        chunk = self._data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size))

    def text(self) -> str:
        return self.take(self.unpack(_U16)[0]).decode()

    def optional(self) -> bytes | None:
        (size,) = self.unpack(_I32)
        return None if size == -1 else self.take(size)
