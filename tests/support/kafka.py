"""Topics on a real Kafka broker: created for a test, read back for its assertions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import TopicMetadata  # not re-exported by .admin either

# confluent_kafka.admin re-exports NewTopic without declaring it, which mypy --strict rejects.
from confluent_kafka.cimpl import NewTopic

from tests.support.schemas import check_records
from tests.support.waiting import wait_until

# How often consume_all re-reads metadata while waiting for topics that do not exist yet.
_METADATA_RETRY_S = 0.25


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # Kafka allows repeated header names; the last one wins here, which is enough for relay's
    # headers (each name is written once). A header with a null value reads as b"".
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int | None = None


def consume_all(
    bootstrap: str,
    topics: Sequence[str],
    expected_count: int | None = None,
    timeout: float = 30.0,
    idle: float = 1.0,
    client_config: Mapping[str, str] | None = None,
) -> list[ConsumedRecord]:
    """Read ``topics`` from the beginning, in (topic, partition, offset) order.

    With ``expected_count`` it returns as soon as that many records have arrived, or whatever
    it has at ``timeout`` (so the caller's assertion shows what did arrive). Without it, it
    returns once every partition is at its end and nothing new has come for ``idle`` seconds;
    a topic that still does not exist by then counts as empty.

    Uses a fresh group id and never commits, so it sees every record however often it runs.
    Values of UltraCart events are checked against relay's JSON Schemas (tests/support/schemas).
    ``client_config`` adds librdkafka options (security.protocol, sasl.*, ssl.*).
    """
    if not topics:
        raise ValueError("consume_all needs at least one topic")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"relay-tests-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            # Tests wait on this; the 500 ms default mostly delays noticing a drained partition.
            "fetch.wait.max.ms": 50,
            # Stated because it matters: records of aborted transactions must never count.
            "isolation.level": "read_committed",
            **(client_config or {}),
        }
    )
    # Metadata comes from an AdminClient because Consumer.list_topics is untyped.
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    try:
        return _drain(consumer, admin, topics, expected_count, timeout, idle)
    finally:
        consumer.close()


def _drain(
    consumer: Consumer,
    admin: AdminClient,
    topics: Sequence[str],
    expected_count: int | None,
    timeout: float,
    idle: float,
) -> list[ConsumedRecord]:
    start = time.monotonic()
    deadline = start + timeout
    # Partitions are assigned explicitly rather than by subscribe(): no group rebalance to wait
    # for, and topics that appear later (the code under test creates them) are picked up here.
    pending = set(topics)
    assigned: set[tuple[str, int]] = set()
    at_end: set[tuple[str, int]] = set()
    records: list[ConsumedRecord] = []
    last_activity = start
    next_metadata = start

    while True:
        now = time.monotonic()
        if expected_count is not None and len(records) >= expected_count:
            break
        if now >= deadline:
            break
        if pending and now >= next_metadata:
            found = _partitions_of(admin, pending, timeout=max(0.1, min(5.0, deadline - now)))
            if found:
                consumer.incremental_assign(
                    [TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(found)]
                )
                assigned |= found
                pending -= {t for t, _ in found}
                last_activity = time.monotonic()
            next_metadata = time.monotonic() + _METADATA_RETRY_S
        drained = at_end >= assigned and (not pending or expected_count is None)
        if expected_count is None and drained and now - last_activity >= idle:
            break

        msg = consumer.poll(0.1) if assigned else None
        if msg is None:
            if not assigned:
                time.sleep(0.05)
            continue
        err = msg.error()
        tp = (cast(str, msg.topic()), cast(int, msg.partition()))
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                at_end.add(tp)
                continue
            if err.retriable() and not err.fatal():
                continue
            raise KafkaException(err)
        at_end.discard(tp)
        last_activity = time.monotonic()
        records.append(_to_record(msg))

    records.sort(key=lambda r: (r.topic, r.partition, r.offset))
    # The one place records are read back, so every test that reads them checks them too.
    check_records(records)
    return records


def _partitions_of(
    admin: AdminClient, topics: Iterable[str], timeout: float
) -> set[tuple[str, int]]:
    """Partitions of those ``topics`` that exist and have a leader right now."""
    # Asking for all topics (not one by name) so this lookup never auto-creates a topic.
    metadata = admin.list_topics(timeout=timeout)
    found: set[tuple[str, int]] = set()
    for name in topics:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            continue
        if any(p.error is not None or p.leader < 0 for p in topic.partitions.values()):
            continue
        found |= {(name, p) for p in topic.partitions}
    return found


def _to_record(msg: Message) -> ConsumedRecord:
    raw_headers = msg.headers() or []
    items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    headers = {name: _as_bytes(value) for name, value in items}
    ts_type, ts = msg.timestamp()
    return ConsumedRecord(
        topic=cast(str, msg.topic()),
        partition=cast(int, msg.partition()),
        offset=cast(int, msg.offset()),
        key=msg.key(),
        value=msg.value(),
        headers=headers,
        timestamp_ms=None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
    )


def _as_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int = 3,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
    exist_ok: bool = False,
) -> None:
    """Create ``names`` and return once every partition has a leader (ready to produce to).

    With ``exist_ok`` a topic that already exists is kept as it is (the benchmark's
    ``--bootstrap`` broker); otherwise that is an error.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                config=config or {},
            )
            for name in names
        ],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    created = set(names)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            exists = exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
            if not (exist_ok and exists):
                raise
            created.discard(name)

    def ready(name: str, topics: dict[str, TopicMetadata]) -> bool:
        topic = topics.get(name)
        return (
            topic is not None
            and topic.error is None
            and bool(topic.partitions)
            # A topic made here must show all its partitions: metadata may lag behind.
            and (name not in created or len(topic.partitions) == partitions)
            and all(p.error is None and p.leader >= 0 for p in topic.partitions.values())
        )

    # CreateTopics completes at the controller; wait until the broker's metadata has caught
    # up too, or the first produce in a test may race it.
    def all_ready() -> bool:
        topics = admin.list_topics(timeout=5).topics
        return all(ready(n, topics) for n in names)

    wait_until(
        all_ready,
        timeout=timeout,
        interval=0.1,
        message=f"topics not ready: {sorted(names)}",
    )
