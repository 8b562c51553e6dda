"""Body admission on the real server: uvicorn, a raw socket client and Kafka.

The unit tests (tests/unit/test_body_admission.py) drive the ASGI app. This checks what
only the server shows: a delivery refused by admission is answered 503 while most of its
body is still unsent, and the connection is then closed, as after any answer that comes
before the body is in (relay.serving.http_guard), so the sender cannot go on uploading what
nobody reads. A delivery on a new connection is accepted once the budget is free, and
Kafka holds only that one.
"""

from __future__ import annotations

import base64
import socket
import time

import orjson
import pytest

from tests.support.kafka import consume_all
from tests.support.metrics import metric_sum
from tests.support.relay import CREDENTIALS, RelayProcess

pytestmark = pytest.mark.kafka

LIMIT = 400_000
HELD_BYTES = 300_000
# Over uvicorn's 64 KB read buffer, so the refusal comes while most of it is unsent.
REFUSED_BYTES = 300_000


def request_head(length: int) -> bytes:
    token = base64.b64encode(":".join(CREDENTIALS).encode()).decode()
    return (
        "POST /webhooks/ultracart HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def padded_delivery(order_id: str, size: int) -> bytes:
    body = orjson.dumps({"events": [{"order_create": {"order_id": order_id}}]})
    return body[:-1] + b" " * (size - len(body)) + b"}"


def read_response(conn: socket.socket) -> tuple[int, dict[str, object]]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before the response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v)
        for k, _, v in (h.partition(": ") for h in lines[1:])
        if k.lower() == "content-length"
    )
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed inside the response body"
        rest += chunk
    return status, orjson.loads(rest[:length])


@pytest.fixture
def relay_settings() -> dict[str, str]:
    return {
        # One worker, so both connections meet the same budget.
        "RELAY_SERVER__WORKERS": "1",
        "RELAY_INTAKE__MAX_INFLIGHT_BYTES": str(LIMIT),
        "RELAY_INTAKE__MAX_BODY_BYTES": str(1_000_000),
    }


def closed_by_server(conn: socket.socket) -> bool:
    """True once the server has closed ``conn`` (an orderly close or a reset)."""
    try:
        return conn.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_a_refused_body_is_answered_unread_and_a_new_connection_is_served(
    relay: RelayProcess, topic_prefix: str
) -> None:
    address = ("127.0.0.1", relay.port)
    with (
        socket.create_connection(address, timeout=10) as holder,
        socket.create_connection(address, timeout=10) as sender,
    ):
        # The holder declares its body and sends only its start: it holds HELD_BYTES.
        holder.sendall(request_head(HELD_BYTES) + b'{"events": [')
        deadline = time.monotonic() + 10
        while metric_sum(relay.metrics(), "relay_inflight_body_bytes") < HELD_BYTES:
            assert time.monotonic() < deadline, "the held body was never admitted"
            time.sleep(0.05)

        refused = padded_delivery("REFUSED-1", REFUSED_BYTES)
        sender.sendall(request_head(len(refused)) + refused[:32768])
        status, answer = read_response(sender)
        assert (status, answer["error"]) == (503, "overloaded")
        assert closed_by_server(sender), "the refused sender's connection stayed open"

        holder.close()
        deadline = time.monotonic() + 10
        while metric_sum(relay.metrics(), "relay_inflight_body_bytes") > 0:
            assert time.monotonic() < deadline, "the abandoned body was never released"
            time.sleep(0.05)

    with socket.create_connection(address, timeout=10) as sender:
        accepted = padded_delivery("ACCEPTED-2", 2_000)
        sender.sendall(request_head(len(accepted)) + accepted)
        status, answer = read_response(sender)
        assert (status, answer["status"], answer["events"]) == (200, "ok", 1)

    metrics = relay.metrics()
    assert metric_sum(metrics, "relay_deliveries_total", outcome="overloaded") == 1
    assert metric_sum(metrics, "relay_deliveries_total", outcome="ok") == 1
    assert metric_sum(metrics, "relay_inflight_body_bytes") == 0

    records = consume_all(relay.bootstrap, [topic_prefix + "order_create"], idle=2.0)
    assert [r.key for r in records] == [b"ACCEPTED-2"]
