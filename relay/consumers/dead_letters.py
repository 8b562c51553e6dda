"""``relay dead-letters list|show|replay``: look at rejected deliveries and publish them again.

Replay runs intake's decoding and parsing again on the kept body (after a configuration
fix, say a larger ``intake.max_events_per_delivery``) and publishes the events through the
path ``relay serve`` uses: the same ``RecordBuilder`` (topics, keys, CloudEvents headers)
and the same producer settings. Replaying is idempotent through ``ce_id``: it is derived
from each event's name and bytes, so a replay (or a second one) yields the ids UltraCart's
own delivery would have had, and a consumer that drops repeated ids applies each event once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from relay.consumers.reading import ReadRecord, Start, TopicReader
from relay.events.errors import DeliveryError
from relay.events.records import Record, RecordBuilder, now_utc
from relay.events.routing import KeyPicker, TopicRouter
from relay.intake.body import decode_content_encoding
from relay.intake.parsing import parse_delivery
from relay.kafka.client_config import producer_config
from relay.kafka.publisher import KafkaPublisher
from relay.metrics import RelayMetrics
from relay.settings import Settings

REPLAYED_FROM_HEADER = "relay_replayed_from"


class ReplayRefused(Exception):
    """A dead letter that cannot be replayed as kept (cut short, or still not a delivery)."""


def read_dead_letters(settings: Settings, last: int | None = None) -> list[ReadRecord]:
    reader = TopicReader(settings.kafka)
    try:
        topic = settings.topics.dead_letter_topic
        if not reader.existing([topic]):
            return []
        reader.assign([topic], Start(last=last))
        return list(reader.records(follow=False))
    finally:
        reader.close()


def select(records: Sequence[ReadRecord], refs: Sequence[str]) -> list[ReadRecord]:
    """Dead letters by ``PARTITION:OFFSET`` or by ``ce_id``; an unknown ref is an error."""
    chosen = []
    for ref in refs:
        found = [
            r for r in records if f"{r.partition}:{r.offset}" == ref or r.header("ce_id") == ref
        ]
        if not found:
            raise LookupError(f"no dead letter {ref!r} (give PARTITION:OFFSET or a ce_id)")
        chosen.extend(found[:1])
    return chosen


def summary(record: ReadRecord) -> dict[str, object]:
    return {
        "ref": f"{record.partition}:{record.offset}",
        "received_at": record.header("relay_received_at"),
        "reason": record.header("relay_reason"),
        "status": record.header("relay_status"),
        "error": record.header("relay_error"),
        "original_size": record.header("relay_original_size"),
        "truncated": record.header("relay_truncated") == "true",
        "ce_id": record.header("ce_id"),
        "delivery_id": record.header("relay_delivery_id"),
    }


@dataclass(frozen=True, slots=True)
class Replayed:
    ref: str
    records: tuple[Record, ...]


def rebuild(settings: Settings, dead: ReadRecord, builder: RecordBuilder) -> Replayed:
    """The records ``relay serve`` would have written for this body, had it accepted it."""
    ref = f"{dead.partition}:{dead.offset}"
    if dead.header("relay_truncated") == "true":
        raise ReplayRefused(
            f"{ref}: the body was cut at {len(dead.value)} of "
            f"{dead.header('relay_original_size')} bytes; it cannot be replayed"
        )
    if not dead.value:
        raise ReplayRefused(f"{ref}: no body was kept ({dead.header('relay_reason')})")
    intake = settings.intake
    try:
        decoded = decode_content_encoding(
            dead.value, dead.header("content-encoding") or "", intake.max_decompressed_bytes
        )
        delivery = parse_delivery(
            decoded,
            max_events=intake.max_events_per_delivery,
            max_inflated_bytes=intake.max_decompressed_bytes,
        )
    except DeliveryError as exc:
        raise ReplayRefused(f"{ref}: still rejected: {exc.code}: {exc.message}") from None
    received = _received(dead.header("relay_received_at"))
    delivery_id = dead.header("relay_delivery_id") or f"replay-{ref}"
    records = builder.build(delivery.events, delivery_id, received)
    for record in records:
        record.headers.append((REPLAYED_FROM_HEADER, f"{dead.topic}:{ref}".encode()))
    return Replayed(ref, tuple(records))


def builder_for(settings: Settings) -> RecordBuilder:
    return RecordBuilder(
        TopicRouter(settings.topics), KeyPicker(settings.keys), settings.cloudevents
    )


def publish(settings: Settings, records: Sequence[Record], timeout: float) -> None:
    """Publish through a producer configured exactly as ``relay serve``'s."""

    async def run() -> None:
        publisher = KafkaPublisher(
            producer_config(settings.kafka, settings.intake),
            settings.intake.max_inflight_events,
            RelayMetrics(),
            settings.kafka.delivery_reports,
            max_inflight_bytes=settings.intake.max_inflight_bytes,
        )
        await publisher.start(connect_timeout=timeout)
        try:
            await publisher.publish(records, timeout)
        finally:
            await publisher.stop(flush_timeout=timeout)

    asyncio.run(run())


def _received(text: str | None) -> datetime:
    # ce_time is the original receipt time: a replayed record says when UltraCart sent it.
    if text:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return now_utc()
