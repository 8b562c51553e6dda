"""UltraCart delivery body -> a validated list of events, or a precise 4xx.

Shape (WEBHOOKS.md section 1): ``{"events": [{"<event_name>": {...object...}}, ...]}``.
With ``compress_events`` UltraCart gzips then base64-encodes the events; the exact
envelope is undocumented, so ``"events"`` may also be a base64 string whose content is
either the events array or the whole ``{"events": [...]}`` document.

Nothing is published unless the whole delivery parses: a delivery is all or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from relay.errors import InvalidDelivery, MalformedDelivery
from relay.intake.decoding import b64decode_strict, gunzip_bounded

# Event names become metric labels and parts of topic names: keep them to a safe alphabet.
_EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    obj: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ParsedDelivery:
    events: tuple[Event, ...]
    compressed: bool


def parse_delivery(body: bytes, *, max_events: int, max_inflated_bytes: int) -> ParsedDelivery:
    document = _load_json(body, what="request body")
    if not isinstance(document, dict):
        raise InvalidDelivery(
            'the body must be a JSON object of the form {"events": [...]}', code="not_an_object"
        )
    if "events" not in document:
        raise InvalidDelivery('the body has no "events" member', code="missing_events")
    events = document["events"]
    compressed = False
    if isinstance(events, str):
        compressed = True
        events = _inflate_events(events, max_inflated_bytes)
    if not isinstance(events, list):
        raise InvalidDelivery(
            '"events" must be an array (or a compressed string)', code="bad_events"
        )
    if len(events) > max_events:
        raise InvalidDelivery(
            f"the delivery holds {len(events)} events; at most {max_events} are accepted",
            code="too_many_events",
        )
    return ParsedDelivery(
        events=tuple(_event(index, item) for index, item in enumerate(events)),
        compressed=compressed,
    )


def _inflate_events(text: str, limit: int) -> list[Any]:
    raw = gunzip_bounded(b64decode_strict(text, what='"events"'), limit, what='"events"')
    inner = _load_json(raw, what='decompressed "events"')
    if isinstance(inner, dict) and "events" in inner:
        inner = inner["events"]
    if not isinstance(inner, list):
        raise InvalidDelivery('decompressed "events" must be a JSON array', code="bad_events")
    return inner


def _event(index: int, item: Any) -> Event:
    if not isinstance(item, dict) or len(item) != 1:
        raise InvalidDelivery(
            f"events[{index}] must be an object with exactly one key, the event name",
            code="bad_event",
        )
    ((name, obj),) = item.items()
    if not _EVENT_NAME.fullmatch(name):
        raise InvalidDelivery(
            f"events[{index}] has an invalid event name (letters, digits, '_', '.', '-'; "
            "at most 100 characters)",
            code="bad_event_name",
        )
    if not isinstance(obj, dict):
        raise InvalidDelivery(f"events[{index}] ({name}) must hold a JSON object", code="bad_event")
    return Event(name=name, obj=obj)


def _load_json(data: bytes, *, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson's message names the position, which helps whoever reads the delivery log.
        raise MalformedDelivery(f"{what} is not valid JSON: {exc}") from None
