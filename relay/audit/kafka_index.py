"""Which events and keys relay's topics hold over a span of time: the audit's view of Kafka.

Each topic's partitions are read from the first record at or after the window's start
(Kafka's offsets for times) to their current end, so records written later than the window,
by a repair for instance, are seen too. Only each record's ``ce_id``, key, timestamp and
whether it is a repair are kept, not its value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from relay.consumers.reading import Start, TopicReader
from relay.settings import KafkaSettings

REPAIRED_FROM_HEADER = "relay_repaired_from"


class KafkaIndex:
    def __init__(self) -> None:
        # (topic, ce_id) -> [(timestamp ms, is a repair)]
        self._ids: dict[tuple[str, str], list[tuple[int, bool]]] = defaultdict(list)
        # (topic, key) -> [timestamp ms]
        self._keys: dict[tuple[str, bytes], list[int]] = defaultdict(list)
        self.records = 0

    def add(
        self, topic: str, ce_id: str | None, key: bytes | None, timestamp_ms: int, repaired: bool
    ) -> None:
        self.records += 1
        if ce_id:
            self._ids[(topic, ce_id)].append((timestamp_ms, repaired))
        if key is not None:
            self._keys[(topic, key)].append(timestamp_ms)

    def has_event(self, topic: str, ce_id: str, around_ms: int, window_ms: int) -> bool:
        """The event is on ``topic`` within the window around its delivery, or a repair
        wrote it (at any time: a repair is written long after the delivery)."""
        return any(
            repaired or abs(ts - around_ms) <= window_ms
            for ts, repaired in self._ids.get((topic, ce_id), ())
        )

    def has_key(self, topics: Iterable[str], key: bytes, around_ms: int, window_ms: int) -> bool:
        return any(
            abs(ts - around_ms) <= window_ms
            for topic in topics
            for ts in self._keys.get((topic, key), ())
        )


def read_index(kafka: KafkaSettings, topics: Sequence[str], since_ms: int) -> KafkaIndex:
    index = KafkaIndex()
    reader = TopicReader(kafka)
    try:
        # A topic that does not exist (deleted, never written) holds nothing: its events
        # are missing, which is the point.
        present = reader.existing(sorted(set(topics)))
        if not present:
            return index
        reader.assign(present, Start(since_ms=since_ms))
        for record in reader.records(follow=False):
            index.add(
                record.topic,
                record.header("ce_id"),
                record.key,
                record.timestamp_ms if record.timestamp_ms is not None else since_ms,
                record.header(REPAIRED_FROM_HEADER) is not None,
            )
    finally:
        reader.close()
    return index
