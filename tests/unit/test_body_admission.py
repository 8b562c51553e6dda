"""intake.max_inflight_bytes applied to request bodies: admitted by Content-Length before
any of the body is read (relay/intake/admission.py)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from relay.events.errors import Unavailable
from relay.events.records import Record
from relay.intake.admission import BodyBudget
from relay.serving.app import create_app
from tests.support.metrics import metric_sum
from tests.support.settings import settings_with

URL = "/webhooks/ultracart"
BASIC = b"Basic " + base64.b64encode(b"ultracart:s3cret")
LIMIT = 1000


class _Gauge:
    def __init__(self) -> None:
        self.value = 0

    def set(self, value: int) -> None:
        self.value = value


def budget(limit: int = LIMIT, max_body_bytes: int = 4096) -> tuple[BodyBudget, _Gauge]:
    gauge = _Gauge()
    return BodyBudget(limit, max_body_bytes, gauge), gauge  # type: ignore[arg-type]


def test_a_lone_body_is_admitted_whatever_its_declared_size() -> None:
    bodies, gauge = budget()
    hold = bodies.admit("4000")
    assert (bodies.held, gauge.value) == (4000, 4000)
    bodies.release(hold)
    assert (bodies.held, gauge.value) == (0, 0)


def test_a_body_that_would_pass_the_limit_is_refused_while_others_are_held() -> None:
    bodies, _ = budget()
    first = bodies.admit("600")
    second = bodies.admit("400")  # exactly at the limit: admitted
    with pytest.raises(Unavailable) as refused:
        bodies.admit("1")
    assert refused.value.code == "overloaded"
    assert bodies.held == 1000  # the refusal took nothing
    bodies.release(first)
    bodies.release(second)
    bodies.release(second)  # a second release gives nothing back twice
    assert bodies.held == 0


def test_a_chunked_body_is_counted_once_read() -> None:
    bodies, gauge = budget()
    hold = bodies.admit(None)
    assert bodies.held == 0
    bodies.settle(hold, 700)
    assert (bodies.held, gauge.value) == (700, 700)
    with pytest.raises(Unavailable):
        bodies.admit("301")
    bodies.release(hold)
    assert bodies.held == 0


@pytest.mark.parametrize("declared", ["5000", "abc", "-1", ""])
def test_an_oversized_or_unreadable_length_holds_nothing(declared: str) -> None:
    # Over max_body_bytes the body reader refuses it unread (413); a 503 would have
    # UltraCart send it again and again.
    bodies, _ = budget()
    held = bodies.admit("900")
    hold = bodies.admit(declared)
    assert hold.size == 0
    assert bodies.held == 900
    bodies.release(held)


class GatedSink:
    """Holds every publish until ``open`` is called, as a slow Kafka would."""

    def __init__(self) -> None:
        self.ready = True
        self.gate = asyncio.Event()
        self.waiting = 0
        self.records: list[Record] = []

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        self.waiting += 1
        await self.gate.wait()
        self.records.extend(records)


def delivery(order_id: str) -> bytes:
    return orjson.dumps({"events": [{"order_create": {"order_id": order_id, "pad": "x" * 500}}]})


async def asgi_post(
    app: Any, body: bytes, *, authorization: bytes = BASIC
) -> tuple[int, dict[str, Any], int]:
    """POST through the app's ASGI interface; also how many times it asked for the body."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", authorization),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(text), reads


def test_a_delivery_over_the_body_budget_gets_503_without_its_body_being_read() -> None:
    sink = GatedSink()
    settings = settings_with(intake={"max_inflight_bytes": LIMIT, "max_body_bytes": 4096})
    app = create_app(settings, sink=sink)

    async def scenario() -> dict[str, Any]:
        first = asyncio.create_task(asgi_post(app, delivery("HELD-1")))
        while not sink.waiting:
            await asyncio.sleep(0.001)
        # Bounded: without admission the second delivery would wait on the gate for good.
        refused = await asyncio.wait_for(asgi_post(app, delivery("REFUSED-2")), 5)
        stranger = await asgi_post(app, delivery("X"), authorization=b"Basic bm9ib2R5Om5v")
        sink.gate.set()
        return {"first": await first, "refused": refused, "stranger": stranger}

    with TestClient(app) as client:
        assert client.portal is not None  # set while the client's lifespan runs
        outcome = client.portal.call(scenario)
        metrics = client.get("/metrics").text
        after = client.post(URL, content=delivery("AFTER-3"), auth=("ultracart", "s3cret"))

    assert outcome["first"][0] == 200
    status, answer, reads = outcome["refused"]
    assert (status, answer["error"], reads) == (503, "overloaded", 0)
    # Authentication comes first: a stranger learns nothing of the budget and takes none.
    assert outcome["stranger"][0] == 401
    assert outcome["stranger"][2] == 0
    assert after.status_code == 200
    assert [r.key for r in sink.records] == [b"HELD-1", b"AFTER-3"]
    assert metric_sum(metrics, "relay_inflight_body_bytes") == 0
    assert metric_sum(metrics, "relay_deliveries_total", outcome="overloaded") == 1
