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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from relay.config_sources import ConfigError as SettingsError
from relay.control.client import UltraCartClient
from relay.control.config import ApiSettings, parse_api_settings
from relay.control.errors import (
    AuthenticationError,
    ConfigError,
    ControlError,
    RateLimitedError,
    TransportError,
)
from relay.control.models import Webhook

logger = logging.getLogger(__name__)

_POLL_KEYS = frozenset({"enabled", "poll_interval_seconds", "webhook_oid", "webhook_url"})
# Below this interval the poller alone takes over a quarter of the hourly budget.
_BUDGET_WARNING_SECONDS = 15.0


def _coerce(value: Any) -> Any:
    """Environment overrides arrive as text; TOML values arrive typed."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(lowered)
        except ValueError:
            continue
    return value


@dataclass(frozen=True)
class StatusPollSettings:
    """The ``[ultracart]`` table of relay.toml: off unless ``enabled = true``."""

    enabled: bool = False
    api: ApiSettings = dataclasses.field(default_factory=ApiSettings)
    poll_interval_seconds: float = 60.0
    webhook_oid: int | None = None
    webhook_url: str | None = None

    @classmethod
    def parse(
        cls, table: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> StatusPollSettings:
        """Parse relay.toml's ``[ultracart]``; errors are relay's settings ConfigError, so
        ``relay serve`` reports them like any other setting."""
        try:
            return cls._parse(table, os.environ if env is None else env)
        except ConfigError as error:
            raise SettingsError(str(error)) from None

    @classmethod
    def _parse(cls, table: Mapping[str, Any], env: Mapping[str, str]) -> StatusPollSettings:
        raw = {key: _coerce(value) for key, value in table.items()}
        if isinstance(raw.get("oauth"), Mapping):
            raw["oauth"] = {k: _coerce(v) for k, v in raw["oauth"].items()}
        enabled = bool(raw.get("enabled", False))
        if not enabled:
            return cls()
        api = parse_api_settings(
            {k: v for k, v in raw.items() if k not in _POLL_KEYS}, env, extra_keys=frozenset()
        )
        interval = raw.get("poll_interval_seconds", 60.0)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 1:
            raise ConfigError("[ultracart] poll_interval_seconds must be at least 1")
        oid = raw.get("webhook_oid")
        url = raw.get("webhook_url")
        if oid is None and not url:
            raise ConfigError("[ultracart] set webhook_oid or webhook_url to say what to poll")
        if api.auth == "simple_key" and api.simple_key is None:
            raise ConfigError("[ultracart] no simple key: set $ULTRACART_SIMPLE_KEY or "
                              "simple_key_env / simple_key_file")
        return cls(
            enabled=True,
            api=api,
            poll_interval_seconds=float(interval),
            webhook_oid=int(oid) if oid is not None else None,
            webhook_url=str(url) if url else None,
        )


class WebhookStatusGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "relay_ultracart_webhook_pending",
            "Events UltraCart has queued for relay's webhook (as UltraCart reports it).",
            ["webhook_oid"], registry=registry,
        )
        self.consecutive_failures = Gauge(
            "relay_ultracart_webhook_consecutive_failures",
            "Deliveries to relay that failed in a row, as UltraCart reports it.",
            ["webhook_oid"], registry=registry,
        )
        self.disabled = Gauge(
            "relay_ultracart_webhook_disabled",
            "1 if UltraCart has disabled relay's webhook, else 0.",
            ["webhook_oid"], registry=registry,
        )
        self.poll_errors = Counter(
            "relay_ultracart_status_poll_errors",
            "Status polls that failed, by reason (rate_limited, auth, unreachable, "
            "not_found, error).",
            ["reason"], registry=registry,
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
                "budget shared with `relay webhooks`", interval,
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
                oid, webhook.get("consecutive_failures", 0),
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
    settings: StatusPollSettings, registry: CollectorRegistry
) -> PollerTask | None:
    """Start polling if ``[ultracart] enabled``; the caller stops the returned task."""
    if not settings.enabled:
        return None
    from relay.control.factory import build_client

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
