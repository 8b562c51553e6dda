from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from relay.events.errors import InvalidDelivery, MalformedDelivery, PayloadTooLarge
from relay.intake.parsing import parse_delivery

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "ultracart"
LIMITS = {"max_events": 100, "max_inflated_bytes": 1_000_000}


def packed(events: object) -> str:
    return base64.b64encode(gzip.compress(orjson.dumps(events))).decode()


def compressed(events: object) -> bytes:
    return orjson.dumps({"events": packed(events)})


EVENTS = [
    {"order_create": {"order_id": "A", "total": 49.950}},
    {"item_update": {"merchant_item_id": "I"}},
]
EVENTS_JSON = (
    b'[{"order_create":{"order_id":"A","total":49.950}},{"item_update":{"merchant_item_id":"I"}}]'
)
# Every form a delivery of EVENTS may take: the two shapes of docs/ultracart.md section 1, and
# compress_events' base64 of gzip inside "events" or as the whole body, of either shape.
SHAPES = {
    "object": (b'{"events":' + EVENTS_JSON + b"}", "object"),
    "array": (EVENTS_JSON, "array"),
    "object, events compressed": (
        orjson.dumps({"events": base64.b64encode(gzip.compress(EVENTS_JSON)).decode()}),
        "object+gzip-base64",
    ),
    "object, whole document compressed": (
        orjson.dumps(
            {"events": base64.b64encode(gzip.compress(b'{"events":' + EVENTS_JSON + b"}")).decode()}
        ),
        "object+gzip-base64",
    ),
    "string of the compressed array": (
        orjson.dumps(base64.b64encode(gzip.compress(EVENTS_JSON)).decode()),
        "string+gzip-base64",
    ),
    "string of the compressed object": (
        orjson.dumps(base64.b64encode(gzip.compress(b'{"events":' + EVENTS_JSON + b"}")).decode()),
        "string+gzip-base64",
    ),
}


@pytest.mark.parametrize("form", list(SHAPES))
def test_every_shape_is_the_same_delivery(form: str) -> None:
    body, shape = SHAPES[form]
    delivery = parse_delivery(body, **LIMITS)
    assert delivery.shape == shape
    # Byte for byte, whichever shape carried them: 49.950 is not re-encoded.
    assert delivery.events == parse_delivery(SHAPES["object"][0], **LIMITS).events
    assert delivery.events[0].raw == b'{"order_id":"A","total":49.950}'


def test_ultracart_sample_delivery_parses() -> None:
    body = (SAMPLES / "order_create_ultracart-webhook-sample.json").read_bytes()
    delivery = parse_delivery(body, **LIMITS)
    assert [e.name for e in delivery.events] == ["order_create"]
    assert orjson.loads(delivery.events[0].raw)["order_id"]
    assert delivery.shape == "object"


def test_the_wiki_sample_shape_parses() -> None:
    # UltraCart's wiki ("Creating a Simple Webhook"): a top-level array of events.
    body = b'[ {"order_create": {"merchant_id": "DEMO", "order_id": "DEMO-0009104420"}} ]'
    delivery = parse_delivery(body, **LIMITS)
    assert delivery.shape == "array"
    assert [e.name for e in delivery.events] == ["order_create"]


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
    assert delivery.shape == "object+gzip-base64"
    assert delivery.events[0].raw == b'{"order_id":"A"}'


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (b"{", MalformedDelivery, "malformed_json"),
        (b"\xff\xfe{}", MalformedDelivery, "malformed_json"),
        (b"7", InvalidDelivery, "not_a_delivery"),
        (b"null", InvalidDelivery, "not_a_delivery"),
        (b"{}", InvalidDelivery, "missing_events"),
        (b"[1]", InvalidDelivery, "bad_event"),
        (b'[{"a": {}, "b": {}}]', InvalidDelivery, "bad_event"),
        (b'[{"order_create": "x"}]', InvalidDelivery, "bad_event"),
        (b'[{"../etc": {}}]', InvalidDelivery, "bad_event_name"),
        (b'"not base64!"', MalformedDelivery, "bad_base64"),
        (b'"aGVsbG8="', MalformedDelivery, "bad_gzip"),
        (b'[{"a": {}}] []', MalformedDelivery, "malformed_json"),
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
        # Numbers no float holds, where a delivery has none (found by the fuzzer: a 500).
        (b"4" * 35 + b"e4444444", InvalidDelivery, "not_a_delivery"),
        (b'{"events": 1e999}', InvalidDelivery, "bad_events"),
        (b'{"events": [1e999]}', InvalidDelivery, "bad_events"),
        (b'[{"a": {}}, -1e999]', InvalidDelivery, "bad_events"),
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


@pytest.mark.parametrize(
    ("bad", "code", "words"),
    [
        (b'{"a": {}, "b": {}}', "bad_event", "events[2] must be an object with exactly one key"),
        (b"{}", "bad_event", "events[2] must be an object with exactly one key"),
        (b'{"../etc": {}}', "bad_event_name", "events[2] has an invalid event name"),
        (b'{"order_create": [1]}', "bad_event", "events[2] (order_create) must hold a JSON"),
    ],
)
def test_the_first_bad_event_is_named_by_its_index(bad: bytes, code: str, words: str) -> None:
    good = b'{"order_create": {"order_id": "A"}}'
    with pytest.raises(InvalidDelivery) as caught:
        parse_delivery(b"[" + b",".join([good, good, bad, good]) + b"]", **LIMITS)
    assert caught.value.code == code
    assert str(caught.value).startswith(words)


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


@pytest.mark.parametrize(
    "wrap", [lambda e: {"events": e}, lambda e: e, packed], ids=["object", "array", "string"]
)
def test_too_many_events_is_refused(wrap: Callable[[object], object]) -> None:
    body = orjson.dumps(wrap([{"item_update": {}}] * 101))
    with pytest.raises(InvalidDelivery, match="at most 100"):
        parse_delivery(body, **LIMITS)


def test_the_refusal_names_both_shapes() -> None:
    with pytest.raises(InvalidDelivery) as caught:
        parse_delivery(b"true", **LIMITS)
    assert '{"events": [...]}' in caught.value.message
    assert "JSON array" in caught.value.message


@pytest.mark.parametrize("wrap", [lambda b: {"events": b}, lambda b: b], ids=["object", "string"])
def test_gzip_bomb_in_compressed_events_stops_at_the_limit(wrap: Callable[[str], object]) -> None:
    bomb = base64.b64encode(gzip.compress(b"[" + b" " * 50_000_000 + b"]")).decode()
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        parse_delivery(orjson.dumps(wrap(bomb)), **LIMITS)
