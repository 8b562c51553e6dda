"""The port a record sink implements: intake and the spool publish through it, the Kafka
publisher implements it, and pure-logic tests pass a fake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relay.events.records import Record


class EventSink(Protocol):
    """Where records go. The Kafka publisher in production; a fake in pure-logic tests."""

    @property
    def ready(self) -> bool: ...

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        """Return once every record is acknowledged; raise ``Unavailable`` otherwise."""
        ...
