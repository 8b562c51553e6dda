"""Bounded decompression and decoding helpers for delivery bodies.

Every decoder takes an output limit: a few KB of gzip can inflate to gigabytes, and a
webhook endpoint on the internet will meet such a body sooner or later.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from relay.errors import MalformedDelivery, PayloadTooLarge

_CHUNK = 64 * 1024


def gunzip_bounded(data: bytes, limit: int, *, what: str) -> bytes:
    """Inflate a gzip stream, refusing output beyond ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    pending = data
    try:
        while pending:
            out += inflater.decompress(pending, _CHUNK)
            if len(out) > limit:
                raise PayloadTooLarge(
                    f"{what} inflates to more than the {limit} byte limit",
                    code="inflated_too_large",
                )
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        if not inflater.eof:
            out += inflater.flush()
    except zlib.error:
        raise MalformedDelivery(f"{what} is not valid gzip data", code="bad_gzip") from None
    if not inflater.eof:
        raise MalformedDelivery(f"{what} is a truncated gzip stream", code="bad_gzip")
    if len(out) > limit:
        raise PayloadTooLarge(
            f"{what} inflates to more than the {limit} byte limit", code="inflated_too_large"
        )
    return bytes(out)


def b64decode_strict(text: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedDelivery(f"{what} is not valid base64", code="bad_base64") from None
