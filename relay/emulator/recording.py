"""An ASGI middleware that hands every API exchange to an observer.

Tests use it to check each request and response against the OpenAPI extract; the emulator
itself never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes = b""
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""


Observer = Callable[[Exchange], None]


class RecordingMiddleware:
    def __init__(self, app: ASGIApp, observer: Observer, prefix: str = "/rest/v2/webhook") -> None:
        self.app = app
        self.observer = observer
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode(),
            request_headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
        )

        async def receive_and_record() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.request_body += message.get("body", b"")
            return message

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {
                    k.decode().lower(): v.decode() for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                exchange.response_body += message.get("body", b"")
                if not message.get("more_body", False):
                    self.observer(exchange)
            await send(message)

        await self.app(scope, receive_and_record, send_and_record)
