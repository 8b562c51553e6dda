"""Put missing events back: republish them from UltraCart's logged body, or ask for a reflow.

A repaired record is the record ``relay serve`` would have written: the event's bytes as
logged (relay's parser keeps them as sent), the same topic, key and ``ce_id``, so consumers
that drop repeated ids treat it as the event itself. One header is added,
``relay_repaired_from: ultracart-log:<log request id>``, naming where it came from. Only
events the audit found missing are written, each once even when two logged deliveries held
it, so a second audit finds them and writes nothing. Records go through the producer
``relay serve`` uses (``relay dead-letters replay``'s publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay.audit.kafka_index import REPAIRED_FROM_HEADER
from relay.audit.outcome import AuditedEvent
from relay.consumers.dead_letters import publish
from relay.control.catalog import supports_reflow
from relay.control.client import UltraCartClient
from relay.control.errors import ControlError
from relay.events.errors import DeliveryError
from relay.events.records import Record
from relay.settings import Settings


def repair_source(log_request_id: str) -> bytes:
    return f"ultracart-log:{log_request_id}".encode()


def repair_records(missing: Sequence[tuple[AuditedEvent, Record]]) -> list[Record]:
    """The records to write: each missing event once, with the header naming its log."""
    chosen: dict[tuple[str, str | None], Record] = {}
    for event, record in missing:
        if (record.topic, event.ce_id) in chosen:
            continue
        headers = [*record.headers, (REPAIRED_FROM_HEADER, repair_source(event.log_request_id))]
        chosen[(record.topic, event.ce_id)] = record._replace(headers=headers)
    return list(chosen.values())


def repair(
    settings: Settings, missing: Sequence[tuple[AuditedEvent, Record]], timeout: float
) -> int:
    """Write the missing events; mark them repaired once Kafka has acknowledged every one."""
    records = repair_records(missing)
    if records:
        try:
            publish(settings, records, timeout)
        except DeliveryError as error:
            # Some may have been written: they carry their ce_id, so the next audit finds
            # them and writes only the rest.
            raise ControlError(
                f"repair: Kafka did not take the {len(records)} record(s): {error.message}"
            ) from None
    for event, _record in missing:
        event.repaired = True
    return len(records)


def reflow_truncated(
    client: UltraCartClient, webhook_oid: int, events: Sequence[AuditedEvent]
) -> list[dict[str, Any]]:
    """Ask UltraCart to reflow each reflowable event name whose delivery was cut in its log
    and not proved in Kafka; one call per name, whatever the number of deliveries."""
    names: dict[str, None] = {}
    for event in events:
        if event.truncated:
            for name in event.event_name.split("|"):
                if supports_reflow(name):
                    names[name] = None
    done = []
    for name in names:
        answer = client.reflow(webhook_oid, name)
        done.append({"event_name": name, "queued": bool(answer.get("queued"))})
    return done
