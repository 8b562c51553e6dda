"""The HTTP ceiling: a bare Starlette handler that reads the body and answers 200.

Served by relay's own server code (``relay.serving.run.serve``, hence the same uvicorn settings,
loop, HTTP parser and worker processes), so the gap between it and relay is what relay's
own work costs: authentication, parsing, records, Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.events.records import Record
from relay.serving.app import Intake, admin_routes, build_runtime
from relay.settings import Settings

_OK = b'{"status":"ok"}'


class _NoSink:
    """Always ready, never used: the reference apps do not publish through relay's sink."""

    ready = True

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        raise NotImplementedError("the reference apps do not publish through relay's sink")


Handler = Callable[[Request], Awaitable[Response]]
Hook = Callable[[], Awaitable[None]]


def reference_app(
    settings: Settings,
    handle: Handler,
    *,
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
) -> Intake:
    """``handle`` on relay's intake path, on a relay Runtime so that relay's servers (probes,
    drain, workers) run it unchanged, its state changed the way relay's lifespan changes it.
    Shared by the bare app and the bridge floor."""
    runtime = build_runtime(settings, _NoSink())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if on_start is not None:
            await on_start()
        runtime.mark_started()
        yield
        runtime.begin_drain()
        if on_stop is not None:
            await on_stop()

    routes = [Route(settings.intake.path, handle, methods=["POST"])]
    if settings.server.admin_port == 0:
        routes.extend(admin_routes(runtime))
    return Intake(Starlette(routes=routes, lifespan=lifespan), runtime)


def create_bare_app(settings: Settings) -> Intake:
    async def handle(request: Request) -> Response:
        await request.body()
        return Response(_OK, media_type="application/json")

    return reference_app(settings, handle)
