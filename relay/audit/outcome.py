"""What an audit finds: one entry per logged event, and the report over all of them.

UltraCart's log names each delivery by its *log request id* (``WebhookLog.request_id``);
relay names the same delivery by its own ``delivery_id`` (the ``relay_delivery_id``
header). The report keeps the two apart: ``log_request_id`` is always UltraCart's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["in_kafka", "missing", "unverifiable", "pending"]
OUTCOMES: tuple[Outcome, ...] = ("in_kafka", "missing", "unverifiable", "pending")

# How an event was looked for: by its ce_id (from the full logged body), by topic and key
# (the body was cut; the summary's order ids), or not at all (the summary settled it).
CheckedBy = Literal["ce_id", "key", "summary"]


@dataclass
class AuditedEvent:
    log_request_id: str
    delivery_dts: str
    event_name: str
    topic: str | None
    key: str | None
    ce_id: str | None
    outcome: Outcome
    checked_by: CheckedBy
    reason: str | None = None
    order_ids: tuple[str, ...] = ()
    advice: str | None = None
    repaired: bool = False
    # The logged body was cut at 100,000 characters.
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "log_request_id": self.log_request_id,
            "delivery_dts": self.delivery_dts,
            "event_name": self.event_name,
            "topic": self.topic,
            "key": self.key,
            "ce_id": self.ce_id,
            "outcome": self.outcome,
            "checked_by": self.checked_by,
            "repaired": self.repaired,
            "truncated": self.truncated,
        }
        for name in ("reason", "advice"):
            if getattr(self, name):
                document[name] = getattr(self, name)
        if self.order_ids:
            document["order_ids"] = list(self.order_ids)
        return document


@dataclass
class AuditReport:
    webhook_oid: int
    since: str
    until: str | None
    deliveries: int = 0
    events: list[AuditedEvent] = field(default_factory=list)
    repaired: int = 0
    reflows: list[dict[str, Any]] = field(default_factory=list)
    api_calls: int = 0
    # False when UltraCart's log could not be listed over the whole window (budget spent):
    # then nothing can be claimed about the deliveries not seen.
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"deliveries": self.deliveries, "events": len(self.events)}
        counts.update({outcome: 0 for outcome in OUTCOMES})
        for event in self.events:
            counts[event.outcome] += 1
        counts["repaired"] = self.repaired
        counts["missing_after_repair"] = sum(
            1 for e in self.events if e.outcome == "missing" and not e.repaired
        )
        return counts

    @property
    def exit_code(self) -> int:
        """0 when nothing is missing (after repair, if asked) and the window was read in
        full; 1 otherwise. (2, a usage error, is argparse's.)"""
        return 0 if self.complete and self.counts()["missing_after_repair"] == 0 else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "webhook_oid": self.webhook_oid,
            "since": self.since,
            "until": self.until,
            "complete": self.complete,
            "counts": self.counts(),
            "api_calls": self.api_calls,
            "reflows": self.reflows,
            "notes": self.notes,
            "detail": [event.to_json() for event in self.events],
        }
