"""One send per answer: the head waits for its body, and never longer than one loop turn."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from relay.serving.coalesced_writes import HeadHoldingTransport

pytestmark = pytest.mark.anyio


class RecordingTransport:
    """Stands in for the socket transport: each write() is one send()."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)

    def pause_reading(self) -> None:
        self.sends.append(b"<paused>")


def holding(loop: asyncio.AbstractEventLoop) -> tuple[HeadHoldingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return HeadHoldingTransport(cast(asyncio.Transport, inner), loop), inner


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_and_its_body_leave_in_one_send() -> None:
    transport, inner = holding(asyncio.get_running_loop())
    transport.hold_next = True
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.sends == []
    transport.write(b"ok")
    assert inner.sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await next_turn()
    assert len(inner.sends) == 1  # the safety flush found nothing left


async def test_without_a_held_head_writes_go_straight_through() -> None:
    transport, inner = holding(asyncio.get_running_loop())
    transport.write(b"a")
    transport.write(memoryview(b"b"))
    assert inner.sends == [b"a", b"b"]


async def test_a_head_with_no_body_behind_it_goes_out_on_the_next_turn() -> None:
    # A streamed response, or a 100 Continue: nothing may wait for a second write.
    transport, inner = holding(asyncio.get_running_loop())
    transport.hold_next = True
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await next_turn()
    assert inner.sends == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"later")
    assert inner.sends[-1] == b"later"


async def test_closing_writes_what_is_held_first() -> None:
    transport, inner = holding(asyncio.get_running_loop())
    transport.hold_next = True
    transport.write(b"head")
    transport.close()
    assert inner.sends == [b"head"] and inner.closed
    await next_turn()
    assert inner.sends == [b"head"]


async def test_nothing_is_written_to_a_transport_already_closing() -> None:
    transport, inner = holding(asyncio.get_running_loop())
    transport.hold_next = True
    transport.write(b"head")
    inner.closed = True  # the peer went away meanwhile
    await next_turn()
    assert inner.sends == []


async def test_other_transport_methods_pass_through() -> None:
    transport, inner = holding(asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert transport.is_closing() is False
    transport.pause_reading()
    assert inner.sends == [b"<paused>"]
    assert transport.wrapped is cast(asyncio.Transport, inner)
