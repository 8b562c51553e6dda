"""UltraCart event -> Kafka record: topic, key, value and CloudEvents headers.

Headers follow the CloudEvents Kafka protocol binding in binary content mode: the value is
the event data (the UltraCart object as JSON) and the attributes travel as ``ce_*`` headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from relay.catalog import metric_label
from relay.errors import InvalidDelivery
from relay.intake.parsing import Event
from relay.routing import KeyPicker, TopicRouter
from relay.settings import CloudEventsSettings

# The shape confluent-kafka takes for headers; relay always puts bytes in it.
Headers = list[tuple[str, str | bytes | None]]

_SPECVERSION = ("ce_specversion", b"1.0")
_CONTENT_TYPE = ("content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    # The event name as a bounded metric label ("unknown" for names outside the catalog).
    label: str


def event_id(event_name: str, value: bytes) -> str:
    """Deterministic CloudEvents id: the same event re-sent by UltraCart gets the same id.

    UltraCart puts no id on its events (WEBHOOKS.md section 1), so the id is derived from
    what identifies a retry: the event name and the object's bytes.
    """
    digest = hashlib.sha256(event_name.encode() + b"\x00" + value).hexdigest()
    return digest[:32]


class RecordBuilder:
    def __init__(
        self, router: TopicRouter, keys: KeyPicker, cloudevents: CloudEventsSettings
    ) -> None:
        self._router = router
        self._keys = keys
        self._source = cloudevents.source.encode()
        self._type_prefix = cloudevents.type_prefix
        self._default_merchant = cloudevents.merchant_id

    def build(self, events: Sequence[Event], delivery_id: str, received: datetime) -> list[Record]:
        time_header = ("ce_time", _rfc3339(received))
        delivery_header = ("relay_delivery_id", delivery_id.encode())
        records = []
        for index, event in enumerate(events):
            value = _encode(index, event)
            headers: Headers = [
                _SPECVERSION,
                ("ce_id", event_id(event.name, value).encode()),
                ("ce_type", (self._type_prefix + event.name).encode()),
                ("ce_source", self._source),
                time_header,
                _CONTENT_TYPE,
                delivery_header,
            ]
            merchant = event.obj.get("merchant_id") or self._default_merchant
            if isinstance(merchant, str) and merchant:
                headers.append(("ultracart_merchant_id", merchant.encode()))
            records.append(
                Record(
                    topic=self._router.topic_for(event.name),
                    key=self._keys.key_for(event.name, event.obj),
                    value=value,
                    headers=headers,
                    label=metric_label(event.name),
                )
            )
        return records


def _encode(index: int, event: Event) -> bytes:
    try:
        return orjson.dumps(event.obj)
    except orjson.JSONEncodeError:
        # orjson reads up to 1024 levels of nesting but writes at most 254: an object
        # between the two parses fine and can only be refused here.
        raise InvalidDelivery(
            f"events[{index}] ({event.name}) is nested too deeply (at most 254 levels)",
            code="too_deeply_nested",
        ) from None


def _rfc3339(moment: datetime) -> bytes:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


def now_utc() -> datetime:
    return datetime.now(UTC)
