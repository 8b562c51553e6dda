"""The eight webhook operations of UltraCart's REST API v2, over in-memory state."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.control.catalog import supports_reflow
from relay.control.client import normalise_url
from relay.control.models import API_VERSION
from relay.emulator.envelope import ApiError, no_content, ok, page
from relay.emulator.guard import guarded
from relay.emulator.store import WRITABLE, EmulatorState, StoredWebhook, Subscription
from relay.events.catalog import KNOWN_EVENTS

_AUTH_TYPES = ("none", "basic", "api user", "aws iam")


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value < 0:
        raise ApiError(400, f"{name} must not be negative")
    return value


def _placeholders(request: Request) -> bool:
    return request.query_params.get("_placeholders", "false").lower() == "true"


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def _find(state: EmulatorState, request: Request) -> StoredWebhook:
    oid = request.path_params["webhook_oid"]
    webhook = state.webhooks.get(oid)
    if webhook is None:
        raise ApiError(400, f"Webhook {oid} does not exist", object_id=str(oid))
    return webhook


def _validate(settings: dict[str, Any]) -> None:
    url = settings.get("webhook_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(400, "webhook_url must be an http or https URL")
    if settings.get("api_version", API_VERSION) != API_VERSION:
        raise ApiError(400, f"api_version must be {API_VERSION}")
    if settings.get("authentication_type", "none") not in _AUTH_TYPES:
        raise ApiError(400, "authentication_type must be one of " + ", ".join(_AUTH_TYPES))
    for key in ("maximum_events", "maximum_size"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ApiError(400, f"{key} must be a positive integer")


def _subscriptions(body: dict[str, Any]) -> dict[str, Subscription] | None:
    """The subscriptions a body asks for; None when it has no event_categories at all.

    A body with event_categories replaces the whole set: events not listed as subscribed are
    unsubscribed. (Whether UltraCart patches or replaces is unknown; replacing is the strict
    choice, and it catches a client that forgets to send back what it does not manage.)
    """
    categories = body.get("event_categories")
    if categories is None:
        return None
    wanted: dict[str, Subscription] = {}
    for category in categories:
        for event in category.get("events") or []:
            name = event.get("event_name")
            if name not in KNOWN_EVENTS:
                raise ApiError(400, f"Unknown event name {name!r}", object_id=str(name))
            if event.get("subscribed", True):
                wanted[name] = Subscription(
                    expansion=str(event.get("expansion") or ""),
                    event_ruler=event.get("event_ruler") or None,
                )
    return wanted


def routes(state: EmulatorState) -> list[Route]:
    merchant = state.options.merchant_id

    async def get_webhooks(request: Request, rid: str) -> Response:
        offset = _int_query(request, "_offset", 0)
        limit = _int_query(request, "_limit", 100) or 100
        placeholders = _placeholders(request)
        everything = [
            webhook.render(merchant, placeholders=placeholders)
            for webhook in state.webhooks.values()
        ]
        chunk, result_set = page(everything, offset, limit)
        return ok("webhooks", chunk, result_set=result_set, request_id_value=rid)

    async def insert_webhook(request: Request, rid: str) -> Response:
        body = await _json_body(request)
        settings = {key: body[key] for key in WRITABLE if key in body}
        settings.setdefault("api_version", API_VERSION)
        settings.setdefault("authentication_type", "none")
        _validate(settings)
        subscriptions = _subscriptions(body) or {}
        if settings["authentication_type"] == "basic" and not (
            settings.get("basic_username") and settings.get("basic_password")
        ):
            # Documented behaviour: basic without credentials gets random ones, returned once.
            settings["basic_username"] = "uc-" + secrets.token_hex(6)
            settings["basic_password"] = secrets.token_urlsafe(18)
        webhook = state.add_webhook(settings)
        webhook.subscriptions = subscriptions
        rendered = webhook.render(merchant, placeholders=_placeholders(request))
        return ok("webhook", rendered, request_id_value=rid)

    async def update_webhook(request: Request, rid: str) -> Response:
        webhook = _find(state, request)
        body = await _json_body(request)
        settings = {**webhook.settings, **{k: body[k] for k in WRITABLE if k in body}}
        _validate(settings)
        subscriptions = _subscriptions(body)
        webhook.settings = settings
        if subscriptions is not None:
            webhook.subscriptions = subscriptions
        if body.get("disabled") is False and webhook.disabled:
            webhook.disabled = False
            webhook.consecutive_failures = 0
            webhook.next_retry_at = None
        rendered = webhook.render(merchant, placeholders=_placeholders(request))
        return ok("webhook", rendered, request_id_value=rid)

    async def delete_webhook(request: Request, rid: str) -> Response:
        webhook = _find(state, request)
        del state.webhooks[webhook.webhook_oid]
        return no_content(rid)

    async def delete_webhook_by_url(request: Request, rid: str) -> Response:
        body = await _json_body(request)
        url = body.get("webhook_url")
        if not isinstance(url, str):
            raise ApiError(400, "webhook_url is required")
        for webhook in list(state.webhooks.values()):
            if normalise_url(str(webhook.settings.get("webhook_url", ""))) == normalise_url(url):
                del state.webhooks[webhook.webhook_oid]
                rendered = webhook.render(merchant, placeholders=False)
                return ok("webhook", rendered, request_id_value=rid)
        raise ApiError(400, f"No webhook with URL {url}")

    async def log_summaries(request: Request, rid: str) -> Response:
        webhook = _find(state, request)
        offset = _int_query(request, "_offset", 0)
        limit = _int_query(request, "_limit", 100) or 100
        since = None
        since_raw = request.query_params.get("_since")
        if since_raw:
            try:
                since = datetime.fromisoformat(since_raw.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "_since must be an ISO 8601 date-time") from None
            if since.tzinfo is None:
                raise ApiError(400, "_since needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
        summaries = [entry.summary() for entry in webhook.logs.newest_first(since)]
        chunk, result_set = page(summaries, offset, limit)
        return ok("webhook_log_summaries", chunk, result_set=result_set, request_id_value=rid)

    async def get_log(request: Request, rid: str) -> Response:
        webhook = _find(state, request)
        wanted = request.path_params["request_id"]
        log = webhook.logs.find(wanted)
        if log is not None:
            return ok("webhook_log", log, request_id_value=rid)
        raise ApiError(400, f"No delivery log with request id {wanted}", object_id=wanted)

    async def reflow(request: Request, rid: str) -> Response:
        webhook = _find(state, request)
        event_name = request.path_params["event_name"]
        if not supports_reflow(event_name):
            raise ApiError(400, f"Event {event_name} does not support reflow", object_id=event_name)
        if event_name not in webhook.subscriptions:
            raise ApiError(400, f"Webhook is not subscribed to {event_name}", object_id=event_name)
        queued = state.enqueue_for(webhook, event_name, state.objects_for(event_name))
        return ok("reflow", {"event_name": event_name, "queued": queued > 0}, request_id_value=rid)

    base = "/rest/v2/webhook/webhooks"
    one = base + "/{webhook_oid:int}"
    return [
        Route(base, guarded(state, get_webhooks), methods=["GET"]),
        Route(base, guarded(state, insert_webhook), methods=["POST"]),
        Route(base, guarded(state, delete_webhook_by_url), methods=["DELETE"]),
        Route(one, guarded(state, update_webhook), methods=["PUT"]),
        Route(one, guarded(state, delete_webhook), methods=["DELETE"]),
        Route(one + "/logs", guarded(state, log_summaries), methods=["GET"]),
        Route(one + "/logs/{request_id}", guarded(state, get_log), methods=["GET"]),
        Route(one + "/reflow/{event_name}", guarded(state, reflow), methods=["POST"]),
    ]
