"""Each webhook's delivery log, kept as UltraCart keeps it, and its summaries.

A log entry is UltraCart's ``WebhookLog``: the request body cut at 100,000 characters, the
request headers (credentials masked) and the response headers, status, success and
duration. A summary is ``WebhookLogSummary`` as the current SDK (ultracart-rest-sdk 4.1.208)
has it: besides request_id, delivery_dts and success it carries status_code, duration,
event_names and order_ids, so a page of summaries says which events and orders each
delivery held. Whether UltraCart lists a name once per event or once per delivery is
unknown; the emulator lists each distinct name and order id once, in order of appearance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.control.models import WebhookLog, WebhookLogSummary

BODY_LIMIT = 100_000  # WebhookLog keeps the first 100,000 characters of each body
# How many deliveries each webhook's log keeps; older ones fall out, as they do past
# UltraCart's retention (whose length is not documented).
RETAINED = 1000


@dataclass(frozen=True)
class LoggedDelivery:
    log: WebhookLog
    event_names: tuple[str, ...]
    order_ids: tuple[str, ...]

    def summary(self) -> WebhookLogSummary:
        log = self.log
        return WebhookLogSummary(
            request_id=log.get("request_id", ""),
            delivery_dts=log.get("delivery_dts", ""),
            success=bool(log.get("success")),
            status_code=int(log.get("status_code", 0)),
            duration=int(log.get("duration", 0)),
            event_names=list(self.event_names),
            order_ids=list(self.order_ids),
        )


def describe(events: Iterable[tuple[str, Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(event_names, order_ids) of a delivery's (name, object) pairs, each distinct."""
    names: dict[str, None] = {}
    orders: dict[str, None] = {}
    for name, obj in events:
        names[name] = None
        order_id = obj.get("order_id") if isinstance(obj, dict) else None
        if isinstance(order_id, str) and order_id:
            orders[order_id] = None
    return tuple(names), tuple(orders)


def cut(text: str) -> str:
    return text[:BODY_LIMIT]


class DeliveryLog:
    def __init__(self, retained: int = RETAINED) -> None:
        self._entries: list[LoggedDelivery] = []
        self._retained = retained

    def append(self, entry: LoggedDelivery) -> None:
        self._entries.append(entry)
        if len(self._entries) > self._retained:
            del self._entries[: len(self._entries) - self._retained]

    def find(self, request_id: str) -> WebhookLog | None:
        for entry in self._entries:
            if entry.log.get("request_id") == request_id:
                return entry.log
        return None

    def newest_first(self, since: datetime | None = None) -> Iterator[LoggedDelivery]:
        for entry in reversed(self._entries):
            if since is None or datetime.fromisoformat(entry.log["delivery_dts"]) >= since:
                yield entry

    def __len__(self) -> int:
        return len(self._entries)
