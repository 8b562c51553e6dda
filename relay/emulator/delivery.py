"""Deliver queued events to each webhook's URL the way UltraCart does.

One batch at a time per webhook, oldest events first, up to ``maximum_events`` events and
``maximum_size`` bytes (at least one event). HTTP Basic when the webhook says so. The body is
``{"events": [...]}`` or, with the emulator's ``body_shape = "array"``, the bare array: which
one UltraCart sends is unknown (docs/ultracart.md section 1). With ``compress_events`` the events
array is gzipped and base64-encoded: ``{"events": "<base64>"}``, or ``"<base64>"`` as the
whole body for the array shape; UltraCart's exact envelope is unknown too, and relay's intake
accepts both. A non-2xx answer or no answer keeps the batch queued and schedules a retry
with exponential backoff; enough consecutive failures disable the webhook.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import time
import urllib.parse
from datetime import UTC, datetime

from relay.control.errors import TransportError
from relay.control.models import HTTPHeader, WebhookLog
from relay.control.transport import HttpRequest, HttpResponse, Transport, UrllibTransport
from relay.emulator.delivery_log import LoggedDelivery, cut, describe
from relay.emulator.envelope import request_id
from relay.emulator.options import BodyShape
from relay.emulator.store import EmulatorState, QueuedEvent, StoredWebhook

logger = logging.getLogger(__name__)


def build_batch(webhook: StoredWebhook) -> list[QueuedEvent]:
    maximum_events = int(webhook.settings.get("maximum_events") or 0) or len(webhook.queue)
    maximum_size = int(webhook.settings.get("maximum_size") or 0)
    batch: list[QueuedEvent] = []
    size = 2
    for queued in webhook.queue:
        if len(batch) >= maximum_events:
            break
        event_size = len(json.dumps({queued.event_name: queued.obj})) + 1
        if batch and maximum_size and size + event_size > maximum_size:
            break
        batch.append(queued)
        size += event_size
    return batch


def encode_body(batch: list[QueuedEvent], compress: bool, shape: BodyShape = "object") -> bytes:
    events = json.dumps([{queued.event_name: queued.obj} for queued in batch]).encode()
    if compress:
        packed = base64.b64encode(gzip.compress(events)).decode("ascii")
        return json.dumps(packed if shape == "array" else {"events": packed}).encode()
    return events if shape == "array" else b'{"events":' + events + b"}"


def _headers(pairs: dict[str, str]) -> list[HTTPHeader]:
    return [HTTPHeader(name=name, value=value) for name, value in pairs.items()]


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Deliverer:
    def __init__(self, state: EmulatorState, transport: Transport | None = None) -> None:
        self._state = state
        self._transport = transport or UrllibTransport()

    async def run(self, stop: asyncio.Event) -> None:
        tick = self._state.options.delivery_tick_seconds
        while not stop.is_set():
            for webhook in list(self._state.webhooks.values()):
                if self._due(webhook):
                    await self.deliver_once(webhook)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)

    @staticmethod
    def _due(webhook: StoredWebhook) -> bool:
        if webhook.disabled or not webhook.queue:
            return False
        return webhook.next_retry_at is None or time.time() >= webhook.next_retry_at

    async def deliver_once(self, webhook: StoredWebhook) -> bool:
        batch = build_batch(webhook)
        body = encode_body(
            batch, bool(webhook.settings.get("compress_events")), self._state.options.body_shape
        )
        url = str(webhook.settings.get("webhook_url"))
        headers = {"Content-Type": "application/json", "User-Agent": "UltraCart-Emulator/relay"}
        logged_headers = dict(headers)
        if webhook.settings.get("authentication_type") == "basic":
            pair = (
                f"{webhook.settings.get('basic_username', '')}:"
                f"{webhook.settings.get('basic_password', '')}"
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            # The delivery log is readable through the API: keep the credential out of it.
            logged_headers["Authorization"] = "Basic ********"
        started = time.monotonic()
        delivered_at = _now_iso()
        try:
            if self._state.options.loopback_only and not _is_loopback(url):
                raise TransportError(f"not delivering to {url}: emulator is loopback-only")
            response = await asyncio.to_thread(
                self._transport.send,
                HttpRequest("POST", url, headers, body),
                self._state.options.delivery_timeout_seconds,
            )
        except TransportError as error:
            response = HttpResponse(0, {}, str(error).encode())
        duration_ms = int((time.monotonic() - started) * 1000)
        success = 200 <= response.status < 300
        webhook.statuses[response.status] += 1
        event_names, order_ids = describe((queued.event_name, queued.obj) for queued in batch)
        log = LoggedDelivery(
            WebhookLog(
                delivery_dts=delivered_at,
                duration=duration_ms,
                queue_delay=int((time.time() - batch[0].enqueued_at) * 1000),
                request=cut(body.decode("utf-8", "replace")),
                request_headers=_headers(logged_headers),
                request_id=request_id(),
                response=cut(response.body.decode("utf-8", "replace")),
                response_headers=_headers(response.headers),
                status_code=response.status,
                success=success,
                uri=url,
                webhook_oid=webhook.webhook_oid,
            ),
            event_names,
            order_ids,
        )
        webhook.logs.append(log)
        if webhook.webhook_oid not in self._state.webhooks:
            return success  # deleted while the delivery was in flight
        if success:
            for _ in batch:
                webhook.queue.popleft()
            webhook.delivered_events += len(batch)
            webhook.consecutive_failures = 0
            webhook.next_retry_at = None
            return True
        self._fail(webhook, response.status)
        return False

    def _fail(self, webhook: StoredWebhook, status: int) -> None:
        options = self._state.options
        webhook.consecutive_failures += 1
        delay = min(
            options.retry_max_seconds,
            options.retry_base_seconds * 2 ** (webhook.consecutive_failures - 1),
        )
        webhook.next_retry_at = time.time() + delay
        logger.info(
            "delivery to webhook %s failed (HTTP %s), %d in a row; retry in %.1f s",
            webhook.webhook_oid,
            status or "none",
            webhook.consecutive_failures,
            delay,
        )
        if webhook.consecutive_failures >= options.disable_after_failures:
            webhook.disabled = True
            logger.warning(
                "webhook %s disabled after %d consecutive failures",
                webhook.webhook_oid,
                webhook.consecutive_failures,
            )
