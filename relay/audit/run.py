"""One audit: UltraCart's log over a window, checked against Kafka, repaired if asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from relay.audit.collect import Progress, Window, collect
from relay.audit.judge import Judge, Rebuilding
from relay.audit.kafka_index import KafkaIndex, read_index
from relay.audit.outcome import AuditedEvent, AuditReport
from relay.audit.rebuild import Rebuilt, rebuild
from relay.audit.repair import reflow_truncated, repair
from relay.control.client import UltraCartClient
from relay.events.records import Record, RecordBuilder
from relay.events.routing import KeyPicker, TopicRouter
from relay.settings import Settings


@dataclass(frozen=True)
class AuditRequest:
    window: Window
    # How far from a delivery's time its records may be: clocks differ, and a spool or a
    # slow broker delays a record past UltraCart's delivery time.
    kafka_window: timedelta = timedelta(hours=1)
    repair: bool = False
    reflow: bool = False
    publish_timeout: float = 30.0


def audit(
    client: UltraCartClient,
    webhook_oid: int,
    settings: Settings,
    request: AuditRequest,
    progress: Progress | None = None,
) -> AuditReport:
    window = request.window
    report = AuditReport(
        webhook_oid=webhook_oid,
        since=window.since.isoformat(),
        until=None if window.until is None else window.until.isoformat(),
    )
    calls_before = client.calls
    collected = collect(client, webhook_oid, window, progress)
    report.complete = collected.complete
    report.notes.extend(collected.notes)
    report.deliveries = len(collected.deliveries)

    router = TopicRouter(settings.topics)
    keys = KeyPicker(settings.keys)
    builder = RecordBuilder(router, keys, settings.cloudevents)
    rebuilt: list[Rebuilding] = []
    topics: set[str] = set()
    for delivery in collected.deliveries:
        found = None if delivery.log is None else rebuild(delivery.log, builder, settings.intake)
        rebuilt.append(found)
        if isinstance(found, Rebuilt):
            topics.update(record.topic for record in found.records)
        topics.update(router.topic_for(str(n)) for n in delivery.summary.get("event_names") or [])

    if collected.deliveries:
        earliest = min(d.delivered for d in collected.deliveries) - request.kafka_window
        index = read_index(settings.kafka, sorted(topics), int(earliest.timestamp() * 1000))
    else:
        index = KafkaIndex()
    judge = Judge(router, keys, index, request.kafka_window, window.pending_for)
    repairable: list[tuple[AuditedEvent, Record]] = []
    for delivery, found in zip(collected.deliveries, rebuilt, strict=True):
        judged = judge.judge(delivery, found, window.now - delivery.delivered)
        report.events.extend(judged.events)
        repairable.extend(judged.repairable)

    if request.repair and repairable:
        report.repaired = repair(settings, repairable, request.publish_timeout)
    if request.reflow:
        report.reflows = reflow_truncated(client, webhook_oid, report.events)
    report.api_calls = client.calls - calls_before
    return report
