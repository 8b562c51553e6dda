"""UltraCart delivery body -> a validated list of events, or a precise 4xx.

UltraCart's own sources show two shapes (docs/ultracart.md section 1), and which one it sends
today is unknown, so both are the same delivery here:

- ``{"events": [{"<event_name>": {...object...}}, ...]}``, as its sample receiver reads it;
- ``[{"<event_name>": {...object...}}, ...]``, a top-level array, as its wiki documents it.

With ``compress_events`` UltraCart gzips then base64-encodes the events; that envelope is
undocumented too, so ``"events"`` may be a base64 string, and so may the whole body (a
top-level JSON string), and what it inflates to may be either shape above.

Each event's object is kept as the exact bytes UltraCart sent (``msgspec.Raw``): msgspec
checks the whole document's JSON syntax while it skips over the objects, so relay never
builds Python objects for the event data nor writes them out again. That is what makes
large expanded orders cheap, and it keeps values byte-for-byte: re-encoding would turn
``49.950`` into ``49.95`` and a 30-digit integer into a float. The same events therefore
give the same records and ``ce_id``s whichever shape carried them.

Nothing is published unless the whole delivery parses: a delivery is all or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal, NoReturn

import msgspec

from relay.events.errors import InvalidDelivery, MalformedDelivery
from relay.events.records import Event
from relay.intake.decoding import b64decode_strict, gunzip_bounded

# Event names become metric labels and parts of topic names: keep them to a safe alphabet.
_EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")

_Events = list[dict[str, msgspec.Raw]]


class _Envelope(msgspec.Struct):
    # Other top-level members are ignored, as they would be by any JSON consumer.
    events: _Events | str


class _InnerEnvelope(msgspec.Struct):
    events: _Events


# One decoder takes every shape: msgspec tells an object, an array and a string apart by
# the first byte, so accepting both shapes costs nothing on either.
_Body = _Envelope | _Events | str

# Decoders are immutable and thread-safe; building one per call would cost more than parsing.
_BODY = msgspec.json.Decoder(_Body)
_INFLATED = msgspec.json.Decoder(_Events | _InnerEnvelope)
_ANY = msgspec.json.Decoder()

# The shapes, as ParsedDelivery.shape names them: the two of docs/ultracart.md, and each of them
# compressed (base64 of gzip in "events", or as the whole body, a JSON string).
Shape = Literal["object", "array", "object+gzip-base64", "string+gzip-base64"]

# What a refused body should have looked like, in words a sender's developer can act on.
SHAPES = 'a JSON object {"events": [...]} or a JSON array [...] of {"<event_name>": {...}}'


@dataclass(frozen=True, slots=True)
class ParsedDelivery:
    events: tuple[Event, ...]
    # Which shape carried the events: intake logs each the first time it is seen, since
    # which one UltraCart sends is unknown.
    shape: Shape


def parse_delivery(body: bytes, *, max_events: int, max_inflated_bytes: int) -> ParsedDelivery:
    document = _decode(_BODY, body, what="request body")
    shape: Shape
    if isinstance(document, list):
        events, shape = document, "array"
    elif isinstance(document, str):
        events = _inflate_events(document, max_inflated_bytes, "the body (a JSON string)")
        shape = "string+gzip-base64"
    elif isinstance(document.events, str):
        events = _inflate_events(document.events, max_inflated_bytes, '"events"')
        shape = "object+gzip-base64"
    else:
        events, shape = document.events, "object"
    if len(events) > max_events:
        raise InvalidDelivery(
            f"the delivery holds {len(events)} events; at most {max_events} are accepted",
            code="too_many_events",
        )
    return ParsedDelivery(events=_events(events), shape=shape)


def _events(items: _Events) -> tuple[Event, ...]:
    """Each item's one member as an ``Event``; the first item that is not one is refused.

    Runs once per event. A profile of 100-event deliveries put 1.7 µs per event here when
    each item went through ``_event`` from a generator; this loop checks the same things in
    the usual order of cheapness and leaves the wording of a refusal to ``_refuse_event``.
    """
    events: list[Event] = []
    append = events.append
    new_event = _new_event
    for index, item in enumerate(items):
        if len(item) == 1:
            ((name, obj),) = item.items()
            raw = bytes(obj)
            # Raw spans exactly the value, without surrounding whitespace.
            if raw[:1] == b"{" and _valid_name(name):
                append(new_event((name, raw)))
                continue
        _refuse_event(index, item)
    return tuple(events)


# Event's own __new__ is Python code; tuple.__new__ builds the same NamedTuple in C.
_new_event = partial(tuple.__new__, Event)


@lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    # A delivery repeats a handful of names: the pattern runs once per name, not per event.
    # Bounded, because names are the sender's to choose.
    return _EVENT_NAME.fullmatch(name) is not None


def _inflate_events(text: str, limit: int, where: str) -> _Events:
    raw = gunzip_bounded(b64decode_strict(text, what=where), limit, what=where)
    inner = _decode(_INFLATED, raw, what=f"decompressed {where}")
    return inner.events if isinstance(inner, _InnerEnvelope) else inner


def _refuse_event(index: int, item: dict[str, msgspec.Raw]) -> NoReturn:
    """The precise 422 for an item ``_events`` did not take, checked in the same order."""
    if len(item) != 1:
        raise InvalidDelivery(
            f"events[{index}] must be an object with exactly one key, the event name",
            code="bad_event",
        )
    ((name, _obj),) = item.items()
    if not _valid_name(name):
        raise InvalidDelivery(
            f"events[{index}] has an invalid event name (letters, digits, '_', '.', '-'; "
            "at most 100 characters)",
            code="bad_event_name",
        )
    raise InvalidDelivery(f"events[{index}] ({name}) must hold a JSON object", code="bad_event")


def _decode(decoder: msgspec.json.Decoder[Any], data: bytes, *, what: str) -> Any:
    # msgspec validates UTF-8 only in the strings it decodes, not in the objects it skips;
    # record values must be valid JSON text, so the bytes are checked here. ASCII (almost
    # every delivery) is checked without decoding.
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedDelivery(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        return _refusing_bad_json(decoder, data, what)
    except msgspec.ValidationError as exc:
        shape_error = str(exc)
    # Valid JSON of the wrong shape (or JSON the typed decoder gave up on before its end):
    # rare, so the document is decoded again in full and the precise reason worked out.
    try:
        document = _refusing_bad_json(_ANY, data, what)
    except msgspec.ValidationError:
        # A number no float holds (1e999) where a delivery has no number: valid JSON that
        # msgspec will not decode, so the typed decoder's words (which say where) must do.
        nested = "- at `$" in shape_error
        code = "bad_events" if nested else "not_a_delivery"
        raise InvalidDelivery(f"{what} is not a delivery: {shape_error}", code=code) from None
    _explain_shape(document, what=what)
    raise InvalidDelivery(f"{what} is not a delivery: {shape_error}", code="bad_events")


def _refusing_bad_json(decoder: msgspec.json.Decoder[Any], data: bytes, what: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as exc:
        raise MalformedDelivery(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        # msgspec stops at Python's recursion limit (about 1,000 levels less the call depth).
        raise InvalidDelivery(f"{what} is nested too deeply", code="too_deeply_nested") from None


def _explain_shape(document: Any, *, what: str) -> None:
    """Raise the precise 422 for a document that is valid JSON but not a delivery."""
    if what != "request body":
        if isinstance(document, dict) and "events" in document:
            document = document["events"]
        if not isinstance(document, list):
            raise InvalidDelivery(f"{what} must be a JSON array", code="bad_events")
        _explain_events(document)
        return
    if isinstance(document, list):
        _explain_events(document)
        return
    if not isinstance(document, dict):
        raise InvalidDelivery(f"the body must be {SHAPES}", code="not_a_delivery")
    if "events" not in document:
        raise InvalidDelivery(
            f'the body has no "events" member; send {SHAPES}', code="missing_events"
        )
    events = document["events"]
    if not isinstance(events, list | str):
        raise InvalidDelivery(
            '"events" must be an array (or a compressed string)', code="bad_events"
        )
    _explain_events(events)


def _explain_events(events: Any) -> None:
    for index, item in enumerate(events):
        if not isinstance(item, dict) or len(item) != 1:
            raise InvalidDelivery(
                f"events[{index}] must be an object with exactly one key, the event name",
                code="bad_event",
            )
