"""The test broker and the helpers in tests/support/kafka.py work end to end."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message, Producer

from tests.support.kafka import consume_all, create_topics

pytestmark = pytest.mark.kafka


def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, dict[str, bytes]]]
) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for key, value, headers in records:
        producer.produce(
            topic, value=value, key=key, headers=list(headers.items()), on_delivery=on_delivery
        )
    assert producer.flush(30) == 0, "records still queued after 30 s"
    assert errors == []


def test_produced_records_come_back_with_headers(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}orders"
    create_topics(kafka_bootstrap, [topic], partitions=3)
    sent = [
        (
            f"order-{i}".encode(),
            f'{{"n": {i}}}'.encode(),
            {"event": b"order_create", "seq": str(i).encode()},
        )
        for i in range(5)
    ]

    _produce(kafka_bootstrap, topic, sent)
    records = consume_all(kafka_bootstrap, [topic], expected_count=len(sent), timeout=30)

    assert len(records) == len(sent)
    assert {r.topic for r in records} == {topic}
    got = sorted((r.key or b"", r.value or b"", r.headers) for r in records)
    assert got == sorted(sent)
    assert all(0 <= r.partition < 3 for r in records)
    assert all(r.timestamp_ms is not None for r in records)


def test_drain_without_expected_count_returns_everything_and_stops(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}drain"
    create_topics(kafka_bootstrap, [topic], partitions=3)
    _produce(kafka_bootstrap, topic, [(b"k", b"v%d" % i, {}) for i in range(3)])

    records = consume_all(kafka_bootstrap, [topic], timeout=30, idle=0.5)

    # One key, so one partition, so Kafka's order is the produce order.
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert all(r.headers == {} for r in records)


def test_topic_that_never_appears_reads_as_empty(kafka_bootstrap: str, topic_prefix: str) -> None:
    assert consume_all(kafka_bootstrap, [f"{topic_prefix}absent"], timeout=10, idle=0.5) == []
