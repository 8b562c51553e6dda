"""The emulator's in-memory state: webhooks, their queues and delivery logs, OAuth grants.

One instance per emulator app (no module-level state), touched only from the event loop
thread, so it needs no locks.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from relay.control.catalog import AVAILABLE_EXPANSIONS, supports_reflow
from relay.control.models import (
    Webhook,
    WebhookEventCategory,
    WebhookEventSubscription,
)
from relay.emulator.delivery_log import DeliveryLog
from relay.emulator.options import EmulatorOptions
from relay.emulator.seed import JsonObject, make_items, make_orders
from relay.events.catalog import EVENTS_BY_CATEGORY

# Settings a client may write; everything else on a Webhook is UltraCart's own.
WRITABLE = (
    "webhook_url",
    "api_version",
    "authentication_type",
    "basic_username",
    "basic_password",
    "compress_events",
    "maximum_events",
    "maximum_size",
    "iam_access_key",
    "iam_secret_key",
)


@dataclass
class Subscription:
    expansion: str = ""
    event_ruler: str | None = None


@dataclass
class QueuedEvent:
    event_name: str
    obj: JsonObject
    enqueued_at: float


@dataclass
class StoredWebhook:
    webhook_oid: int
    settings: dict[str, Any]
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queue: deque[QueuedEvent] = field(default_factory=deque)
    logs: DeliveryLog = field(default_factory=DeliveryLog)
    consecutive_failures: int = 0
    next_retry_at: float | None = None
    disabled: bool = False
    statuses: Counter[int] = field(default_factory=Counter)
    delivered_events: int = 0

    def render(self, merchant_id: str, *, placeholders: bool) -> Webhook:
        webhook = Webhook(webhook_oid=self.webhook_oid, merchant_id=merchant_id)
        webhook.update(self.settings)  # type: ignore[typeddict-item]
        webhook["pending"] = len(self.queue)
        webhook["consecutive_failures"] = self.consecutive_failures
        webhook["disabled"] = self.disabled
        if self.next_retry_at is not None:
            webhook["next_retry_after"] = _iso(self.next_retry_at)
        webhook["event_categories"] = self._categories(placeholders)
        return webhook

    def _categories(self, placeholders: bool) -> list[WebhookEventCategory]:
        categories = []
        for number, (category, events) in enumerate(EVENTS_BY_CATEGORY.items()):
            rendered: list[WebhookEventSubscription] = []
            for index, name in enumerate(events):
                subscription = self.subscriptions.get(name)
                if subscription is None and not placeholders:
                    continue
                event = WebhookEventSubscription(
                    event_name=name,
                    subscribed=subscription is not None,
                    supports_reflow=supports_reflow(name),
                    deprecated_flag=False,
                    discontinued_flag=False,
                    event_description=name.replace("_", " ").capitalize(),
                    webhook_event_oid=(number + 1) * 100 + index,
                )
                if subscription is not None:
                    event["expansion"] = subscription.expansion
                    if subscription.event_ruler:
                        event["event_ruler"] = subscription.event_ruler
                rendered.append(event)
            if not rendered:
                continue
            flags = [bool(event.get("subscribed")) for event in rendered]
            categories.append(
                WebhookEventCategory(
                    event_category=category,
                    events=rendered,
                    any_subscribed=any(flags),
                    subscribed=all(flags) and len(rendered) == len(events),
                    available_expansions=list(AVAILABLE_EXPANSIONS.get(category, ())),
                )
            )
        return categories


@dataclass
class OAuthGrants:
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> client, redirect
    access: dict[str, float] = field(default_factory=dict)  # token -> expires at
    refresh: set[str] = field(default_factory=set)
    token_grants: int = 0
    refresh_grants: int = 0

    def issue(self, ttl: float) -> tuple[str, str]:
        access = "emu-at-" + secrets.token_urlsafe(24)
        refresh = "emu-rt-" + secrets.token_urlsafe(24)
        self.access[access] = time.time() + ttl
        self.refresh.add(refresh)
        return access, refresh

    def valid(self, token: str) -> bool:
        expires = self.access.get(token)
        return expires is not None and time.time() < expires


@dataclass
class RateBucket:
    """UltraCart's leaky bucket: ``per_hour`` calls an hour, draining continuously, holding
    at most ``capacity`` (UltraCart's burst size is not documented; by default an hour's)."""

    per_hour: int
    capacity: int
    level: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def admit(self) -> bool:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.updated) * self.per_hour / 3600.0)
        self.updated = now
        if self.level + 1 > self.capacity:
            return False
        self.level += 1
        return True


class EmulatorState:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.webhooks: dict[int, StoredWebhook] = {}
        self.next_oid = 1001
        self.items = make_items(options.items, options.merchant_id)
        self.orders = make_orders(options.orders, options.merchant_id)
        self.oauth = OAuthGrants()
        self.bucket = RateBucket(
            options.rate_limit_per_hour,
            options.rate_limit_burst or options.rate_limit_per_hour,
        )
        self.faults: deque[int] = deque()
        self.in_flight = 0
        self.api_calls = 0
        self.rejected: Counter[int] = Counter()
        self.update_counter = 0

    def add_webhook(self, settings: dict[str, Any]) -> StoredWebhook:
        webhook = StoredWebhook(self.next_oid, settings)
        self.webhooks[webhook.webhook_oid] = webhook
        self.next_oid += 1
        return webhook

    def enqueue(self, event_name: str, objects: list[JsonObject]) -> int:
        """Queue objects for every enabled webhook subscribed to the event."""
        return sum(
            self.enqueue_for(webhook, event_name, objects)
            for webhook in self.webhooks.values()
            if event_name in webhook.subscriptions and not webhook.disabled
        )

    def enqueue_for(
        self, webhook: StoredWebhook, event_name: str, objects: list[JsonObject]
    ) -> int:
        now = time.time()
        webhook.queue.extend(QueuedEvent(event_name, obj, now) for obj in objects)
        return len(objects)

    def objects_for(self, event_name: str) -> list[JsonObject]:
        """What a reflow of ``event_name`` re-sends: every stored item or order."""
        if event_name.startswith("item_"):
            return self.items
        if event_name.startswith("order_"):
            return self.orders
        return []


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "+00:00"
