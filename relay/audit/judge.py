"""The outcome of every logged event, from UltraCart's log and the Kafka index.

- A complete logged body: each event's ce_id on its routed topic within the window around
  the delivery's time is ``in_kafka``, else ``missing`` (or ``pending`` while UltraCart
  will still retry a failed delivery).
- A body cut at 100,000 characters: only the summary's event names and order ids remain.
  An order id with no record keyed by it on those topics near the delivery's time is
  ``missing``; one with such a record is ``unverifiable`` (the key matches, but without the
  body the record cannot be proved to be this event). Without order ids: ``unverifiable``.
- A failed delivery younger than the pending bound: ``pending``, from the summary alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from relay.audit.collect import LoggedDelivery
from relay.audit.kafka_index import KafkaIndex
from relay.audit.outcome import AuditedEvent
from relay.audit.rebuild import NotRebuilt, Rebuilt, ce_id
from relay.control.catalog import supports_reflow
from relay.events.records import Record
from relay.events.routing import KeyPicker, TopicRouter

Rebuilding = Rebuilt | NotRebuilt | None


@dataclass
class Judged:
    events: list[AuditedEvent] = field(default_factory=list)
    # Each missing event that the logged body can restore, with its record.
    repairable: list[tuple[AuditedEvent, Record]] = field(default_factory=list)


def reflow_advice(event_name: str, order_ids: tuple[str, ...] = ()) -> str:
    if supports_reflow(event_name):
        return (
            f"ask UltraCart to reflow {event_name} (--reflow, or `relay webhooks reflow "
            f"{event_name}`); it re-sends every {event_name.split('_')[0]}"
        )
    what = f"order(s) {', '.join(order_ids)}" if order_ids else "the objects concerned"
    return (
        f"UltraCart cannot re-send {event_name}: read {what} through UltraCart's API, or "
        "ask UltraCart support to resend the delivery"
    )


class Judge:
    def __init__(
        self,
        router: TopicRouter,
        keys: KeyPicker,
        index: KafkaIndex,
        window: timedelta,
        pending_for: timedelta,
    ) -> None:
        self._router = router
        self._keys = keys
        self._index = index
        self._window_ms = int(window.total_seconds() * 1000)
        self._pending_for = pending_for

    def judge(self, delivery: LoggedDelivery, rebuilt: Rebuilding, age: timedelta) -> Judged:
        judged = Judged()
        retrying = delivery.summary.get("success") is False and age < self._pending_for
        if isinstance(rebuilt, Rebuilt):
            for name, record in zip(rebuilt.names, rebuilt.records, strict=True):
                self._by_ce_id(delivery, name, record, retrying, judged)
        elif isinstance(rebuilt, NotRebuilt) and rebuilt.truncated and not retrying:
            judged.events.extend(self._by_key(delivery, rebuilt.reason))
        else:
            reason = (
                rebuilt.reason
                if isinstance(rebuilt, NotRebuilt)
                else delivery.no_log or "the summary settles it"
            )
            judged.events.extend(self._from_summary(delivery, retrying, reason))
        return judged

    def _by_ce_id(
        self, delivery: LoggedDelivery, name: str, record: Record, retrying: bool, judged: Judged
    ) -> None:
        event_id = ce_id(record)
        found = self._index.has_event(record.topic, event_id, _ms(delivery), self._window_ms)
        event = AuditedEvent(
            log_request_id=delivery.log_request_id,
            delivery_dts=str(delivery.summary.get("delivery_dts", "")),
            event_name=name,
            topic=record.topic,
            key=None if record.key is None else record.key.decode("utf-8", "replace"),
            ce_id=event_id,
            outcome="in_kafka" if found else "pending" if retrying else "missing",
            checked_by="ce_id",
        )
        if event.outcome == "pending":
            event.reason = "the delivery failed and UltraCart will retry it"
        elif event.outcome == "missing":
            event.reason = _missing_reason(delivery)
            event.advice = "republish it from UltraCart's log: --repair"
            judged.repairable.append((event, record))
        judged.events.append(event)

    def _by_key(self, delivery: LoggedDelivery, reason: str) -> Iterator[AuditedEvent]:
        names = [str(n) for n in delivery.summary.get("event_names") or []]
        order_ids = tuple(str(o) for o in delivery.summary.get("order_ids") or [])
        keyed = [n for n in names if "order_id" in self._keys.fields_for(n)]
        topics = sorted({self._router.topic_for(n) for n in keyed})
        if not order_ids:
            keyed = []
        # Names not keyed by order id (items, customers...) have nothing to look for.
        for name in [n for n in names if n not in keyed] or ([] if keyed else ["(unknown)"]):
            event = self._summary_event(
                delivery,
                name,
                "unverifiable",
                reason + "; the summary names no id to look for this event by",
                order_ids,
                advice=reflow_advice(name, order_ids),
            )
            event.truncated = True
            yield event
        if not keyed:
            return
        label = "|".join(keyed)
        for order_id in order_ids:
            seen = self._index.has_key(topics, order_id.encode(), _ms(delivery), self._window_ms)
            yield AuditedEvent(
                log_request_id=delivery.log_request_id,
                delivery_dts=str(delivery.summary.get("delivery_dts", "")),
                event_name=label,
                topic=",".join(topics),
                key=order_id,
                ce_id=None,
                outcome="unverifiable" if seen else "missing",
                checked_by="key",
                reason=reason
                + (
                    "; a record with this key is on the topic near the delivery's time"
                    if seen
                    else "; no record with this key is on the topic near the delivery's time"
                ),
                order_ids=order_ids,
                advice=None if seen else reflow_advice(keyed[0], (order_id,)),
                truncated=True,
            )

    def _from_summary(
        self, delivery: LoggedDelivery, retrying: bool, reason: str
    ) -> Iterator[AuditedEvent]:
        names = [str(n) for n in delivery.summary.get("event_names") or []] or ["(unknown)"]
        order_ids = tuple(str(o) for o in delivery.summary.get("order_ids") or [])
        for name in names:
            if retrying:
                yield self._summary_event(
                    delivery,
                    name,
                    "pending",
                    f"the delivery failed (HTTP {delivery.summary.get('status_code', '?')}) "
                    f"and UltraCart will retry it; pending until {self._pending_for} old",
                    order_ids,
                )
            else:
                yield self._summary_event(delivery, name, "unverifiable", reason, order_ids)

    def _summary_event(
        self,
        delivery: LoggedDelivery,
        name: str,
        outcome: str,
        reason: str,
        order_ids: tuple[str, ...],
        advice: str | None = None,
    ) -> AuditedEvent:
        known = name != "(unknown)"
        return AuditedEvent(
            log_request_id=delivery.log_request_id,
            delivery_dts=str(delivery.summary.get("delivery_dts", "")),
            event_name=name,
            topic=self._router.topic_for(name) if known else None,
            key=None,
            ce_id=None,
            outcome=outcome,  # type: ignore[arg-type]
            checked_by="summary",
            reason=reason,
            order_ids=order_ids,
            advice=advice,
        )


def _ms(delivery: LoggedDelivery) -> int:
    return int(delivery.delivered.timestamp() * 1000)


def _missing_reason(delivery: LoggedDelivery) -> str:
    if delivery.summary.get("success") is False:
        return "the delivery failed long enough ago that UltraCart has stopped retrying it"
    return "UltraCart logged the delivery as successful, but the event is not on its topic"
