"""UltraCart event -> Kafka record: topic, key, value and CloudEvents headers.

Headers follow the CloudEvents Kafka protocol binding in binary content mode: the value is
the event data (the UltraCart object as JSON, the bytes UltraCart sent) and the attributes
travel as ``ce_*`` headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from relay.events.catalog import metric_label
from relay.events.dataschema import dataschema_for
from relay.events.errors import PayloadTooLarge
from relay.events.identity import FieldReader
from relay.events.routing import KeyPicker, TopicRouter
from relay.settings import CloudEventsSettings

# The shape confluent-kafka takes for headers; relay always puts bytes in it.
Headers = list[tuple[str, str | bytes | None]]

_SPECVERSION = ("ce_specversion", b"1.0")
_CONTENT_TYPE = ("content-type", b"application/json")
# Per-name answers kept by a builder; names are sender-chosen, so the memo is bounded.
_NAME_MEMO_SIZE = 4096
_MERCHANT_FIELD = "merchant_id"


class Event(NamedTuple):
    # A NamedTuple: built once per event, cheaper than a frozen dataclass.
    name: str
    # The event's JSON object exactly as received, whitespace inside it included.
    raw: bytes


class Record(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per event, and a frozen
    # dataclass's __init__ (an object.__setattr__ per field) took 9% of the GIL-holding
    # samples in a profile of 100-event deliveries.
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    # The event name as a bounded metric label ("unknown" for names outside the catalog).
    label: str


# Record's own __new__ is Python code; tuple.__new__ builds the same NamedTuple in C, and
# build() makes one per event.
_new_record = partial(tuple.__new__, Record)


def checked_record_bytes(records: Sequence[Record], max_record_bytes: int) -> int:
    """Refuse (413 ``event_too_large``) a delivery with a record the producer would refuse;
    otherwise return the records' value bytes in all (what the in-flight byte limit counts).

    The publisher checks before producing and the spool before appending: a record Kafka's
    client cannot take must be refused at once, not stall the drainer after a 200.
    """
    total = 0
    for record in records:
        size = len(record.value)
        if size > max_record_bytes:
            raise PayloadTooLarge(
                f"a {record.label} event is {size} bytes; the producer accepts "
                f"at most {max_record_bytes} bytes per record",
                code="event_too_large",
            )
        total += size
    return total


def event_id(event_name: str, value: bytes) -> str:
    """Deterministic CloudEvents id: the same event re-sent by UltraCart gets the same id.

    UltraCart puts no id on its events (docs/ultracart.md section 1), so the id is derived from
    what identifies a retry: the event name and the object's bytes.
    """
    digest = hashlib.sha256(event_name.encode() + b"\x00" + value).hexdigest()
    return digest[:32]


def _id_seed(event_name: str) -> Any:
    """A hasher that has already taken ``event_name`` and the separator: ``event_id`` for
    any value is then one copy and one update, without concatenating the value's bytes."""
    return hashlib.sha256(event_name.encode() + b"\x00")


class RecordBuilder:
    def __init__(
        self, router: TopicRouter, keys: KeyPicker, cloudevents: CloudEventsSettings
    ) -> None:
        self._router = router
        self._keys = keys
        self._fields = FieldReader()
        self._source = ("ce_source", cloudevents.source.encode())
        self._type_prefix = cloudevents.type_prefix
        self._default_merchant = cloudevents.merchant_id
        # Everything about an event that depends only on its name, computed once per name.
        self._by_name: dict[str, _Named] = {}
        # The ultracart_merchant_id header per merchant id (usually one per installation).
        self._merchant_headers: dict[str, tuple[str, bytes]] = {}
        # ce_time down to the second, reused by every delivery received in that second.
        self._second = -1
        self._second_text = b""

    def _named(self, name: str) -> _Named:
        known = self._by_name.get(name)
        if known is None:
            key_fields = self._keys.fields_for(name)
            # One read of the object gets the key fields and the merchant id together.
            wanted = tuple(dict.fromkeys((*key_fields, _MERCHANT_FIELD)))
            schema = dataschema_for(name)
            known = _Named(
                type_header=("ce_type", (self._type_prefix + name).encode()),
                schema_header=None if schema is None else ("ce_dataschema", schema.encode()),
                topic=self._router.topic_for(name),
                label=metric_label(name),
                wanted=wanted,
                key_count=len(key_fields),
                merchant_at=wanted.index(_MERCHANT_FIELD),
                id_seed=_id_seed(name),
            )
            if len(self._by_name) < _NAME_MEMO_SIZE:
                self._by_name[name] = known
        return known

    def _time(self, moment: datetime) -> bytes:
        if moment.tzinfo is not UTC:
            return rfc3339(moment)
        second = int(moment.timestamp())
        if second != self._second:
            self._second_text = rfc3339(moment)[:19]
            self._second = second
        return self._second_text + b".%03dZ" % (moment.microsecond // 1000)

    def build(self, events: Sequence[Event], delivery_id: str, received: datetime) -> list[Record]:
        # Runs once per event of every delivery: everything that does not depend on the
        # event is looked up before the loop, and the per-name answers come from _Named.
        time_header = ("ce_time", self._time(received))
        delivery_header = ("relay_delivery_id", delivery_id.encode())
        source = self._source
        by_name = self._by_name
        read = self._fields.read
        pick = self._keys.pick
        merchant_headers = self._merchant_headers
        new_record = _new_record
        records: list[Record] = []
        append = records.append
        for name, value in events:
            named = by_name.get(name) or self._named(name)
            found = read(named.wanted, value)
            # event_id(name, value), from the name's seeded hasher: the first 16 bytes of
            # the digest in hex are the first 32 hex digits of hexdigest().
            hasher = named.id_seed.copy()
            hasher.update(value)
            headers: Headers = [
                _SPECVERSION,
                ("ce_id", hasher.digest()[:16].hex().encode()),
                named.type_header,
                source,
                time_header,
                _CONTENT_TYPE,
                delivery_header,
            ]
            if named.schema_header is not None:
                headers.append(named.schema_header)
            merchant = found[named.merchant_at] or self._default_merchant
            if isinstance(merchant, str) and merchant:
                header = merchant_headers.get(merchant)
                if header is None:
                    header = ("ultracart_merchant_id", merchant.encode())
                    # Merchant ids are sender-chosen: remember a bounded number.
                    if len(merchant_headers) < _NAME_MEMO_SIZE:
                        merchant_headers[merchant] = header
                headers.append(header)
            # Most names are keyed by one field holding a non-empty string: taken here, the
            # general rule (KeyPicker.pick) only for the others.
            first = found[0]
            if named.key_count == 1 and type(first) is str and first:
                key: bytes | None = first.encode()
            else:
                key = pick(found[: named.key_count])
            append(new_record((named.topic, key, value, headers, named.label)))
        return records


@dataclass(frozen=True, slots=True)
class _Named:
    type_header: tuple[str, bytes]
    # The JSON Schema of the value (docs/consumers.md); none for events outside the catalog.
    schema_header: tuple[str, bytes] | None
    topic: str
    label: str
    # Top-level members read from every object of this name: the key fields, then the
    # merchant id unless it is one of them.
    wanted: tuple[str, ...]
    key_count: int
    merchant_at: int
    # sha256 already fed with the name and separator (_id_seed); copied per event.
    id_seed: Any


def rfc3339(moment: datetime) -> bytes:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


def now_utc() -> datetime:
    return datetime.now(UTC)
