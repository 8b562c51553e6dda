"""Admission of request bodies: a worker holds a bounded number of bytes of them.

The publisher's in-flight limits count records handed to Kafka. Under overload the memory
is elsewhere: in the bodies that many connections upload at once, which the endpoint
reads in full before it parses anything. With 256 connections per worker sending 320 KB
deliveries, a worker held about 200 MB (docs/performance.md). A body is therefore admitted
against ``intake.max_inflight_bytes`` (the worker's share) from the moment the endpoint
starts reading it until the answer, by its declared Content-Length, before a byte of it is
read. A refused delivery costs the server only what uvicorn buffers (64 KB) and gets a 503
``overloaded``, which UltraCart retries like any other.

A body sent without Content-Length (chunked) cannot be judged before it is read; it is
counted once read, so that it holds back the deliveries after it.
"""

from __future__ import annotations

from relay.events.byte_limit import over_byte_limit
from relay.events.errors import Unavailable
from relay.intake.body import declared_length
from relay.turn_gauges import TurnGauge


class BodyHold:
    """The bytes one delivery holds; given back by ``BodyBudget.release``."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class BodyBudget:
    """Bytes of request bodies held by deliveries being read, parsed, published or answered.

    Only the event loop's thread uses it, like the endpoint that owns it.
    """

    def __init__(self, limit: int, max_body_bytes: int, gauge: TurnGauge) -> None:
        self._limit = limit
        self._max_body_bytes = max_body_bytes
        self._held = 0
        self._gauge = gauge

    @property
    def held(self) -> int:
        return self._held

    def admit(self, declared: str | None) -> BodyHold:
        """Reserve a body's declared length, or refuse the delivery (503 ``overloaded``).

        A body is admitted whatever its size while no other is held (relay.events.byte_limit);
        ``intake.max_body_bytes`` bounds it anyway.
        """
        size = declared_length(declared) or 0
        if size > self._max_body_bytes:
            # Refused unread as too large (413) by the body reader: it holds nothing, and
            # must get that answer rather than a 503 that would have it sent again.
            size = 0
        held = self._held
        if over_byte_limit(held, size, self._limit):
            raise Unavailable(
                "relay holds as many delivery bodies as it may; retry later", code="overloaded"
            )
        self._set(held + size)
        return BodyHold(size)

    def settle(self, hold: BodyHold, size: int) -> None:
        """The body is read: hold what it really is (a chunked body declared nothing)."""
        if size != hold.size:
            self._set(self._held + size - hold.size)
            hold.size = size

    def release(self, hold: BodyHold) -> None:
        if hold.size:
            self._set(self._held - hold.size)
            hold.size = 0

    def _set(self, held: int) -> None:
        self._held = held
        self._gauge.set(held)
