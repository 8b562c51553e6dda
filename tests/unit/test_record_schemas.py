"""Each record names its value's JSON Schema (ce_dataschema), and dead letters carry full
CloudEvents attributes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from relay.consumers.schema_store import SchemaStore
from relay.events.catalog import KNOWN_EVENTS
from relay.events.dataschema import SCHEMAS_SDK_VERSION
from relay.events.errors import InvalidDelivery
from relay.events.records import Event, RecordBuilder, event_id
from relay.events.routing import KeyPicker, TopicRouter
from relay.intake.dead_letter import dead_letter_record
from relay.settings import CloudEventsSettings, TopicSettings

WHEN = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def _headers(name: str) -> dict[str, bytes]:
    builder = RecordBuilder(
        TopicRouter(TopicSettings()), KeyPicker({}), CloudEventsSettings(source="shop-a")
    )
    [record] = builder.build([Event(name, orjson.dumps({"order_id": "A"}))], "d1", WHEN)
    return {k: v for k, v in record.headers if isinstance(v, bytes)}


def test_the_version_in_records_is_the_shipped_schemas_version() -> None:
    assert SchemaStore.load().sdk_version == SCHEMAS_SDK_VERSION


def test_every_catalogued_event_names_the_schema_relay_schemas_show_prints() -> None:
    store = SchemaStore.load()
    for name in sorted(KNOWN_EVENTS):
        dataschema = _headers(name)["ce_dataschema"].decode()
        assert dataschema == store.schema(name)["$id"]
    assert _headers("order_create")["ce_dataschema"] == (
        b"urn:relay:schema:ultracart:order_create:" + SCHEMAS_SDK_VERSION.encode()
    )


def test_an_event_outside_the_catalog_names_no_schema() -> None:
    assert "ce_dataschema" not in _headers("brand_new_event")


def test_dead_letters_carry_full_cloudevents_attributes_and_the_truncation() -> None:
    body = b'{"events": [' + b"x" * 100
    record = dead_letter_record(
        "dl",
        body,
        InvalidDelivery("bad", code="bad_events"),
        delivery_id="d1",
        received=WHEN,
        content_type="application/json",
        content_encoding="",
        max_bytes=50,
        source="shop-a",
    )
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == event_id("dead_letter", body).encode()
    assert headers["ce_type"] == b"relay.dead_letter"
    assert headers["ce_source"] == b"shop-a"
    assert headers["ce_time"] == b"2026-11-27T12:00:00.123Z"
    assert headers["relay_received_at"] == b"2026-11-27T12:00:00.123456+00:00"
    assert (headers["relay_original_size"], headers["relay_truncated"]) == (b"112", b"true")
    assert record.value == body[:50]
    assert record.key is None
