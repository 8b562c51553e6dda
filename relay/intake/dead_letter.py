"""Raw records for the dead-letter topic: authenticated deliveries relay could not use.

UltraCart will re-send a rejected delivery, and it will be rejected again; keeping the raw
bytes with the reason lets someone see what arrived and replay it once fixed.
"""

from __future__ import annotations

from datetime import datetime

from relay.events.errors import RejectedDelivery
from relay.events.records import Headers, Record, event_id, rfc3339

DEAD_LETTER_LABEL = "dead_letter"
# Not an UltraCart event, so not under cloudevents.type_prefix.
DEAD_LETTER_TYPE = "relay.dead_letter"


def dead_letter_record(
    topic: str,
    body: bytes,
    error: RejectedDelivery,
    *,
    delivery_id: str,
    received: datetime,
    content_type: str,
    content_encoding: str,
    max_bytes: int,
    source: str,
) -> Record:
    kept = body[:max_bytes]
    headers: Headers = [
        # Full CloudEvents attributes, as on event records, so one consumer can read both.
        ("ce_specversion", b"1.0"),
        # Same id for the same rejected bytes, so consumers can drop UltraCart's re-sends.
        ("ce_id", event_id(DEAD_LETTER_LABEL, body).encode()),
        ("ce_type", DEAD_LETTER_TYPE.encode()),
        ("ce_source", source.encode()),
        ("ce_time", rfc3339(received)),
        ("relay_reason", error.code.encode()),
        ("relay_error", error.message.encode()),
        ("relay_status", str(error.status).encode()),
        ("relay_delivery_id", delivery_id.encode()),
        ("relay_received_at", received.isoformat().encode()),
        ("relay_original_size", str(len(body)).encode()),
        ("relay_truncated", b"true" if len(kept) < len(body) else b"false"),
    ]
    if content_type:
        headers.append(("content-type", content_type.encode("latin-1", "replace")))
    if content_encoding:
        headers.append(("content-encoding", content_encoding.encode("latin-1", "replace")))
    return Record(topic=topic, key=None, value=kept, headers=headers, label=DEAD_LETTER_LABEL)
