"""UltraCart's log over the audit's window, with full logs only where a summary cannot settle.

A summary names the delivery, its time and whether it succeeded (and, in the current API,
its event names and order ids). A failed delivery that UltraCart will still retry is
*pending* on the summary alone. Every other delivery needs its full log: its body is what
gives the events' ce_ids. Each log is one API call, made through the client's budget; once
the budget is spent the remaining deliveries are kept with the reason, not dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.audit.rebuild import delivery_time
from relay.control.budget import BudgetSpent
from relay.control.client import UltraCartClient
from relay.control.errors import UltraCartError
from relay.control.models import WebhookLog, WebhookLogSummary

Progress = Callable[[int, int], None]
"""Called as (deliveries looked at, deliveries in the window) while logs are fetched."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime | None
    # A failed delivery younger than this is pending: UltraCart will retry it. UltraCart's
    # retry schedule is not documented, hence a stated bound rather than a known one.
    pending_for: timedelta
    now: datetime

    def holds(self, moment: datetime) -> bool:
        return moment >= self.since and (self.until is None or moment <= self.until)


@dataclass
class LoggedDelivery:
    summary: WebhookLogSummary
    delivered: datetime
    log: WebhookLog | None = None
    # Why there is no log when one was needed (budget spent, no longer held by UltraCart).
    no_log: str | None = None

    @property
    def log_request_id(self) -> str:
        return str(self.summary.get("request_id", ""))

    @property
    def pending(self) -> bool:
        return self.summary.get("success") is False and self.log is None and self.no_log is None


@dataclass
class Collected:
    deliveries: list[LoggedDelivery]
    complete: bool
    notes: list[str]


def settled_by_summary(summary: WebhookLogSummary, delivered: datetime, window: Window) -> bool:
    """A failed delivery UltraCart will still retry, whose events the summary names."""
    return (
        summary.get("success") is False
        and window.now - delivered < window.pending_for
        and bool(summary.get("event_names"))
    )


def collect(
    client: UltraCartClient, webhook_oid: int, window: Window, progress: Progress | None = None
) -> Collected:
    notes: list[str] = []
    complete = True
    listed: list[LoggedDelivery] = []
    try:
        for summary in client.log_summaries(webhook_oid, since=window.since.isoformat()):
            try:
                delivered = delivery_time(str(summary.get("delivery_dts", "")))
            except ValueError:
                notes.append(f"log {summary.get('request_id')}: unreadable delivery_dts")
                continue
            if window.holds(delivered):
                listed.append(LoggedDelivery(summary, delivered))
    except BudgetSpent as error:
        complete = False
        notes.append(f"UltraCart's log was not listed to its end: {error}")
    listed.sort(key=lambda delivery: delivery.delivered)
    for done, delivery in enumerate(listed):
        if progress is not None:
            progress(done, len(listed))
        if settled_by_summary(delivery.summary, delivery.delivered, window):
            continue
        try:
            delivery.log = client.log(webhook_oid, delivery.log_request_id)
        except BudgetSpent as error:
            delivery.no_log = f"its full log was not read: {error} (--max-api-calls)"
        except UltraCartError as error:
            if error.status != 400:
                raise
            # UltraCart answers 400 for a request id it no longer holds (past its retention).
            delivery.no_log = f"UltraCart no longer gives its log ({error.message})"
    if progress is not None:
        progress(len(listed), len(listed))
    return Collected(listed, complete, notes)
