"""The HTTP ceiling: a bare Starlette handler that reads the body and answers 200.

Served by relay's own server code (``relay.server.serve``, hence the same uvicorn settings,
loop, HTTP parser and worker processes), so the gap between it and relay is what relay's
own work costs: authentication, parsing, records, Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.app import admin_routes, build_runtime
from relay.records import Record
from relay.settings import Settings

_OK = b'{"status":"ok"}'


class _NoSink:
    """Accepts nothing and is always ready; the bare app never publishes."""

    ready = True

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        raise NotImplementedError("the bare app does not publish")


def create_bare_app(settings: Settings) -> Starlette:
    # A relay Runtime, so relay's servers (probes, drain, workers) run it unchanged.
    runtime = build_runtime(settings, _NoSink())

    async def handle(request: Request) -> Response:
        await request.body()
        return Response(_OK, media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runtime.started = True
        yield
        runtime.draining = True

    routes = [Route(settings.intake.path, handle, methods=["POST"])]
    if settings.server.admin_port == 0:
        routes.extend(admin_routes(runtime))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
