"""Limits on the request head that uvicorn's httptools protocol does not have.

Measured with uvicorn 0.54 + httptools 0.9 (tests/hostile/test_wire_limits.py): a request head
is buffered without any size limit (a 200 MB header raised relay's RSS from 44 MB to
316 MB), and a connection that sends nothing, or trickles its headers, is never timed out.
Either lets one client hold memory or connections for as long as it likes.

``guarded_http_protocol`` returns uvicorn's httptools protocol with both limits added (and
each answer written in one send, relay.serving.coalesced_writes):
- more than ``max_head_bytes`` before the end of the headers: ``431`` and close;
- no complete head within ``head_timeout`` of the connection opening (or of the first byte
  of a later request on a kept-alive connection): ``408`` and close, or just close if
  nothing was sent at all.
Each refusal (not the silent close) is logged and passed to ``on_refused`` with its reason,
one of ``relay.metrics.REFUSALS``, which relay.serving.server counts in
``relay_http_refused_total{reason}``: these answers never reach the app, so the app's own
counters cannot see them.
The body has its own limits in relay.intake.body (size: 413, time: 408); a response sent
before the whole body arrived (those, and 401) closes the connection, where uvicorn would
otherwise keep reading and discarding the rest for as long as the client sends it.

Without httptools uvicorn falls back to h11, which has a head size limit of its own
(``h11_max_incomplete_event_size``, set from the same setting) but no head timeout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

import orjson

from relay.metrics import HEADER_TIMEOUT, HEADERS_TOO_LARGE
from relay.serving.coalesced_writes import HeadHoldingTransport

logger = logging.getLogger(__name__)


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = orjson.dumps({"error": code, "message": message})
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_http_protocol(
    max_head_bytes: int,
    head_timeout: float,
    on_refused: Callable[[str], None] | None = None,
) -> type[asyncio.Protocol] | str:
    """The protocol class for ``uvicorn.Config(http=...)``.

    ``on_refused`` is called with the reason (one of ``REFUSALS``) of every 431 and 408 the
    guard answers itself.
    """
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    too_large = _response(
        431,
        "Request Header Fields Too Large",
        HEADERS_TOO_LARGE,
        f"the request line and headers exceed the {max_head_bytes} byte limit",
    )
    too_slow = _response(
        408,
        "Request Timeout",
        HEADER_TIMEOUT,
        f"the request headers were not received within {head_timeout:g} s",
    )

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._awaiting_head = True
            self._head_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # Every write of this connection goes through it: one send per answer
            # (relay.serving.coalesced_writes). uvicorn's flow control keeps the real one.
            self.transport = HeadHoldingTransport(transport, self.loop)  # type: ignore[assignment]
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._awaiting_head:
                super().data_received(data)
                return
            room = max_head_bytes - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                super().data_received(data)
                return
            # The head may still end within the part that fits: feed that much first.
            self._head_bytes = max_head_bytes
            super().data_received(data[:room])
            if self.transport.is_closing():
                return
            if self._awaiting_head:
                self._refuse(too_large, HEADERS_TOO_LARGE, "request head too large")
                return
            self.data_received(data[room:])

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._awaiting_head:
                # The next request on a kept-alive connection: its head gets the same limits.
                self._awaiting_head = True
                self._head_bytes = 0
                self._arm()

        def on_headers_complete(self) -> None:
            self._awaiting_head = False
            self._disarm()
            self.transport.hold_next = True  # type: ignore[attr-defined]
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            cycle = self.cycle
            super().on_response_complete()
            if cycle is not None and cycle.more_body and not self.transport.is_closing():
                # Answered before the body was in (401, 408, 413): uvicorn would keep
                # reading and discarding it for as long as the client sends, so a client
                # refused for trickling could go on trickling. Close instead.
                self.transport.close()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self._awaiting_head or self.transport.is_closing():
                return
            if self._head_bytes:
                self._refuse(too_slow, HEADER_TIMEOUT, "request head not received in time")
            else:
                self.transport.close()  # connected and said nothing: nobody to answer

        def _refuse(self, response: bytes, code: str, reason: str) -> None:
            self._disarm()
            self._awaiting_head = False
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
            logger.warning("connection refused: %s", reason, extra={"client": client})
            self.transport.write(response)
            self.transport.close()
            if on_refused is not None:
                on_refused(code)

    return GuardedHttpToolsProtocol
