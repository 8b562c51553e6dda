"""Hypothesis strategies for what a hostile (or merely odd) sender can put on the wire."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
from hypothesis import strategies as st

# JSON values orjson can write back (integers within 64 bits, finite floats).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)

valid_names = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True)
odd_names = st.text(max_size=120) | valid_names

valid_events = st.lists(st.tuples(valid_names, json_objects), max_size=6)


def document(events: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"events": [{name: obj} for name, obj in events]}


def compress_events(events: list[tuple[str, Any]], wrapped: bool, bare: bool = False) -> bytes:
    """UltraCart's compress_events form: "events" as base64(gzip(JSON)), or with ``bare``
    the base64 text as the whole body (a JSON string), the top-level array's counterpart."""
    inner: Any = document(events) if wrapped else document(events)["events"]
    packed = base64.b64encode(gzip.compress(orjson.dumps(inner))).decode()
    return orjson.dumps(packed if bare else {"events": packed})


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Bodies from harmless to nasty: each kind stands for a class of real-world input."""
    kind = draw(
        st.sampled_from(
            ["bytes", "json", "shape", "deep", "deep_event", "utf8", "b64", "bomb", "mutated"]
        )
    )
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return orjson.dumps(draw(json_values))
    if kind == "shape":  # right syntax, odd structure and names, in either body shape
        events = draw(st.lists(st.dictionaries(odd_names, json_values, max_size=2), max_size=4))
        return orjson.dumps({"events": events} if draw(st.booleans()) else events)
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=1200))
        return ("[" * depth + "]" * depth).encode()
    if kind == "deep_event":
        depth = draw(st.integers(min_value=200, max_value=1100))
        return ('{"events":[{"order_create":' + nested(depth) + "}]}").encode()
    if kind == "utf8":  # a string holding bytes that are not UTF-8
        junk = draw(st.binary(min_size=1, max_size=8).filter(_not_utf8))
        return b'{"events":[{"order_create":{"note":"' + junk + b'"}}]}'
    if kind == "b64":  # compress_events with a broken payload, inside "events" or bare
        text = draw(st.text(max_size=60))
        return orjson.dumps({"events": text} if draw(st.booleans()) else text)
    if kind == "bomb":  # compress_events inflating far beyond any limit
        size = draw(st.sampled_from([300_000, 2_000_000]))
        packed = base64.b64encode(gzip.compress(b"[" + b" " * size + b"]")).decode()
        return orjson.dumps({"events": packed})
    valid = document(draw(valid_events))
    body = bytearray(orjson.dumps(valid if draw(st.booleans()) else valid["events"]))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if body:
            body[draw(st.integers(min_value=0, max_value=len(body) - 1))] = draw(
                st.integers(min_value=0, max_value=255)
            )
    return bytes(body)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return True
    return False
