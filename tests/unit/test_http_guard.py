"""The head guard's 431 and 408 are counted in the app's own registry (no broker needed).

relay.serving.server.Servers runs in a thread with a fake sink: the same server_config, guard and
RelayMetrics as ``relay serve``. tests/hostile/test_wire_limits.py checks the same counts
against a real ``relay serve`` process and broker, through the admin port's scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from relay.serving.app import build_intake
from relay.serving.server import Servers
from tests.support.fake_sink import FakeSink
from tests.support.net import free_port
from tests.support.settings import settings_with
from tests.support.waiting import wait_until

MAX_HEADER_BYTES = 1024
HEADER_TIMEOUT = 0.5


@pytest.fixture
def servers() -> Iterator[Servers]:
    settings = settings_with(
        server={
            "host": "127.0.0.1",
            "port": free_port(),
            "admin_port": 0,
            "max_header_bytes": MAX_HEADER_BYTES,
            "header_timeout_seconds": HEADER_TIMEOUT,
            "shutdown_grace_seconds": 1,
        },
    )
    servers = Servers(settings, lambda s: build_intake(s, sink=FakeSink()), admin=False, signals=())
    thread = threading.Thread(target=lambda: asyncio.run(servers.run()), daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "relay exited before it started"
        return servers.intake.started

    wait_until(started, interval=0.01, message="relay did not start")
    try:
        yield servers
    finally:
        servers.request_stop()
        thread.join(10)
        assert not thread.is_alive()


def refused(servers: Servers) -> dict[str, float | None]:
    registry = servers.runtime.metrics.registry
    return {
        reason: registry.get_sample_value("relay_http_refused_total", {"reason": reason})
        for reason in ("headers_too_large", "header_timeout")
    }


def exchange(servers: Servers, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send ``pieces`` on one connection (``pause`` apart); what comes back until close."""
    with socket.create_connection(("127.0.0.1", servers.settings.server.port), timeout=5) as s:
        for piece in pieces:
            with contextlib.suppress(OSError):  # relay may have closed already
                s.sendall(piece)
            time.sleep(pause)  # real time on purpose: the guard's timeouts are the subject
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                answer += chunk
        return answer


def test_every_refusal_series_exists_before_the_first_refusal(servers: Servers) -> None:
    assert refused(servers) == {"headers_too_large": 0.0, "header_timeout": 0.0}


def test_an_oversized_head_is_counted_once(servers: Servers) -> None:
    answer = exchange(
        servers, b"POST /webhooks/ultracart HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEADER_BYTES
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert refused(servers) == {"headers_too_large": 1.0, "header_timeout": 0.0}


def test_a_slow_head_is_counted_once(servers: Servers) -> None:
    answer = exchange(servers, b"POST /webhooks/ultracart HTTP/1.1\r\n", b"X-Slow: a", pause=0.4)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert refused(servers) == {"headers_too_large": 0.0, "header_timeout": 1.0}


def test_silence_and_requests_that_reach_the_app_are_not_refusals(servers: Servers) -> None:
    assert exchange(servers) == b""  # closed at the header timeout, nothing answered
    answer = exchange(servers, b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert refused(servers) == {"headers_too_large": 0.0, "header_timeout": 0.0}
