from __future__ import annotations

import base64
import gzip
from pathlib import Path

import orjson
import pytest

from relay.events.errors import InvalidDelivery, MalformedDelivery, PayloadTooLarge
from relay.intake.parsing import parse_delivery

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "ultracart"
LIMITS = {"max_events": 100, "max_inflated_bytes": 1_000_000}


def compressed(events: object) -> bytes:
    packed = base64.b64encode(gzip.compress(orjson.dumps(events))).decode()
    return orjson.dumps({"events": packed})


def test_ultracart_sample_delivery_parses() -> None:
    body = (SAMPLES / "order_create_ultracart-webhook-sample.json").read_bytes()
    delivery = parse_delivery(body, **LIMITS)
    assert [e.name for e in delivery.events] == ["order_create"]
    assert orjson.loads(delivery.events[0].raw)["order_id"]
    assert not delivery.compressed


def test_mixed_events_keep_their_order() -> None:
    body = orjson.dumps(
        {
            "events": [
                {"order_create": {"order_id": "A"}},
                {"item_update": {"merchant_item_id": "I"}},
            ]
        }
    )
    delivery = parse_delivery(body, **LIMITS)
    assert [(e.name, orjson.loads(e.raw)) for e in delivery.events] == [
        ("order_create", {"order_id": "A"}),
        ("item_update", {"merchant_item_id": "I"}),
    ]


@pytest.mark.parametrize(
    "inner",
    [
        [{"order_create": {"order_id": "A"}}],
        {"events": [{"order_create": {"order_id": "A"}}]},
    ],
    ids=["array", "whole-document"],
)
def test_compressed_events_are_inflated(inner: object) -> None:
    delivery = parse_delivery(compressed(inner), **LIMITS)
    assert delivery.compressed
    assert delivery.events[0].raw == b'{"order_id":"A"}'


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (b"{", MalformedDelivery, "malformed_json"),
        (b"\xff\xfe{}", MalformedDelivery, "malformed_json"),
        (b"[]", InvalidDelivery, "not_an_object"),
        (b"{}", InvalidDelivery, "missing_events"),
        (b'{"events": {}}', InvalidDelivery, "bad_events"),
        (b'{"events": [1]}', InvalidDelivery, "bad_event"),
        (b'{"events": [{"a": {}, "b": {}}]}', InvalidDelivery, "bad_event"),
        (b'{"events": [{"order_create": [1]}]}', InvalidDelivery, "bad_event"),
        (b'{"events": [{"../etc": {}}]}', InvalidDelivery, "bad_event_name"),
        (b'{"events": "not base64!"}', MalformedDelivery, "bad_base64"),
        (b'{"events": "aGVsbG8="}', MalformedDelivery, "bad_gzip"),
        (b'{"events": [{"a": {"x": "\xff"}}]}', MalformedDelivery, "malformed_json"),
        (b'{"events": [{"a": {"x": "\\ud800"}}]}', MalformedDelivery, "malformed_json"),
        (b'{"events": [{"a": {"x": NaN}}]}', MalformedDelivery, "malformed_json"),
        (b'{"events": [{"a": {}}]} {}', MalformedDelivery, "malformed_json"),
        (b'{"events": [{"a": {}}], "events": 7}', InvalidDelivery, "bad_events"),
        (b"0 !", MalformedDelivery, "malformed_json"),
        (b"[" * 5000 + b"]" * 5000, InvalidDelivery, "too_deeply_nested"),
        (
            b'{"events": [{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
            InvalidDelivery,
            "too_deeply_nested",
        ),
    ],
)
def test_bad_bodies_get_precise_errors(body: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as caught:
        parse_delivery(body, **LIMITS)
    assert getattr(caught.value, "code", None) == code


def test_objects_are_forwarded_byte_for_byte() -> None:
    # Re-encoding would change these: 49.950 -> 49.95, the integer -> a float, the spacing.
    obj = (
        b'{ "order_id": "A",\n  "total": 49.950, '
        b'"big": 123456789012345678901234567890, "e": "\\u00e9" }'
    )
    body = b'{"events": [ {"order_create": ' + obj + b" } ]}"
    assert parse_delivery(body, **LIMITS).events[0].raw == obj


def test_non_ascii_text_is_accepted() -> None:
    body = '{"events": [{"customer_update": {"name": "Zoë Ñúñez 東京"}}]}'.encode()
    [event] = parse_delivery(body, **LIMITS).events
    assert orjson.loads(event.raw) == {"name": "Zoë Ñúñez 東京"}


def test_too_many_events_is_refused() -> None:
    body = orjson.dumps({"events": [{"item_update": {}}] * 101})
    with pytest.raises(InvalidDelivery, match="at most 100"):
        parse_delivery(body, **LIMITS)


def test_gzip_bomb_in_compressed_events_stops_at_the_limit() -> None:
    bomb = base64.b64encode(gzip.compress(b"[" + b" " * 50_000_000 + b"]")).decode()
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        parse_delivery(orjson.dumps({"events": bomb}), **LIMITS)
