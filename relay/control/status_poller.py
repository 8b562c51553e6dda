"""UltraCart's side of delivery as Prometheus gauges: pending, consecutive failures, disabled.

relay polls the webhook through the API every ``poll_interval_seconds``. There is no
single-webhook GET, so each poll is one list call per page of webhooks; at the default of
60 s that is 60 calls an hour out of UltraCart's 1,000. The poller makes one attempt per
poll (no retries): the next poll is the retry, and a 429 must not turn into a burst.
Labels: ``webhook_oid`` only (one webhook per relay), so the series stay bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os

from prometheus_client import CollectorRegistry, Counter, Gauge

from relay.control.client import UltraCartClient
from relay.control.errors import (
    AuthenticationError,
    ControlError,
    RateLimitedError,
    TransportError,
)
from relay.control.models import Webhook
from relay.settings.ultracart import StatusPollSettings, UltraCartPoller, resolve_poller

logger = logging.getLogger(__name__)

# Below this interval the poller alone takes over a quarter of the hourly budget.
_BUDGET_WARNING_SECONDS = 15.0


class WebhookStatusGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "relay_ultracart_webhook_pending",
            "Events UltraCart has queued for relay's webhook (as UltraCart reports it).",
            ["webhook_oid"],
            registry=registry,
        )
        self.consecutive_failures = Gauge(
            "relay_ultracart_webhook_consecutive_failures",
            "Deliveries to relay that failed in a row, as UltraCart reports it.",
            ["webhook_oid"],
            registry=registry,
        )
        self.disabled = Gauge(
            "relay_ultracart_webhook_disabled",
            "1 if UltraCart has disabled relay's webhook, else 0.",
            ["webhook_oid"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "relay_ultracart_status_poll_errors",
            "Status polls that failed, by reason (rate_limited, auth, unreachable, "
            "not_found, error).",
            ["reason"],
            registry=registry,
        )
        self.last_poll = Gauge(
            "relay_ultracart_status_last_success_timestamp_seconds",
            "Unix time of the last successful status poll.",
            registry=registry,
        )


class StatusPoller:
    def __init__(
        self,
        client: UltraCartClient,
        gauges: WebhookStatusGauges,
        *,
        webhook_oid: int | None = None,
        webhook_url: str | None = None,
        interval: float = 60.0,
    ) -> None:
        self._client = client
        self._gauges = gauges
        self._oid = webhook_oid
        self._url = webhook_url
        self._interval = interval
        self._was_disabled: bool | None = None
        if interval < _BUDGET_WARNING_SECONDS:
            logger.warning(
                "UltraCart status poll every %.0f s uses over a quarter of the 1,000 calls/hour "
                "budget shared with `relay webhooks`",
                interval,
            )

    def _find(self) -> Webhook | None:
        if self._oid is not None:
            return self._client.find_by_oid(self._oid)
        assert self._url is not None
        return self._client.find_by_url(self._url)

    def poll_once(self) -> Webhook | None:
        """One poll; updates the gauges. Never raises for API trouble (it is counted)."""
        try:
            webhook = self._find()
        except RateLimitedError:
            self._gauges.poll_errors.labels("rate_limited").inc()
            return None
        except AuthenticationError:
            self._gauges.poll_errors.labels("auth").inc()
            return None
        except TransportError:
            self._gauges.poll_errors.labels("unreachable").inc()
            return None
        except ControlError as error:
            self._gauges.poll_errors.labels("error").inc()
            logger.warning("UltraCart status poll failed: %s", error)
            return None
        if webhook is None:
            self._gauges.poll_errors.labels("not_found").inc()
            return None
        oid = str(webhook.get("webhook_oid", ""))
        disabled = bool(webhook.get("disabled", False))
        self._gauges.pending.labels(oid).set(webhook.get("pending", 0))
        self._gauges.consecutive_failures.labels(oid).set(webhook.get("consecutive_failures", 0))
        self._gauges.disabled.labels(oid).set(1 if disabled else 0)
        self._gauges.last_poll.set_to_current_time()
        if disabled and not self._was_disabled:
            logger.error(
                "UltraCart has disabled webhook %s (%d consecutive failures): no events reach "
                "relay until it is re-enabled; fix the cause, then run `relay webhooks apply`",
                oid,
                webhook.get("consecutive_failures", 0),
            )
        elif self._was_disabled and not disabled:
            logger.info("UltraCart webhook %s is enabled again", oid)
        self._was_disabled = disabled
        return webhook

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.poll_once)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)


class PollerTask:
    """The poller as a task of relay's lifespan: ``start`` then ``stop``."""

    def __init__(self, poller: StatusPoller) -> None:
        self._poller = poller
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poller.run(self._stop), name="ultracart-status")

    async def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            # A poll still waiting on UltraCart; it is bounded by the call timeout anyway.
            logger.warning("UltraCart status poller did not stop within %.0f s", timeout)
            self._task.cancel()


def start_status_poller(
    settings: UltraCartPoller, registry: CollectorRegistry
) -> PollerTask | None:
    """Start polling if ``[ultracart] enabled``; the caller stops the returned task.

    ``Settings.load`` has read the table's secrets already (as a ``StatusPollSettings``);
    a table built in code has them read here, from the process environment."""
    if not settings.enabled:
        return None
    from relay.control.factory import build_client

    if not isinstance(settings, StatusPollSettings) or settings.api is None:
        settings = resolve_poller(settings, os.environ)
    assert settings.api is not None  # resolve_poller reads it for an enabled table

    # One attempt per poll and a short timeout: the next poll is the retry, and shutdown
    # never waits behind a backoff.
    api = dataclasses.replace(
        settings.api, max_attempts=1, timeout_seconds=min(settings.api.timeout_seconds, 10.0)
    )
    poller = StatusPoller(
        build_client(api),
        WebhookStatusGauges(registry),
        webhook_oid=settings.webhook_oid,
        webhook_url=settings.webhook_url,
        interval=settings.poll_interval_seconds,
    )
    task = PollerTask(poller)
    task.start()
    return task
