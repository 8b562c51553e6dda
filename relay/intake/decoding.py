"""Bounded decompression and decoding helpers for delivery bodies.

Every decoder takes an output limit: a few KB of gzip can inflate to gigabytes, and a
webhook endpoint on the internet will meet such a body sooner or later.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from relay.events.errors import MalformedDelivery, PayloadTooLarge

_CHUNK = 64 * 1024


def gunzip_bounded(data: bytes, limit: int, *, what: str) -> bytes:
    """Inflate a gzip stream, refusing output beyond ``limit`` bytes.

    Concatenated members are one stream (RFC 1952 section 2.2) and are all inflated; zero
    padding after the last is ignored, as Python's gzip module does. Anything else after a
    member is refused rather than silently dropped: it would be part of the delivery.
    """
    out = bytearray()
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                # Bounded steps: a few KB of input can inflate to gigabytes.
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                out += chunk
                if len(out) > limit:
                    raise PayloadTooLarge(
                        f"{what} inflates to more than the {limit} byte limit",
                        code="inflated_too_large",
                    )
                if not chunk and not pending and not inflater.eof:
                    raise MalformedDelivery(f"{what} is a truncated gzip stream", code="bad_gzip")
            pending = inflater.unused_data.lstrip(b"\0")
            if not pending:
                return bytes(out)
    except zlib.error:
        raise MalformedDelivery(f"{what} is not valid gzip data", code="bad_gzip") from None


def b64decode_strict(text: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedDelivery(f"{what} is not valid base64", code="bad_base64") from None
