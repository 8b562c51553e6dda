"""Reading relay's topics from outside a consumer group: what ``tail`` and ``dead-letters`` share.

Partitions are assigned explicitly (no group, nothing committed), so looking at a topic
never moves anyone's offsets and needs no rebalance.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

# confluent_kafka.admin re-exports this without declaring it, which mypy --strict rejects.
from confluent_kafka.admin._metadata import TopicMetadata

from relay.kafka.admin import Admin, quiet_librdkafka_logger
from relay.kafka.client_config import admin_config
from relay.kafka.errors import KafkaFailed, KafkaRefused, KafkaUnreachable, translate
from relay.settings import KafkaSettings

# How long one poll waits; also how quickly Ctrl-C is noticed between records.
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object: the value parsed when it is JSON, else base64."""
        value: Any
        try:
            value = orjson.loads(self.value)
        except orjson.JSONDecodeError:
            value = {"base64": base64.b64encode(self.value).decode()}
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "headers": {k: v.decode("utf-8", "replace") for k, v in self.headers},
            "value": value,
        }


@dataclass(frozen=True, slots=True)
class Start:
    """Where to begin in each partition: the beginning, the last ``last`` records, or the
    first record with a timestamp at or after ``since_ms`` (Kafka's offsets for times)."""

    last: int | None = None
    since_ms: int | None = None


class TopicReader:
    """Reads some topics' partitions from a start position, to their current end or forever."""

    def __init__(self, kafka: KafkaSettings, timeout: float = 10.0) -> None:
        # librdkafka's per-reconnect lines at debug level: the failure is reported once, in words.
        config = {**admin_config(kafka), "logger": quiet_librdkafka_logger()}
        self._bootstrap = kafka.bootstrap_servers
        # Admin: bounded metadata calls whose failure names the most specific reason.
        self._admin = Admin(kafka)
        try:
            self._consumer = self._new_consumer(kafka, config)
        except KafkaException as exc:
            raise KafkaRefused(f"librdkafka refused the configuration: {translate(exc)}") from None
        self._timeout = timeout
        self._ends: dict[tuple[str, int], int] = {}

    @staticmethod
    def _new_consumer(kafka: KafkaSettings, config: dict[str, Any]) -> Consumer:
        return Consumer(
            {
                **config,
                "client.id": kafka.client_id + "-reader",
                # Required by librdkafka even with assign(); never used to commit.
                "group.id": f"relay-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )

    def close(self) -> None:
        self._consumer.close()

    def existing(self, topics: Sequence[str]) -> list[str]:
        known = self._topics()
        return [t for t in topics if t in known and known[t].error is None]

    def _topics(self) -> dict[str, TopicMetadata]:
        return self._admin.metadata(self._timeout).topics

    def assign(self, topics: Sequence[str], start: Start) -> None:
        known = self._topics()
        assignment = []
        for topic in topics:
            for partition in sorted(known[topic].partitions):
                try:
                    low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=self._timeout
                    )
                except KafkaException as exc:
                    raise KafkaUnreachable(self._bootstrap, self._admin.reason(exc)) from None
                first = low if start.last is None else max(low, high - start.last)
                if start.since_ms is not None:
                    first = self._offset_at(topic, partition, start.since_ms, low, high)
                self._ends[(topic, partition)] = high
                assignment.append(TopicPartition(topic, partition, first))
        self._consumer.assign(assignment)

    def _offset_at(self, topic: str, partition: int, since_ms: int, low: int, high: int) -> int:
        try:
            [found] = self._consumer.offsets_for_times(
                [TopicPartition(topic, partition, since_ms)], timeout=self._timeout
            )
        except KafkaException as exc:
            raise KafkaUnreachable(self._bootstrap, translate(exc).text) from None
        if found.error is not None:
            raise KafkaFailed(
                f"cannot look up {topic} [{partition}] by time: {translate(found.error)}"
            )
        # -1: no record that late; start at the end, there is nothing to read.
        return high if found.offset < 0 else max(low, found.offset)

    def records(self, follow: bool) -> Iterator[ReadRecord]:
        """Records in arrival order per partition; without ``follow``, up to the ends seen
        at ``assign`` time."""
        pending = {tp for tp, end in self._ends.items() if end > 0}
        if not follow and not pending:
            return
        while True:
            msg = self._consumer.poll(_POLL_S)
            if msg is None:
                continue
            err = msg.error()
            tp = (cast(str, msg.topic()), cast(int, msg.partition()))
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(tp)
                    if not follow and not pending:
                        return
                    continue
                if err.retriable() and not err.fatal():
                    continue
                raise KafkaFailed(f"cannot read {tp[0]} [{tp[1]}]: {translate(err)}")
            record = _read(msg)
            yield record
            if not follow and record.offset + 1 >= self._ends.get(tp, 0):
                pending.discard(tp)
                if not pending:
                    return


def _read(msg: Message) -> ReadRecord:
    raw = msg.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    headers = tuple(
        (name, b"" if v is None else v.encode() if isinstance(v, str) else v) for name, v in items
    )
    ts_type, ts = msg.timestamp()
    value = msg.value()
    return ReadRecord(
        topic=cast(str, msg.topic()),
        partition=cast(int, msg.partition()),
        offset=cast(int, msg.offset()),
        timestamp_ms=ts if ts_type != 0 else None,
        key=msg.key(),
        value=b"" if value is None else value,
        headers=headers,
    )
