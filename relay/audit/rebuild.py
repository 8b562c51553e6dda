"""A logged delivery -> the records relay would have written for it, or why it cannot say.

The logged body goes through intake's own decoding and parser (both body shapes,
compressed or not) and relay's own RecordBuilder (routing, keys, CloudEvents headers), so
each record's ``ce_id`` is the one ``relay serve`` gave the event: it depends only on the
event's name and bytes. UltraCart keeps the first 100,000 characters of each body; a body
cut there no longer parses, and its events can be checked only by what the summary says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from relay.control.models import WebhookLog
from relay.events.errors import DeliveryError
from relay.events.records import Record, RecordBuilder
from relay.intake.body import decode_content_encoding
from relay.intake.parsing import parse_delivery
from relay.settings import IntakeSettings

LOGGED_BODY_LIMIT = 100_000  # WebhookLog.request: "first 100,000 characters"


@dataclass(frozen=True, slots=True)
class Rebuilt:
    records: tuple[Record, ...]
    # The event name of each record, in the same order.
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotRebuilt:
    truncated: bool
    reason: str


def delivery_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def header(log: WebhookLog, key: str, name: str) -> str:
    for item in log.get(key, []):  # type: ignore[attr-defined]
        if str(item.get("name", "")).lower() == name:
            return str(item.get("value", ""))
    return ""


def relay_delivery_id(log: WebhookLog) -> str | None:
    """relay's own id for the delivery, from its answer (``{"delivery_id": ...}``), if any."""
    try:
        answer = orjson.loads(log.get("response", "") or b"null")
    except orjson.JSONDecodeError:
        return None
    found = answer.get("delivery_id") if isinstance(answer, dict) else None
    return found if isinstance(found, str) and found else None


def rebuild(
    log: WebhookLog, builder: RecordBuilder, intake: IntakeSettings
) -> Rebuilt | NotRebuilt:
    text = log.get("request", "")
    if not text:
        return NotRebuilt(False, "UltraCart's log holds no request body for this delivery")
    try:
        body = decode_content_encoding(
            text.encode("utf-8"),
            header(log, "request_headers", "content-encoding"),
            intake.max_decompressed_bytes,
        )
        delivery = parse_delivery(
            body,
            max_events=intake.max_events_per_delivery,
            max_inflated_bytes=intake.max_decompressed_bytes,
        )
    except DeliveryError as error:
        if len(text) >= LOGGED_BODY_LIMIT:
            return NotRebuilt(
                True,
                "UltraCart's log keeps the first 100,000 characters of a body and this one was "
                "cut there, so its events' ce_ids cannot be computed",
            )
        return NotRebuilt(False, f"the logged body is not a delivery relay takes ({error.code})")
    delivery_id = relay_delivery_id(log) or f"ultracart-log:{log.get('request_id', '')}"
    received = delivery_time(log.get("delivery_dts", ""))
    records = builder.build(delivery.events, delivery_id, received)
    return Rebuilt(tuple(records), tuple(event.name for event in delivery.events))


def ce_id(record: Record) -> str:
    for name, value in record.headers:
        if name == "ce_id" and isinstance(value, bytes):
            return value.decode()
    raise ValueError("a record without ce_id")  # RecordBuilder always sets one
