"""Watch a reflow arrive on Kafka: count the records that land on the event's topic.

Before the reflow is requested, the watcher notes each partition's end offset; afterwards it
counts only records beyond those marks, so earlier traffic on the topic is not mistaken for
progress. UltraCart's own ``pending`` count (polled sparingly: each look is an API call
against the hourly budget) says when UltraCart has nothing left to send.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

_METADATA_TIMEOUT = 5.0


@dataclass
class Progress:
    records: int = 0
    keys: set[bytes] = field(default_factory=set)


class TopicWatcher:
    def __init__(self, bootstrap: str, topic: str, extra: dict[str, str] | None = None) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"relay-reflow-watch-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **(extra or {}),
            }
        )
        self._marks: dict[int, int] = {}
        self._assigned: set[int] = set()
        self.progress = Progress()

    def mark(self) -> None:
        """Remember where the topic ends now; only records after this are counted."""
        self._marks = {}
        for partition in self._partitions():
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=_METADATA_TIMEOUT
            )
            self._marks[partition] = high
        self._assign()

    def _partitions(self) -> list[int]:
        metadata = self._consumer.list_topics(timeout=_METADATA_TIMEOUT)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return []
        return sorted(topic.partitions)

    def _assign(self) -> None:
        # A topic created by the reflow itself has no marks: read it from the beginning.
        partitions = self._partitions()
        self._consumer.assign(
            [TopicPartition(self.topic, p, self._marks.get(p, 0)) for p in partitions]
        )
        self._assigned = set(partitions)

    def poll(self, seconds: float) -> int:
        """Consume for up to ``seconds``; return how many new records arrived."""
        deadline = time.monotonic() + seconds
        arrived = 0
        if len(self._partitions()) != len(self._assigned):
            self._assign()
        while time.monotonic() < deadline:
            message = self._consumer.poll(min(0.2, max(0.0, deadline - time.monotonic())))
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF or error.retriable():
                    continue
                raise KafkaException(error)
            arrived += 1
            self.progress.records += 1
            key = message.key()
            if key is not None:
                self.progress.keys.add(key)
        return arrived

    def close(self) -> None:
        self._consumer.close()


@dataclass(frozen=True)
class WaitResult:
    records: int
    distinct_keys: int
    complete: bool


def wait_for_reflow(
    watcher: TopicWatcher,
    pending: Callable[[], int | None],
    *,
    say: Callable[[str], None],
    timeout: float,
    idle: float = 3.0,
    status_every: float = 10.0,
    expect: int | None = None,
) -> WaitResult:
    """Report progress until UltraCart has nothing pending and the topic has gone quiet
    for ``idle`` seconds (or ``expect`` records arrived), or until ``timeout``."""
    start = time.monotonic()
    last_arrival = start
    last_status = start - status_every
    left: int | None = None
    while True:
        now = time.monotonic()
        if now - start >= timeout:
            say(f"timed out after {timeout:g} s")
            return _result(watcher, complete=False)
        if now - last_status >= status_every:
            left = pending()
            last_status = now
            say(
                f"{watcher.progress.records} record(s) on {watcher.topic} "
                f"({len(watcher.progress.keys)} distinct key(s)); UltraCart pending: "
                f"{'unknown' if left is None else left}"
            )
        if watcher.poll(0.5):
            last_arrival = time.monotonic()
        if expect is not None and watcher.progress.records >= expect:
            return _result(watcher, complete=True)
        quiet = time.monotonic() - last_arrival >= idle
        if quiet and watcher.progress.records and left == 0:
            return _result(watcher, complete=True)
        if quiet and watcher.progress.records and left is not None and left > 0:
            # Records stopped while UltraCart still holds some: look again sooner.
            last_status = min(last_status, time.monotonic() - status_every / 2)


def _result(watcher: TopicWatcher, *, complete: bool) -> WaitResult:
    return WaitResult(watcher.progress.records, len(watcher.progress.keys), complete)
