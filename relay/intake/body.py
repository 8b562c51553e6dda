"""Reading a delivery body off the wire: media type, size and time limits, Content-Encoding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect

from relay.deadlines import Deadlines
from relay.events.errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from relay.intake.decoding import gunzip_bounded
from relay.settings import IntakeSettings


def check_media_type(content_type: str, intake: IntakeSettings) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type:
        if intake.allow_missing_content_type:
            return
        raise UnsupportedMediaType("a Content-Type header is required (application/json)")
    if media_type in intake.accepted_content_types or media_type.endswith("+json"):
        return
    accepted = ", ".join(intake.accepted_content_types)
    raise UnsupportedMediaType(
        f"Content-Type {media_type[:100]!r} is not accepted; send one of: {accepted}"
    )


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def declared_length(header: str | None) -> int | None:
    """The Content-Length header as a number; None if absent (a chunked body) or not plain
    digits (then the body is judged as it is read)."""
    return int(header) if header is not None and header.isdigit() else None


async def read_body(
    receive: Receive, declared: str | None, limit: int, timeout: float, deadlines: Deadlines
) -> bytes:
    """The body from the ASGI messages; ``declared`` is the Content-Length header, if any."""
    length = declared_length(declared)
    if length is not None and length > limit:
        # Refuse before reading: no point receiving megabytes we will not keep.
        raise PayloadTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")
    # The ASGI messages themselves: a delivery's body is usually one message, and this path
    # runs for every delivery.
    chunks: list[bytes] = []
    size = 0
    try:
        with deadlines.guard(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body exceeds the {limit} byte limit")
                if not message.get("more_body", False):
                    if not chunks:
                        return chunk
                    chunks.append(chunk)
                    return b"".join(chunks)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the body was not received within {timeout:g} s") from None


def decode_content_encoding(body: bytes, content_encoding: str, inflated_limit: int) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip_bounded(body, inflated_limit, what="the gzip-encoded body")
    raise UnsupportedMediaType(
        f"Content-Encoding {encoding[:50]!r} is not supported; use gzip or none",
        code="unsupported_content_encoding",
    )
