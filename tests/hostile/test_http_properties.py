"""Properties of the HTTP layer: any request gets 200 or a clear 4xx, and never a partial publish.

Runs the real app (Starlette TestClient) with the fake sink, so each example is cheap; the
wire-level cases a client library will not send (huge or slow heads, trickled bodies) are
in test_wire_limits.py against a real ``relay serve``.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator

import httpx2
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from relay.serving.app import create_app
from tests.hostile.strategies import hostile_bodies
from tests.support.fake_sink import FakeSink
from tests.support.settings import settings_with

URL = "/webhooks/ultracart"
DEAD_LETTER = "ultracart.dead_letter"
GOOD_AUTH = "Basic " + base64.b64encode(b"ultracart:s3cret").decode()

_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
_authorization = st.sampled_from(
    [GOOD_AUTH, GOOD_AUTH, GOOD_AUTH, None, "Basic", "Basic !!!", "Bearer x", GOOD_AUTH.lower()]
) | _printable.map(lambda t: "Basic " + t)
_content_type = (
    st.sampled_from(
        [
            None,
            "application/json",
            "application/json; charset=utf-8",
            "text/json",
            "application/cloudevents+json",
            "text/plain",
            "multipart/form-data",
            "",
        ]
    )
    | _printable
)
_content_encoding = st.sampled_from([None, "gzip", "x-gzip", "identity", "br", "gzip, gzip"])


@pytest.fixture(scope="module")
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture(scope="module")
def client(sink: FakeSink) -> Iterator[TestClient]:
    settings = settings_with(
        intake={"max_body_bytes": 64 * 1024, "max_decompressed_bytes": 256 * 1024}
    )
    with TestClient(create_app(settings, sink=sink), raise_server_exceptions=False) as c:
        yield c


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    body = draw(hostile_bodies())
    headers: dict[str, str] = {}
    for name, strategy in (
        ("authorization", _authorization),
        ("content-type", _content_type),
        ("content-encoding", _content_encoding),
        ("x-request-id", st.none() | _printable),
        ("x-odd-header", st.none() | _printable),
    ):
        value = draw(strategy)
        if value is not None:
            headers[name] = value
    if headers.get("content-encoding") in ("gzip", "x-gzip") and draw(st.booleans()):
        body = gzip.compress(body)  # sometimes honest, sometimes not gzip at all
    return body, headers


@given(requests())
def test_every_request_gets_200_or_a_clear_4xx_and_never_a_partial_publish(
    client: TestClient, sink: FakeSink, exchange: tuple[bytes, dict[str, str]]
) -> None:
    body, headers = exchange
    sink.published.clear()
    response = client.post(URL, content=body, headers=headers)
    status = response.status_code
    assert status == 200 or 400 <= status < 500, (status, response.text[:300])
    answer = orjson.loads(response.content)
    if status == 200:
        (batch,) = sink.published  # one publish: the delivery, whole
        assert answer["events"] == len(batch)
        assert all(r.topic != DEAD_LETTER for r in batch)
        return
    assert answer["error"] and answer["message"]
    if status == 401:
        assert sink.published == [], "unauthenticated input must not reach Kafka at all"
        return
    # Refused after authentication: at most the raw body, on the dead-letter topic only.
    records = sink.records
    assert all(r.topic == DEAD_LETTER for r in records)
    assert len(records) <= 1
    if records:
        headers_of = dict(records[0].headers)
        assert headers_of["relay_reason"] == answer["error"].encode()


def test_a_missing_body_is_a_4xx(client: TestClient, sink: FakeSink) -> None:
    sink.published.clear()
    response = client.post(URL, headers={"authorization": GOOD_AUTH})
    assert response.status_code == 400
    assert all(r.topic == DEAD_LETTER for r in sink.records)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused(client: TestClient, method: str) -> None:
    response = client.request(method, URL, headers={"authorization": GOOD_AUTH})
    assert response.status_code == 405


def test_the_client_gets_json_it_can_act_on_for_an_oversized_body(client: TestClient) -> None:
    response = client.post(
        URL, content=b"x" * (64 * 1024 + 1), headers={"authorization": GOOD_AUTH}
    )
    assert response.status_code == 413
    assert isinstance(response, httpx2.Response)
    assert "limit" in response.json()["message"]
