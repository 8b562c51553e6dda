"""A fake event sink for pure-logic HTTP tests (integration tests use the real broker)."""

from __future__ import annotations

from collections.abc import Sequence

from relay.events.errors import Unavailable
from relay.events.records import Record


class FakeSink:
    def __init__(self) -> None:
        self.published: list[list[Record]] = []
        self.ready = True
        self.failure: Unavailable | None = None
        self.fail_topics: set[str] = set()
        # Every call to publish, failed ones included: what a retrying caller did.
        self.attempts = 0

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        self.attempts += 1
        if self.failure is not None or any(r.topic in self.fail_topics for r in records):
            raise self.failure or Unavailable("fake failure", code="produce_failed")
        self.published.append(list(records))

    @property
    def records(self) -> list[Record]:
        return [r for batch in self.published for r in batch]
