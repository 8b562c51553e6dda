"""Endpoints that UltraCart does not have, for driving the emulator from tests and demos.

All under ``/_emulator``: trigger events, inject API faults, force delivery state, and read
counters (what was delivered, which statuses relay answered).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.emulator.store import EmulatorState
from relay.events.catalog import KNOWN_EVENTS


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def routes(state: EmulatorState) -> list[Route]:
    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "api_calls": state.api_calls,
                "rejected": {str(k): v for k, v in state.rejected.items()},
                "token_grants": state.oauth.token_grants,
                "refresh_grants": state.oauth.refresh_grants,
                "items": len(state.items),
                "orders": len(state.orders),
                "webhooks": {
                    str(oid): {
                        "url": webhook.settings.get("webhook_url"),
                        "pending": len(webhook.queue),
                        "delivered_events": webhook.delivered_events,
                        "statuses": {str(k): v for k, v in webhook.statuses.items()},
                        "consecutive_failures": webhook.consecutive_failures,
                        "disabled": webhook.disabled,
                    }
                    for oid, webhook in state.webhooks.items()
                },
            }
        )

    async def events(request: Request) -> Response:
        """Queue ``count`` events of ``event_name`` (cycling through the seeded objects), or
        the given ``objects`` as they are (an order larger than a log keeps, say)."""
        body = await _body(request)
        name = str(body.get("event_name", ""))
        if name not in KNOWN_EVENTS:
            return JSONResponse({"error": f"unknown event {name!r}"}, status_code=400)
        given = body.get("objects")
        if isinstance(given, list) and all(isinstance(obj, dict) for obj in given):
            return JSONResponse({"queued": state.enqueue(name, given)})
        count = int(body.get("count", 1))
        pool = state.objects_for(name) or [{"event": name}]
        objects = []
        for index in range(count):
            obj = dict(pool[(state.update_counter + index) % len(pool)])
            objects.append(obj)
        state.update_counter += count
        return JSONResponse({"queued": state.enqueue(name, objects)})

    async def faults(request: Request) -> Response:
        """Answer the next API calls with these statuses, e.g. {"statuses": [429, 429]}."""
        body = await _body(request)
        state.faults.extend(int(status) for status in body.get("statuses", []))
        return JSONResponse({"pending_faults": list(state.faults)})

    async def force(request: Request) -> Response:
        """Set delivery state on a webhook, e.g. {"disabled": true, "consecutive_failures": 7}."""
        webhook = state.webhooks.get(int(request.path_params["webhook_oid"]))
        if webhook is None:
            return JSONResponse({"error": "no such webhook"}, status_code=404)
        body = await _body(request)
        if "disabled" in body:
            webhook.disabled = bool(body["disabled"])
        if "consecutive_failures" in body:
            webhook.consecutive_failures = int(body["consecutive_failures"])
        return JSONResponse({"ok": True})

    return [
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/events", events, methods=["POST"]),
        Route("/_emulator/faults", faults, methods=["POST"]),
        Route("/_emulator/webhooks/{webhook_oid:int}/state", force, methods=["POST"]),
    ]
