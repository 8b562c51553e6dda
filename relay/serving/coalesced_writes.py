"""One socket write per answer instead of two.

uvicorn's httptools protocol writes a response's status line and headers with one
``transport.write`` and its body with a second; with uvloop each write is a ``send()``
system call on the spot, and on loopback each send also runs the receiver's side of the
TCP stack. A profile of relay under load (docs/performance.md, issue 22) put the two writes
among the largest single costs of a delivery, in relay and in the bridge floor alike.

``HeadHoldingTransport`` wraps the connection's transport: the first write after a
request's head arrived (the response head) is held, and the next write (its body) goes out
joined to it, so the answer leaves in one ``send()``. Nothing waits on it: should no second
write follow in the same step (a streamed response, a 100 Continue), the held bytes are
written on the next turn of the event loop, and closing the transport writes them first.
The bytes on the wire are exactly uvicorn's, in the same order.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeadHoldingTransport:
    """What uvicorn's protocol writes to; all but ``write`` and ``close`` pass straight through."""

    __slots__ = ("_held", "_loop", "_transport", "hold_next")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        # Set by the protocol when a request's head is complete: its next write is the
        # response head (or a 100 Continue).
        self.hold_next = False

    @property
    def wrapped(self) -> asyncio.Transport:
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif self.hold_next:
            self.hold_next = False
            self._held = bytes(data)
            # The safety net: a head with no body right behind it still goes out at once.
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        # pause_reading, resume_reading, abort, set_protocol...: rare, so the slow path.
        return getattr(self._transport, name)
