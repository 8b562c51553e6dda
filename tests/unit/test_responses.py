"""The endpoint's prebuilt answers send what a Starlette JSON Response would."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from relay.events.errors import PayloadTooLarge, Unavailable
from relay.intake.endpoint import read_headers
from relay.intake.responses import EMPTY_400, error_answer, json_response, ok_answer

# The characters the endpoint lets into a delivery id (endpoint._REQUEST_ID).
DELIVERY_IDS = st.from_regex(r"[A-Za-z0-9._:\-]{1,128}", fullmatch=True)


@given(DELIVERY_IDS, st.integers(min_value=0, max_value=10**6))
def test_the_200_body_is_what_orjson_writes(delivery_id: str, events: int) -> None:
    answer = ok_answer(delivery_id, events)
    expected = json_response(200, {"status": "ok", "delivery_id": delivery_id, "events": events})
    assert answer.status == 200
    assert answer.body == expected.body
    assert answer.headers == expected.raw_headers


def test_error_answers_match_starlette_responses() -> None:
    for error, extra in (
        (PayloadTooLarge("too big"), None),
        (Unavailable("later", code="overloaded"), {"Retry-After": "5"}),
    ):
        answer = error_answer(error, "d-1", extra)
        body = {"error": error.code, "message": error.message, "delivery_id": "d-1"}
        expected = json_response(error.status, body, extra)
        assert (answer.status, answer.headers, answer.body) == (
            expected.status_code,
            expected.raw_headers,
            expected.body,
        )
        assert orjson.loads(answer.body) == body


def test_the_empty_400_is_starlettes() -> None:
    expected = Response(status_code=400)
    assert (EMPTY_400.status, EMPTY_400.headers, EMPTY_400.body) == (
        400,
        expected.raw_headers,
        expected.body,
    )


def test_headers_are_read_once_first_value_wins() -> None:
    raw = [
        (b"host", b"x"),
        (b"authorization", b"Basic a"),
        (b"authorization", b"Basic b"),
        (b"content-type", b"application/json; charset=\xe9"),
    ]
    assert read_headers(raw) == {
        "authorization": "Basic a",
        "content-type": "application/json; charset=\xe9",
    }
