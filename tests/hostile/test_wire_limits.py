"""Wire-level limits against a real ``relay serve``: what an HTTP client library never sends.

Slow bodies, slow or endless headers, idle connections, absurd Content-Length: each gets a
clear 4xx (or a closed connection if the client said nothing), within the configured time,
nothing but the dead-letter topic ever receives a record, and relay keeps serving. The 431
and 408 the head guard answers before the app sees the request are each counted once in
``relay_http_refused_total``, read from the admin port's real scrape.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.kafka import consume_all
from tests.support.metrics import by_label
from tests.support.net import accepts_connections
from tests.support.relay import RelayProcess, order_delivery, running_relay, topic_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka

BODY_TIMEOUT = 2.0
HEADER_TIMEOUT = 2.0
MAX_HEADER_BYTES = 16 * 1024
AUTH = "Authorization: Basic dWx0cmFjYXJ0OnRlc3Qtc2VjcmV0LTdkMWY=\r\n"  # tests' CREDENTIALS
TOPICS = ("order_create", "unknown", "dead_letter")


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"w{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="module")
def relay(
    kafka_bootstrap: str, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayProcess]:
    env = {
        **topic_env(prefix),
        "RELAY_SERVER__BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "RELAY_SERVER__HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "RELAY_SERVER__MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    log = tmp_path_factory.mktemp("wire") / "relay.log"
    with running_relay(kafka_bootstrap, env, log) as process:
        # /readyz turns 200 when the lifespan is done, a moment before uvicorn binds intake.
        wait_until(lambda: accepts_connections(process.port), message="intake not listening")
        yield process


def head(content_length: int | None = None, extra: str = "") -> bytes:
    lines = "POST /webhooks/ultracart HTTP/1.1\r\nHost: relay\r\n" + AUTH
    lines += "Content-Type: application/json\r\n" + extra
    if content_length is not None:
        lines += f"Content-Length: {content_length}\r\n"
    return (lines + "\r\n").encode()


class Wire:
    """One raw connection: send pieces (with pauses), read what comes back until close."""

    def __init__(self, relay: RelayProcess) -> None:
        self.sock = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        self.opened = time.monotonic()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            return False  # relay has closed: that is its answer
        return True

    def trickle(self, data: bytes, every: float) -> None:
        for byte in data:
            if not self.send(bytes([byte])):
                return
            time.sleep(every)

    def answer(self, timeout: float = 10.0) -> tuple[bytes, float]:
        self.sock.settimeout(timeout)
        chunks = []
        try:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        finally:
            self.sock.close()
        return b"".join(chunks), time.monotonic() - self.opened


def refused(relay: RelayProcess) -> dict[str, float]:
    """``relay_http_refused_total`` by reason, as relay's admin port serves it."""
    return by_label(relay.metrics(), "relay_http_refused_total", "reason")


def one_more(before: dict[str, float], reason: str) -> dict[str, float]:
    assert set(before) == {"headers_too_large", "header_timeout"}  # every series from the start
    return {**before, reason: before[reason] + 1}


def status_and_error(raw: bytes) -> tuple[int, str]:
    status_line, _, rest = raw.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), orjson.loads(body)["error"]


def test_a_trickled_body_gets_408_at_the_body_timeout(relay: RelayProcess) -> None:
    wire = Wire(relay)
    wire.send(head(content_length=200) + b'{"events": [')
    wire.trickle(b" " * 20, every=0.25)  # 5 s for 20 bytes: well past the 2 s timeout
    raw, seconds = wire.answer()
    assert status_and_error(raw) == (408, "body_timeout")
    assert BODY_TIMEOUT <= seconds < BODY_TIMEOUT + 4


def test_trickled_headers_get_408_at_the_header_timeout(relay: RelayProcess) -> None:
    before = refused(relay)
    wire = Wire(relay)
    wire.send(b"POST /webhooks/ultracart HTTP/1.1\r\n")
    wire.trickle(b"X-Slow: " + b"a" * 40, every=0.2)
    raw, seconds = wire.answer()
    assert status_and_error(raw) == (408, "header_timeout")
    assert HEADER_TIMEOUT <= seconds < HEADER_TIMEOUT + 3
    assert refused(relay) == one_more(before, "header_timeout")


def test_a_silent_connection_is_closed_at_the_header_timeout(relay: RelayProcess) -> None:
    before = refused(relay)
    raw, seconds = Wire(relay).answer()
    assert raw == b""
    assert HEADER_TIMEOUT <= seconds < HEADER_TIMEOUT + 3
    # Nothing was answered, so nothing was refused: probes that only connect are no alert.
    assert refused(relay) == before


@pytest.mark.parametrize(
    "extra",
    [
        "X-Big: " + "a" * (MAX_HEADER_BYTES + 1) + "\r\n",
        "X-A: b\r\n" * (MAX_HEADER_BYTES // 8 + 1),
    ],
    ids=["one-huge-header", "many-headers"],
)
def test_an_oversized_head_gets_431_without_being_buffered(relay: RelayProcess, extra: str) -> None:
    before = refused(relay)
    wire = Wire(relay)
    wire.send(head(content_length=2, extra=extra) + b"{}")
    raw, _ = wire.answer()
    assert status_and_error(raw) == (431, "headers_too_large")
    assert refused(relay) == one_more(before, "headers_too_large")


def test_an_endless_header_is_cut_off_without_being_buffered(relay: RelayProcess) -> None:
    """Header bytes forever: 431 once past the limit, and relay's memory does not follow.

    Before the limit existed, relay held a 200 MB header in memory (RSS 44 -> 316 MB).
    """
    before, counted = rss_bytes(relay), refused(relay)
    wire = Wire(relay)
    wire.send(b"POST /webhooks/ultracart HTTP/1.1\r\nX-Endless: ")
    sent = 0
    while sent < 64 * 1024 * 1024 and wire.send(b"a" * 65536):
        sent += 65536
    raw, _ = wire.answer()
    # The 431 may be lost to the reset our own further sending provokes once relay closed.
    if raw:
        assert status_and_error(raw) == (431, "headers_too_large")
    assert rss_bytes(relay) - before < 16 * 1024 * 1024
    assert refused(relay) == one_more(counted, "headers_too_large")  # even if the 431 was lost


def rss_bytes(relay: RelayProcess) -> int:
    assert relay.process is not None
    status = Path(f"/proc/{relay.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


def test_an_absurd_content_length_is_refused_before_reading(relay: RelayProcess) -> None:
    wire = Wire(relay)
    wire.send(head(content_length=10**12))
    raw, seconds = wire.answer()
    assert status_and_error(raw)[0] == 413
    assert seconds < BODY_TIMEOUT


def test_relay_still_serves_and_only_dead_letters_were_written(
    relay: RelayProcess, prefix: str
) -> None:
    """Runs last in this module: after all of the above, a normal delivery still works."""
    response = relay.post(order_delivery("WIRE-1"))
    assert response.status_code == 200
    records = consume_all(relay.bootstrap, [prefix + t for t in TOPICS], idle=1.0)
    events = [r for r in records if not r.topic.endswith("dead_letter")]
    assert [r.key for r in events] == [b"WIRE-1"]
