from __future__ import annotations

from datetime import UTC, datetime

from relay.intake.parsing import Event
from relay.records import RecordBuilder, event_id
from relay.routing import KeyPicker, TopicRouter
from relay.settings import CloudEventsSettings, TopicPattern, TopicSettings

WHEN = datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC)


def builder(
    topics: TopicSettings | None = None, keys: dict[str, tuple[str, ...]] | None = None
) -> RecordBuilder:
    return RecordBuilder(
        TopicRouter(topics or TopicSettings()), KeyPicker(keys or {}), CloudEventsSettings()
    )


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
    keys = KeyPicker({})
    assert keys.key_for("order_create", {"order_id": "DEMO-1"}) == b"DEMO-1"
    assert keys.key_for("item_update", {"merchant_item_oid": 42, "merchant_item_id": "X"}) == b"42"
    assert keys.key_for("item_delete", {"merchant_item_id": "X"}) == b"X"
    assert keys.key_for("customer_update", {"customer_profile_oid": 7}) == b"7"
    assert keys.key_for("auto_order_rebill", {"auto_order_oid": 9}) == b"9"
    assert keys.key_for("workflow_task_update", {"workflow_task_uuid": "u"}) == b"u"
    assert keys.key_for("order_create", {}) is None
    assert keys.key_for("order_future_event", {"order_id": "A"}) == b"A"


def test_configured_key_fields_win() -> None:
    keys = KeyPicker({"order_*": ("customer_profile_oid",)})
    assert keys.key_for("order_create", {"order_id": "A", "customer_profile_oid": 5}) == b"5"


def test_record_carries_cloudevents_headers_and_the_object_as_value() -> None:
    [record] = builder().build(
        [Event("order_create", {"merchant_id": "DEMO", "order_id": "DEMO-1"})], "req-1", WHEN
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
    event = Event("order_create", {"order_id": "A", "total": 1})
    first = dict(builder().build([event], "r1", WHEN)[0].headers)["ce_id"]
    retried = dict(builder().build([event], "r2", datetime.now(UTC))[0].headers)["ce_id"]
    other = dict(builder().build([Event("order_update", event.obj)], "r1", WHEN)[0].headers)
    assert first == retried
    assert other["ce_id"] != first


def test_unknown_events_get_a_bounded_label() -> None:
    [record] = builder().build([Event("brand_new_event", {})], "r", WHEN)
    assert record.label == "unknown"
    assert record.topic == "ultracart.unknown"
