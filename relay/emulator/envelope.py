"""UltraCart's response envelope: success payloads with metadata, and the error shape.

Errors carry an ErrorResponse body and the human-readable ``UC-REST-ERROR`` header, as the
spec documents for 400, 401, 410, 429 and 500.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, object_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.object_id = object_id


def request_id() -> str:
    return uuid.uuid4().hex


def ok(
    payload_name: str,
    payload: Any,
    *,
    result_set: dict[str, Any] | None = None,
    request_id_value: str,
) -> JSONResponse:
    metadata: dict[str, Any] = {"payload_name": payload_name}
    if result_set is not None:
        metadata["result_set"] = result_set
    body = {"success": True, payload_name: payload, "metadata": metadata}
    return JSONResponse(body, headers={"X-UltraCart-Request-Id": request_id_value})


def no_content(request_id_value: str) -> Response:
    return Response(status_code=204, headers={"X-UltraCart-Request-Id": request_id_value})


def error(
    status: int,
    message: str,
    request_id_value: str,
    *,
    merchant_id: str | None = None,
    object_id: str | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {
        "developer_message": message,
        "user_message": message,
        "error_code": str(status),
        "more_info": "https://www.ultracart.com/api/",
    }
    if object_id is not None:
        detail["object_id"] = object_id
    headers = {"UC-REST-ERROR": message, "X-UltraCart-Request-Id": request_id_value}
    if merchant_id is not None and status == 429:
        headers["UC-REST-ERROR-MERCHANT-ID"] = merchant_id
    return JSONResponse(
        {"success": False, "error": detail, "metadata": {}}, status_code=status, headers=headers
    )


def page(items: list[Any], offset: int, limit: int) -> tuple[list[Any], dict[str, Any]]:
    chunk = items[offset : offset + limit]
    more = offset + len(chunk) < len(items)
    result_set = {
        "count": len(chunk),
        "limit": limit,
        "offset": offset,
        "more": more,
        "next_offset": offset + len(chunk),
        "total_records": len(items),
    }
    return chunk, result_set
