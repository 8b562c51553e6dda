from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from relay.events.records import Event, RecordBuilder, event_id
from relay.events.routing import KeyPicker, TopicRouter
from relay.settings import CloudEventsSettings, TopicPattern, TopicSettings

WHEN = datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC)


def builder(
    topics: TopicSettings | None = None, keys: dict[str, tuple[str, ...]] | None = None
) -> RecordBuilder:
    return RecordBuilder(
        TopicRouter(topics or TopicSettings()), KeyPicker(keys or {}), CloudEventsSettings()
    )


def event(name: str, obj: dict[str, Any]) -> Event:
    return Event(name, orjson.dumps(obj))


def key_of(name: str, obj: dict[str, Any], keys: dict[str, tuple[str, ...]] | None = None) -> Any:
    [record] = builder(keys=keys).build([event(name, obj)], "r", WHEN)
    return record.key


def test_topics_follow_template_overrides_and_patterns() -> None:
    router = TopicRouter(
        TopicSettings(
            events={"order_create": "orders.created"},
            patterns=(TopicPattern("order_*", "orders.{event}"), TopicPattern("item_*", "items")),
        )
    )
    assert router.topic_for("order_create") == "orders.created"
    assert router.topic_for("order_ship") == "orders.order_ship"
    assert router.topic_for("item_update") == "items"
    assert router.topic_for("customer_update") == "ultracart.customer_update"
    assert router.topic_for("brand_new_event") == "ultracart.unknown"


def test_keys_identify_the_entity_by_category() -> None:
    assert key_of("order_create", {"order_id": "DEMO-1"}) == b"DEMO-1"
    assert key_of("item_update", {"merchant_item_oid": 42, "merchant_item_id": "X"}) == b"42"
    assert key_of("item_delete", {"merchant_item_id": "X"}) == b"X"
    assert key_of("customer_update", {"customer_profile_oid": 7}) == b"7"
    assert key_of("auto_order_rebill", {"auto_order_oid": 9}) == b"9"
    assert key_of("workflow_task_update", {"workflow_task_uuid": "u"}) == b"u"
    assert key_of("order_create", {}) is None
    # One key field: an empty string or a non-identity makes no key, an integer one does.
    assert key_of("order_create", {"order_id": ""}) is None
    assert key_of("order_create", {"order_id": 17}) == b"17"
    assert key_of("order_create", {"order_id": False}) is None
    assert key_of("order_future_event", {"order_id": "A"}) == b"A"


def test_configured_key_fields_win() -> None:
    assert (
        key_of(
            "order_create",
            {"order_id": "A", "customer_profile_oid": 5},
            {"order_*": ("customer_profile_oid",)},
        )
        == b"5"
    )
    # Only string and integer identities make keys; the next field is tried instead.
    assert key_of("item_update", {"merchant_item_oid": True, "merchant_item_id": "X"}) == b"X"
    assert key_of("item_update", {"merchant_item_oid": {"a": 1}, "merchant_item_id": ""}) is None


def test_merchant_id_comes_from_the_object_or_the_default() -> None:
    [record] = builder().build([event("order_create", {"merchant_id": "M1"})], "r", WHEN)
    assert dict(record.headers)["ultracart_merchant_id"] == b"M1"
    [record] = builder().build([event("order_create", {"merchant_id": 7})], "r", WHEN)
    assert "ultracart_merchant_id" not in dict(record.headers)
    with_default = RecordBuilder(
        TopicRouter(TopicSettings()), KeyPicker({}), CloudEventsSettings(merchant_id="DEF")
    )
    [record] = with_default.build([event("order_create", {})], "r", WHEN)
    assert dict(record.headers)["ultracart_merchant_id"] == b"DEF"


def test_merchant_id_as_a_key_field_is_read_once() -> None:
    keys: dict[str, tuple[str, ...]] = {"order_*": ("merchant_id", "order_id")}
    [record] = builder(keys=keys).build(
        [event("order_create", {"merchant_id": "M", "order_id": "O"})], "r", WHEN
    )
    assert record.key == b"M"
    assert dict(record.headers)["ultracart_merchant_id"] == b"M"


def test_the_value_is_the_object_as_received() -> None:
    raw = b'{ "order_id": "A", "total": 49.950 }'
    [record] = builder().build([Event("order_create", raw)], "r", WHEN)
    assert record.value == raw
    assert record.key == b"A"


def test_record_carries_cloudevents_headers_and_the_object_as_value() -> None:
    [record] = builder().build(
        [event("order_create", {"merchant_id": "DEMO", "order_id": "DEMO-1"})], "req-1", WHEN
    )
    headers = dict(record.headers)
    assert record.topic == "ultracart.order_create"
    assert record.key == b"DEMO-1"
    assert record.value == b'{"merchant_id":"DEMO","order_id":"DEMO-1"}'
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"com.ultracart.webhook.order_create"
    assert headers["ce_source"] == b"ultracart"
    assert headers["ce_time"] == b"2026-11-27T12:00:00.123Z"
    assert headers["content-type"] == b"application/json"
    assert headers["ultracart_merchant_id"] == b"DEMO"
    assert headers["relay_delivery_id"] == b"req-1"
    assert headers["ce_id"] == event_id("order_create", record.value).encode()


def test_ce_id_is_stable_across_retries_and_differs_between_events() -> None:
    created = event("order_create", {"order_id": "A", "total": 1})
    first = dict(builder().build([created], "r1", WHEN)[0].headers)["ce_id"]
    retried = dict(builder().build([created], "r2", datetime.now(UTC))[0].headers)["ce_id"]
    updated = Event("order_update", created.raw)
    other = dict(builder().build([updated], "r1", WHEN)[0].headers)
    assert first == retried
    assert other["ce_id"] != first


def test_unknown_events_get_a_bounded_label() -> None:
    [record] = builder().build([event("brand_new_event", {})], "r", WHEN)
    assert record.label == "unknown"
    assert record.topic == "ultracart.unknown"
