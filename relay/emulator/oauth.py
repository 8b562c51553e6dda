"""UltraCart's OAuth endpoints: authorize (auto-approved here) and token.

The authorize step has no consent screen in the emulator: it redirects straight back with a
code, so ``relay auth login`` can be tested end to end. Tokens expire after
``token_ttl_seconds`` (short in tests) and refresh tokens are single-use, so a client that
forgets to store the new refresh token fails the next refresh.
"""

from __future__ import annotations

import secrets
import urllib.parse

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from relay.emulator.store import EmulatorState


def _token_error(code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=400)


def routes(state: EmulatorState) -> list[Route]:
    options = state.options

    async def authorize(request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type") != "code" or not query.get("state") or not redirect_uri:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "response_type=code, state and redirect_uri are required",
                },
                status_code=400,
            )
        separator = "&" if "?" in redirect_uri else "?"
        if query.get("client_id") != options.oauth_client_id:
            params = {"error": "access_denied", "state": query["state"]}
            return RedirectResponse(redirect_uri + separator + urllib.parse.urlencode(params))
        code = "emu-code-" + secrets.token_urlsafe(16)
        state.oauth.codes[code] = (options.oauth_client_id, redirect_uri)
        params = {"code": code, "state": query["state"]}
        return RedirectResponse(redirect_uri + separator + urllib.parse.urlencode(params))

    async def token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _token_error("invalid_request", "form-encoded body required")
        form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
        if form.get("client_id") != options.oauth_client_id:
            return _token_error("invalid_client", "unknown client_id")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            issued = state.oauth.codes.pop(form.get("code", ""), None)
            if issued is None or issued[1] != form.get("redirect_uri"):
                return _token_error("invalid_grant", "unknown or used code, or other redirect_uri")
            state.oauth.token_grants += 1
        elif grant == "refresh_token":
            old = form.get("refresh_token", "")
            if old not in state.oauth.refresh:
                return _token_error("invalid_grant", "unknown or used refresh token")
            state.oauth.refresh.discard(old)
            state.oauth.refresh_grants += 1
        else:
            return _token_error("unsupported_grant_type", "use authorization_code or refresh_token")
        access, refresh = state.oauth.issue(options.token_ttl_seconds)
        return JSONResponse(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": str(int(options.token_ttl_seconds)),
                "token_type": "bearer",
                "scope": "webhook_read webhook_write",
            },
            headers={"Cache-Control": "no-store"},
        )

    return [
        Route("/rest/v2/oauth/authorize", authorize, methods=["GET"]),
        Route("/rest/v2/oauth/token", token, methods=["POST"]),
    ]
