"""Fuzz targets shared by the hypothesis properties (CI) and atheris (``make fuzz``).

Each target takes arbitrary bytes and raises ``AssertionError`` only when relay breaks a
promise: the delivery parser and decoders either give a valid result or refuse with a
``RejectedDelivery`` (a 4xx with a reason); any other exception is a crash (a 500 in
production) and propagates to the fuzzer.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from relay.events.errors import RejectedDelivery
from relay.events.records import RecordBuilder
from relay.events.routing import KeyPicker, TopicRouter
from relay.intake.body import decode_content_encoding
from relay.intake.decoding import b64decode_strict, gunzip_bounded
from relay.intake.parsing import parse_delivery
from relay.settings import CloudEventsSettings, TopicSettings

MAX_EVENTS = 50
INFLATED_LIMIT = 256 * 1024
_RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
# Event names end up in topic names and metric labels: only this alphabet may get through.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def _builder() -> RecordBuilder:
    return RecordBuilder(TopicRouter(TopicSettings()), KeyPicker({}), CloudEventsSettings())


def delivery_target(data: bytes) -> None:
    """Body bytes -> events -> records: all of it, or a precise refusal."""
    try:
        parsed = parse_delivery(data, max_events=MAX_EVENTS, max_inflated_bytes=INFLATED_LIMIT)
        records = _builder().build(parsed.events, "fuzz", _RECEIVED)
    except RejectedDelivery as refusal:
        assert 400 <= refusal.status < 500, refusal
        assert refusal.message and refusal.code
        return
    assert len(parsed.events) <= MAX_EVENTS
    assert len(records) == len(parsed.events)
    for event in parsed.events:
        assert SAFE_NAME.fullmatch(event.name)
        # A record value must be a JSON object any consumer can read: strict UTF-8, and
        # JSON that Python's own parser (which shares no code with msgspec) accepts.
        assert isinstance(json.loads(event.raw.decode("utf-8")), dict)
    assert [r.value for r in records] == [e.raw for e in parsed.events]


def gzip_target(data: bytes) -> None:
    """Content-Encoding: gzip on arbitrary bytes: bounded output, or a refusal."""
    try:
        out = decode_content_encoding(data, "gzip", INFLATED_LIMIT)
    except RejectedDelivery as refusal:
        assert refusal.status in (400, 413), refusal
        return
    assert len(out) <= INFLATED_LIMIT


def compressed_events_target(data: bytes) -> None:
    """``"events"`` as base64 text (UltraCart's compress_events), from arbitrary text."""
    text = data.decode("latin-1")
    try:
        raw = b64decode_strict(text, what='"events"')
        out = gunzip_bounded(raw, INFLATED_LIMIT, what='"events"')
    except RejectedDelivery as refusal:
        assert refusal.status in (400, 413), refusal
        return
    assert len(out) <= INFLATED_LIMIT


def structured_target(data: bytes) -> None:
    """Bytes -> a delivery-shaped document -> the parser.

    orjson is C code the fuzzer cannot see into, so raw bytes rarely get past "not JSON";
    building the document from the bytes puts every mutation into relay's own code.
    """
    source = _Source(data)
    events = [{_name(source): _value(source, depth=0)} for _ in range(source.number(6))]
    document: Any = {"events": events} if source.number(8) else events
    body = orjson.dumps(document)
    form = source.number(4)
    if form == 1:  # UltraCart's compress_events: "events" as base64(gzip(JSON))
        inner = document if source.number(2) else events
        packed = base64.b64encode(gzip.compress(orjson.dumps(inner))).decode()
        body = orjson.dumps({"events": packed})
    if source.number(4) == 0 and body:  # a damaged copy of an otherwise valid body
        at = source.number(len(body))
        body = body[:at] + bytes([source.number(256)]) + body[at + 1 :]
    if form == 2:
        gzip_target(gzip.compress(body))
    if form == 3:  # past orjson's write limit (254 levels), up to and past its read limit
        levels = source.number(1100)
        deep = '{"a":' * levels + "1" + "}" * levels
        body = ('{"events":[{"order_create":' + deep + "}]}").encode()
    delivery_target(body)


_NAMES = ("order_create", "item_update", "brand_new_event", "", "a" * 101, "ü", "x y", "-x")


def _name(source: _Source) -> str:
    if source.number(4) == 0:
        return source.text(12)
    return _NAMES[source.number(len(_NAMES))]


def _value(source: _Source, depth: int) -> Any:
    kind = source.number(9)
    if kind == 0 and depth < 8:
        return {source.text(6): _value(source, depth + 1) for _ in range(source.number(4))}
    if kind == 1 and depth < 8:
        return [_value(source, depth + 1) for _ in range(source.number(4))]
    if kind == 2:  # nesting deep enough for orjson's read and write limits
        levels = 1 + source.number(240)  # orjson writes 254 levels in all; deeper: form 3
        return orjson.loads("[" * levels + "]" * levels)
    if kind == 3:
        return source.text(20)
    if kind == 4:
        return source.number(2**16) - 2**15
    if kind == 5:
        return source.number(1000) / 7
    if kind == 6:
        return None
    return bool(source.number(2))


class _Source:
    """Draws small numbers and strings from fuzzer bytes; zeros once they run out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def number(self, bound: int) -> int:
        if bound <= 1:
            return 0
        raw = self._data[self._at : self._at + 2]
        self._at += 2
        return int.from_bytes(raw.ljust(2, b"\0"), "big") % bound

    def text(self, max_size: int) -> str:
        size = self.number(max_size + 1)
        raw = self._data[self._at : self._at + size]
        self._at += size
        return raw.decode("utf-8", "replace")


TARGETS = (delivery_target, gzip_target, compressed_events_target, structured_target)


def dispatch(data: bytes) -> None:
    """One entry point for a fuzzer: the first byte picks the target."""
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](data[1:])
