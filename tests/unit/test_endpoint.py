from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from starlette.testclient import TestClient

from relay.events.errors import Unavailable
from relay.serving.app import create_app
from tests.support.fake_sink import FakeSink
from tests.support.settings import settings_with

AUTH = ("ultracart", "s3cret")
URL = "/webhooks/ultracart"
DELIVERY = {
    "events": [
        {"order_create": {"merchant_id": "DEMO", "order_id": "DEMO-1"}},
        {"item_update": {"merchant_id": "DEMO", "merchant_item_id": "SKU-1"}},
    ]
}


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


def make_client(sink: FakeSink, **overrides: object) -> TestClient:
    tables: dict[str, Any] = {
        "intake": {"max_body_bytes": 4096, "max_decompressed_bytes": 65536},
        **overrides,
    }
    return TestClient(create_app(settings_with(**tables), sink=sink))


@pytest.fixture
def client(sink: FakeSink) -> Iterator[TestClient]:
    with make_client(sink) as c:
        yield c


def post(client: TestClient, body: bytes, **headers: str) -> httpx2.Response:
    return client.post(
        URL, content=body, auth=AUTH, headers={"content-type": "application/json", **headers}
    )


def test_valid_delivery_publishes_one_record_per_event(client: TestClient, sink: FakeSink) -> None:
    response = client.post(URL, json=DELIVERY, auth=AUTH, headers={"x-request-id": "abc-1"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "delivery_id": "abc-1", "events": 2}
    assert [(r.topic, r.key) for r in sink.records] == [
        ("ultracart.order_create", b"DEMO-1"),
        ("ultracart.item_update", b"SKU-1"),
    ]
    assert len(sink.published) == 1  # one publish call: all or nothing


def test_gzip_content_encoding_and_compressed_events(client: TestClient, sink: FakeSink) -> None:
    raw = orjson.dumps(DELIVERY)
    r1 = client.post(
        URL,
        content=gzip.compress(raw),
        auth=AUTH,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    packed = base64.b64encode(gzip.compress(orjson.dumps(DELIVERY["events"]))).decode()
    r2 = client.post(URL, json={"events": packed}, auth=AUTH)
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert len(sink.records) == 4


@pytest.mark.parametrize(
    "auth",
    [None, ("ultracart", "wrong"), ("someone", "s3cret")],
    ids=["none", "bad-pw", "bad-user"],
)
def test_bad_credentials_get_401_and_publish_nothing(
    client: TestClient, sink: FakeSink, auth: tuple[str, str] | None
) -> None:
    if auth is None:
        response = client.post(URL, json=DELIVERY)
    else:
        response = client.post(URL, json=DELIVERY, auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["error"] == "unauthorized"
    assert sink.published == []
    metrics = client.get("/metrics").text
    assert "relay_auth_failures_total{reason=" in metrics


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"events": [', {}, 400, "malformed_json"),
        (b'{"orders": []}', {}, 422, "missing_events"),
        (b'{"events": [{"order_create": 5}]}', {}, 422, "bad_event"),
        (b"x" * 5000, {}, 413, "payload_too_large"),
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"{}", {"content-encoding": "br"}, 415, "unsupported_content_encoding"),
        (b"not gzip", {"content-encoding": "gzip"}, 400, "bad_gzip"),
        (gzip.compress(b" " * 100_000), {"content-encoding": "gzip"}, 413, "inflated_too_large"),
    ],
)
def test_bad_input_is_answered_precisely_and_only_dead_lettered(
    client: TestClient,
    sink: FakeSink,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = post(client, body, **headers)
    assert response.status_code == status
    payload = response.json()
    assert payload["error"] == code
    assert payload["message"]
    # Nothing reached an event topic; exactly one raw copy went to the dead-letter topic.
    assert [r.topic for r in sink.records] == ["ultracart.dead_letter"]
    dead = sink.records[0]
    assert dict(dead.headers)["relay_reason"] == code.encode()
    if status != 413:
        assert dead.value == body


def test_partially_bad_delivery_publishes_nothing(client: TestClient, sink: FakeSink) -> None:
    body = orjson.dumps({"events": [{"order_create": {"order_id": "A"}}, {"item_update": []}]})
    assert post(client, body).status_code == 422
    assert all(r.topic == "ultracart.dead_letter" for r in sink.records)


def test_kafka_failure_gives_503_with_retry_after(client: TestClient, sink: FakeSink) -> None:
    sink.failure = Unavailable("Kafka did not acknowledge", code="ack_timeout")
    response = client.post(URL, json=DELIVERY, auth=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "ack_timeout"


def test_failed_dead_letter_asks_for_a_retry(client: TestClient, sink: FakeSink) -> None:
    sink.fail_topics = {"ultracart.dead_letter"}
    response = post(client, b"{not json")
    assert response.status_code == 503
    assert response.json()["error"] == "dead_letter_failed"


def test_readiness_follows_the_sink(client: TestClient, sink: FakeSink) -> None:
    assert client.get("/readyz").status_code == 200
    sink.ready = False
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["kafka"] is False
    assert client.get("/healthz").status_code == 200


def test_metrics_count_events_by_type_and_outcome(client: TestClient) -> None:
    client.post(URL, json=DELIVERY, auth=AUTH)
    text = client.get("/metrics").text
    assert 'relay_events_total{event_type="order_create",outcome="published"} 1.0' in text
    assert 'relay_deliveries_total{outcome="ok"} 1.0' in text
    assert "relay_delivery_duration_seconds_bucket" in text


def test_admin_routes_are_not_on_the_intake_port_by_default(sink: FakeSink) -> None:
    with make_client(sink, server={"admin_port": 9999}) as c:
        assert c.get("/metrics").status_code == 404


def test_empty_delivery_is_acknowledged_with_nothing_published(
    client: TestClient, sink: FakeSink
) -> None:
    response = client.post(URL, json={"events": []}, auth=AUTH)
    assert response.status_code == 200
    assert response.json()["events"] == 0
    assert sink.records == []


def test_other_methods_on_the_intake_path_still_get_405(client: TestClient, sink: FakeSink) -> None:
    # POSTs take the shortcut to the endpoint (relay.serving.app.IntakeFirst); everything
    # else goes through Starlette's router as before.
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, URL, auth=AUTH)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "POST"
    assert client.post("/elsewhere", json=DELIVERY, auth=AUTH).status_code == 404
    assert sink.published == []
