"""Intake against the real broker: what UltraCart sends is what consumers read."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import orjson
import pytest

from relay.events.records import event_id
from tests.support.kafka import consume_all
from tests.support.relay import CREDENTIALS, RelayProcess

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["loop", "thread"])
def relay_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Both acknowledgement paths (relay.kafka.delivery_reports) against the real broker:
    the poll thread (the default) and loop polling give the same records and answers."""
    return {"RELAY_KAFKA__DELIVERY_REPORTS": str(request.param)}


SAMPLES = Path(__file__).resolve().parents[1] / "data" / "ultracart"


def mixed_delivery() -> dict[str, list[dict[str, dict[str, object]]]]:
    order = orjson.loads((SAMPLES / "order_create_expanded_synthetic.json").read_bytes())
    item = orjson.loads((SAMPLES / "item_update_synthetic.json").read_bytes())
    order_obj = order["events"][0]["order_create"]
    item_obj = item["events"][0]["item_update"]
    return {
        "events": [
            {"order_create": order_obj},
            {"item_update": item_obj},
            {"customer_update": {"merchant_id": "DEMO", "customer_profile_oid": 123}},
            {"order_ship": {"merchant_id": "DEMO", "order_id": order_obj["order_id"]}},
            {"brand_new_event": {"merchant_id": "DEMO", "thing_id": 1}},
        ]
    }


def test_mixed_delivery_lands_one_record_per_event(relay: RelayProcess, topic_prefix: str) -> None:
    delivery = mixed_delivery()
    response = relay.post(orjson.dumps(delivery), headers={"x-request-id": "mixed-1"})
    assert response.status_code == 200, response.text
    assert response.json()["events"] == 5

    names = ["order_create", "item_update", "customer_update", "order_ship", "unknown"]
    records = consume_all(relay.bootstrap, [topic_prefix + n for n in names], expected_count=5)
    by_topic = {r.topic.removeprefix(topic_prefix): r for r in records}
    assert sorted(by_topic) == sorted(names)

    events = [next(iter(e.items())) for e in delivery["events"]]
    expected_keys = {
        "order_create": str(events[0][1]["order_id"]).encode(),
        "item_update": str(events[1][1]["merchant_item_oid"]).encode(),
        "customer_update": b"123",
        "order_ship": str(events[0][1]["order_id"]).encode(),
        "unknown": None,
    }
    for (name, obj), topic in zip(events, names, strict=True):
        record = by_topic[topic]
        assert record.key == expected_keys[topic]
        assert record.value is not None and orjson.loads(record.value) == obj
        h = record.headers
        assert h["ce_specversion"] == b"1.0"
        assert h["ce_type"] == f"com.ultracart.webhook.{name}".encode()
        assert h["ce_id"] == event_id(name, record.value).encode()
        assert h["ce_source"] == b"ultracart"
        assert h["ce_time"].endswith(b"Z")
        assert h["content-type"] == b"application/json"
        assert h["ultracart_merchant_id"] == b"DEMO"
        assert h["relay_delivery_id"] == b"mixed-1"


def test_compressed_deliveries_land_like_plain_ones(relay: RelayProcess, topic_prefix: str) -> None:
    events = [{"item_update": {"merchant_item_id": f"SKU-{n}", "cost": n}} for n in range(20)]
    packed = base64.b64encode(gzip.compress(orjson.dumps(events))).decode()
    assert relay.post(orjson.dumps({"events": packed})).status_code == 200
    encoded = gzip.compress(orjson.dumps({"events": events}))
    assert relay.post(encoded, headers={"content-encoding": "gzip"}).status_code == 200

    records = consume_all(relay.bootstrap, [topic_prefix + "item_update"], expected_count=40)
    assert len(records) == 40
    keys = sorted(r.key or b"" for r in records)
    assert keys == sorted([f"SKU-{n}".encode() for n in range(20)] * 2)
    # The same object sent twice gets the same ce_id: consumers can drop the copy.
    ids = {r.headers["ce_id"] for r in records}
    assert len(ids) == 20


def test_every_body_shape_gives_the_same_records(relay: RelayProcess, topic_prefix: str) -> None:
    """{"events": [...]} and a bare array, each plain, gzip-encoded and compress_events'd."""
    # Written out, not encoded: no JSON encoder would keep 49.950 or the 30-digit integer.
    array = (
        b'[{"order_create":{"order_id":"SHAPE-1","total":49.950}},'
        b'{"item_update":{"merchant_item_id":"SKU-S","big":123456789012345678901234567890}}]'
    )
    packed = base64.b64encode(gzip.compress(array)).decode()
    forms = {
        "object": (b'{"events":' + array + b"}", {}),
        "array": (array, {}),
        "object, gzip": (gzip.compress(b'{"events":' + array + b"}"), {"content-encoding": "gzip"}),
        "array, gzip": (gzip.compress(array), {"content-encoding": "gzip"}),
        "object, compress_events": (orjson.dumps({"events": packed}), {}),
        "array, compress_events": (orjson.dumps(packed), {}),
    }
    for name, (body, headers) in forms.items():
        response = relay.post(body, headers=headers)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["events"] == 2

    topics = [topic_prefix + "order_create", topic_prefix + "item_update"]
    records = consume_all(relay.bootstrap, topics, expected_count=2 * len(forms))
    assert len(records) == 2 * len(forms)
    for topic in topics:
        on_topic = [r for r in records if r.topic == topic]
        # Identical key, value bytes and ce_id in every form: one event, six deliveries.
        assert len({(r.key, r.value, r.headers["ce_id"]) for r in on_topic}) == 1
    assert {r.value for r in records} == {
        b'{"order_id":"SHAPE-1","total":49.950}',
        b'{"merchant_item_id":"SKU-S","big":123456789012345678901234567890}',
    }


def test_refused_and_bad_deliveries_publish_no_event(
    relay: RelayProcess, topic_prefix: str
) -> None:
    good = orjson.dumps({"events": [{"order_create": {"order_id": "GOOD-1"}}]})
    assert relay.post(good, auth=None).status_code == 401
    assert relay.post(good, auth=("ultracart", "wrong")).status_code == 401
    assert relay.post(good, auth=("intruder", CREDENTIALS[1])).status_code == 401

    bad = [
        (b'{"events": [{"order_create": {"order_id": "HALF"}}, ', {}, 400),
        (b'{"events": [{"order_create": {"order_id": "HALF"}}, {"item_update": 1}]}', {}, 422),
        (
            b'{"events": [{"order_create": {"order_id": "HALF"}}]}',
            {"content-type": "text/plain"},
            415,
        ),
        (b"x" * (11 * 1024 * 1024), {}, 413),
        (b'{"events": "%%%"}', {}, 400),
        (b'[{"order_create": {"order_id": "HALF"}}, {"item_update": 1}]', {}, 422),
        (b'[{"order_create": {"order_id": "HALF"}}, ', {}, 400),
        (b'"%%%"', {}, 400),
        (b"[" + b" " * (11 * 1024 * 1024) + b"]", {}, 413),
    ]
    for body, headers, status in bad:
        response = relay.post(body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["message"]

    # A good delivery afterwards is the marker: once its record is in, anything the refused
    # ones had published would be there too.
    assert relay.post(good).status_code == 200
    topics = [topic_prefix + t for t in ("order_create", "item_update", "unknown")]
    records = consume_all(relay.bootstrap, topics, expected_count=1)
    assert [r.key for r in records] == [b"GOOD-1"]

    dead = consume_all(relay.bootstrap, [topic_prefix + "dead_letter"], expected_count=len(bad))
    assert sorted(int(r.headers["relay_status"]) for r in dead) == sorted(s for _, _, s in bad)
    # The raw bytes are kept, so the rejected delivery can be inspected and replayed.
    assert bad[0][0] in {r.value for r in dead}

    metrics = relay.metrics()
    assert 'relay_auth_failures_total{reason="missing"} 1.0' in metrics
    assert 'relay_auth_failures_total{reason="bad_credentials"} 2.0' in metrics
    assert CREDENTIALS[1] not in metrics
    logs = relay.log_path.read_text() if relay.log_path else ""
    assert CREDENTIALS[1] not in logs
    assert base64.b64encode(":".join(CREDENTIALS).encode()).decode() not in logs
