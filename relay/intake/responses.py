"""JSON responses for intake, errors included, in one shape.

The intake endpoint is a pure ASGI app and sends ``Answer``s itself (status, raw headers,
body): the same bytes a Starlette ``Response`` would send, without building one per
delivery. The probes use ``json_response``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, NamedTuple

import orjson
from starlette.responses import Response

from relay.events.errors import DeliveryError

RawHeaders = list[tuple[bytes, bytes]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = (b"content-type", b"application/json")


class Answer(NamedTuple):
    status: int
    headers: RawHeaders
    body: bytes


async def send_answer(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def json_answer(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Answer:
    """What ``json_response`` sends: the given headers, then Content-Length and -Type."""
    encoded = orjson.dumps(body)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    raw.append((b"content-length", str(len(encoded)).encode()))
    raw.append(_JSON)
    return Answer(status, raw, encoded)


def ok_answer(delivery_id: str, events: int) -> Answer:
    """``{"status":"ok","delivery_id":…,"events":…}`` as orjson writes it, by concatenation:
    a delivery id is of ``[A-Za-z0-9._:-]`` only (the endpoint's check), so nothing in it
    needs escaping."""
    body = b'{"status":"ok","delivery_id":"%s","events":%d}' % (delivery_id.encode(), events)
    return Answer(200, [(b"content-length", b"%d" % len(body)), _JSON], body)


def error_answer(
    error: DeliveryError, delivery_id: str, headers: Mapping[str, str] | None = None
) -> Answer:
    body = {"error": error.code, "message": error.message, "delivery_id": delivery_id}
    return json_answer(error.status, body, headers)


# A sender that went away mid-body: nobody reads the answer (Starlette's empty 400).
EMPTY_400 = Answer(400, [(b"content-length", b"0")], b"")


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )
