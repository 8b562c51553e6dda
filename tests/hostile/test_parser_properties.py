"""Properties of the delivery parser and decoders on arbitrary and hostile input."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from relay.events.errors import MalformedDelivery, PayloadTooLarge, RejectedDelivery
from relay.intake.decoding import gunzip_bounded
from relay.intake.parsing import parse_delivery
from tests.hostile import targets
from tests.hostile.strategies import compress_events, document, hostile_bodies, valid_events


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_are_refused_precisely(data: bytes) -> None:
    targets.dispatch(data)


@given(st.binary(max_size=600))
def test_delivery_shaped_documents_parse_or_are_refused_precisely(data: bytes) -> None:
    targets.structured_target(data)


@given(hostile_bodies())
@example(b'{"events":[{"order_create":' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}]}")
@example(b"[" * 5000 + b"]" * 5000)
def test_hostile_bodies_parse_or_are_refused_precisely(body: bytes) -> None:
    targets.delivery_target(body)


FORMS = {
    "plain": "object",
    "array": "array",
    "compressed": "object+gzip-base64",
    "compressed_wrapped": "object+gzip-base64",
    "bare_compressed": "string+gzip-base64",
    "bare_compressed_wrapped": "string+gzip-base64",
}


@given(valid_events, st.sampled_from(sorted(FORMS)))
def test_valid_deliveries_give_exactly_their_events_in_order(
    events: list[tuple[str, dict[str, Any]]], form: str
) -> None:
    if form == "plain":
        body = orjson.dumps(document(events))
    elif form == "array":
        body = orjson.dumps(document(events)["events"])
    else:
        body = compress_events(events, wrapped="wrapped" in form, bare=form.startswith("bare"))
    parsed = parse_delivery(body, max_events=100, max_inflated_bytes=1 << 20)
    assert [(e.name, orjson.loads(e.raw)) for e in parsed.events] == events
    assert parsed.shape == FORMS[form]


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=3), st.binary(max_size=6))
def test_gzip_agrees_with_python_gzip_module(members: list[bytes], tail: bytes) -> None:
    """Differential: relay inflates exactly what gzip.decompress does, or refuses what it does."""
    data = b"".join(gzip.compress(m) for m in members) + tail
    try:
        expected: bytes | None = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        expected = None
    try:
        got: bytes | None = gunzip_bounded(data, 1 << 20, what="body")
    except MalformedDelivery:
        got = None
    assert got == expected


@given(st.integers(min_value=1, max_value=50_000), st.integers(min_value=100, max_value=20_000))
def test_gzip_output_never_exceeds_its_limit(size: int, limit: int) -> None:
    data = gzip.compress(b"\0" * size)
    if size > limit:
        with pytest.raises(PayloadTooLarge):
            gunzip_bounded(data, limit, what="body")
    else:
        assert gunzip_bounded(data, limit, what="body") == b"\0" * size


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB from ~64 KB
    with pytest.raises(PayloadTooLarge) as refused:
        gunzip_bounded(bomb, 1024 * 1024, what="body")
    assert refused.value.code == "inflated_too_large"


@given(st.integers(min_value=0, max_value=200))
def test_too_many_events_are_refused_whole(count: int) -> None:
    body = orjson.dumps({"events": [{"order_create": {"order_id": str(n)}} for n in range(count)]})
    try:
        parsed = parse_delivery(body, max_events=100, max_inflated_bytes=1 << 20)
    except RejectedDelivery as refusal:
        assert count > 100
        assert refusal.code == "too_many_events"
        return
    assert len(parsed.events) == count <= 100
