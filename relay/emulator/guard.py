"""What UltraCart checks before any handler runs: version header, credentials, rate.

Order of checks: injected faults, the ``X-UltraCart-Api-Version`` header, the credential,
then the concurrency and leaky-bucket limits. A 429 for overlapping calls is real UltraCart
behaviour (docs/ultracart.md 4.4), so a client that does not serialise gets caught here.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from relay.control.models import API_VERSION
from relay.emulator.envelope import ApiError, error, request_id
from relay.emulator.store import EmulatorState

logger = logging.getLogger(__name__)

Handler = Callable[[Request, str], Awaitable[Response]]


def _authorised(state: EmulatorState, request: Request) -> bool:
    key = request.headers.get("x-ultracart-simple-key")
    if key is not None:
        return any(hmac.compare_digest(key, good) for good in state.options.simple_keys)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and state.oauth.valid(token.strip())


def guarded(state: EmulatorState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        rid = request_id()
        state.api_calls += 1
        if state.faults:
            status = state.faults.popleft()
            state.rejected[status] += 1
            return error(
                status, _fault_message(state, status), rid, merchant_id=state.options.merchant_id
            )
        if request.headers.get("x-ultracart-api-version") != API_VERSION:
            state.rejected[400] += 1
            return error(400, f"X-UltraCart-Api-Version header must be {API_VERSION}", rid)
        if not _authorised(state, request):
            state.rejected[401] += 1
            return error(401, "Invalid credentials supplied", rid)
        if state.in_flight > 0:
            state.rejected[429] += 1
            return error(
                429,
                "Concurrent requests are not allowed.",
                rid,
                merchant_id=state.options.merchant_id,
            )
        if not state.bucket.admit():
            state.rejected[429] += 1
            return error(
                429, _fault_message(state, 429), rid, merchant_id=state.options.merchant_id
            )
        state.in_flight += 1
        try:
            if state.options.api_latency_seconds:
                await asyncio.sleep(state.options.api_latency_seconds)
            return await handler(request, rid)
        except ApiError as problem:
            return error(problem.status, problem.message, rid, object_id=problem.object_id)
        finally:
            state.in_flight -= 1

    return endpoint


def _fault_message(state: EmulatorState, status: int) -> str:
    if status == 429:
        return f"rate of {state.options.rate_limit_per_hour} per 3600 second(s) exceeded."
    if status == 410:
        return "Your authorized application has been disabled by UltraCart"
    if status == 500:
        return "An internal server error occurred."
    return f"Injected error {status}"
