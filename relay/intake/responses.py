"""JSON responses for intake, errors included, in one shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from relay.events.errors import DeliveryError


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(
    error: DeliveryError, delivery_id: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"error": error.code, "message": error.message, "delivery_id": delivery_id}
    return json_response(error.status, body, headers)
