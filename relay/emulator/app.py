"""Assemble the emulator: API, OAuth and admin routes, and the delivery loop in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from relay.emulator import admin, api, oauth
from relay.emulator.delivery import Deliverer
from relay.emulator.options import EmulatorOptions
from relay.emulator.recording import Observer, RecordingMiddleware
from relay.emulator.store import EmulatorState


def create_emulator_app(
    options: EmulatorOptions | None = None, *, observer: Observer | None = None
) -> Starlette:
    state = EmulatorState(options or EmulatorOptions())
    deliverer = Deliverer(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop), name="emulator-delivery")
        try:
            yield
        finally:
            stop.set()
            await task

    middleware = [Middleware(RecordingMiddleware, observer=observer)] if observer else []
    app = Starlette(
        routes=[*api.routes(state), *oauth.routes(state), *admin.routes(state)],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app
