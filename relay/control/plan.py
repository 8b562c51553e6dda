"""The difference between the desired webhook and UltraCart's, and the body that closes it.

Updates follow UltraCart's own pattern (docs/ultracart.md 4.5): take the webhook as read with
``_placeholders=true`` (every event, each with an explicit ``subscribed`` flag), change the
fields and flags, PUT the whole object back. Sending every event with an explicit flag works
whether UltraCart treats the PUT as a patch or as a replacement.

Ownership: a webhook relay created converges fully to the desired state. One relay adopted
(found by URL) keeps subscriptions it already had unless ``prune`` is asked for: relay never
deletes what it did not create unless told to.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from relay.control.catalog import AVAILABLE_EXPANSIONS, category_of, supports_reflow
from relay.control.desired import DesiredEvent, DesiredWebhook
from relay.control.models import (
    Webhook,
    WebhookEventCategory,
    WebhookEventSubscription,
    subscribed_events,
)

# Delivery state that UltraCart maintains; never sent back on an update.
READ_ONLY_FIELDS = ("pending", "consecutive_failures", "next_retry_after", "merchant_id")


@dataclass(frozen=True)
class Change:
    kind: Literal["set", "subscribe", "unsubscribe", "modify"]
    subject: str
    before: str = ""
    after: str = ""

    def render(self) -> str:
        mark = {"set": "~", "subscribe": "+", "unsubscribe": "-", "modify": "~"}[self.kind]
        if self.kind == "subscribe":
            return f"  {mark} subscribe {self.subject} ({self.after})"
        if self.kind == "unsubscribe":
            return f"  {mark} unsubscribe {self.subject}"
        return f"  {mark} {self.subject}: {self.before} -> {self.after}"


@dataclass(frozen=True)
class Plan:
    action: Literal["create", "update", "noop"]
    url: str
    webhook_oid: int | None = None
    owned: bool = False
    changes: tuple[Change, ...] = ()
    kept: tuple[str, ...] = ()
    body: Webhook = field(default_factory=lambda: Webhook())

    @property
    def differs(self) -> bool:
        return self.action != "noop"

    def to_json(self) -> dict[str, Any]:
        """For ``--json``. Leaves out ``body``: it carries the Basic password."""
        return {
            "action": self.action,
            "differs": self.differs,
            "url": self.url,
            "webhook_oid": self.webhook_oid,
            "owned": self.owned,
            "changes": [
                {"kind": c.kind, "subject": c.subject, "before": c.before, "after": c.after}
                for c in self.changes
            ],
            "kept": list(self.kept),
        }

    def render(self) -> str:
        if self.action == "create":
            head = f"Webhook {self.url}: not found on UltraCart, will be created"
        else:
            origin = "created by relay" if self.owned else "adopted: created outside relay"
            head = f"Webhook {self.url} (oid {self.webhook_oid}, {origin})"
        lines = [head, *(change.render() for change in self.changes)]
        lines += [
            f"  = keep {name} (subscribed outside relay; --prune unsubscribes it)"
            for name in self.kept
        ]
        if self.action == "noop":
            lines.append("No changes: UltraCart matches the desired state.")
        else:
            lines.append(f"Plan: {self.action}, {len(self.changes)} change(s).")
        return "\n".join(lines)


def _expansion(value: str | None) -> tuple[str, ...]:
    return tuple(sorted({part.strip() for part in (value or "").split(",") if part.strip()}))


def _describe(event: DesiredEvent) -> str:
    expansion = event.expansion_csv or "none"
    ruler = "event_ruler set" if event.event_ruler else "no event_ruler"
    return f"expansion: {expansion}; {ruler}"


def _subscription(event: DesiredEvent) -> WebhookEventSubscription:
    subscription = WebhookEventSubscription(
        event_name=event.name, expansion=event.expansion_csv, subscribed=True
    )
    if event.event_ruler:
        subscription["event_ruler"] = event.event_ruler
    if supports_reflow(event.name):
        subscription["supports_reflow"] = True
    return subscription


def _settings(desired: DesiredWebhook) -> Webhook:
    body = Webhook(
        webhook_url=desired.url,
        api_version=desired.api_version,
        compress_events=desired.compress_events,
        authentication_type="basic" if desired.basic else "none",
    )
    if desired.maximum_events is not None:
        body["maximum_events"] = desired.maximum_events
    if desired.maximum_size is not None:
        body["maximum_size"] = desired.maximum_size
    if desired.basic:
        body["basic_username"] = desired.basic.username
        body["basic_password"] = desired.basic.password.reveal()
    return body


def create_body(desired: DesiredWebhook) -> Webhook:
    body = _settings(desired)
    categories: dict[str, WebhookEventCategory] = {}
    for event in desired.events:
        name = category_of(event.name) or "unknown"
        category = categories.setdefault(name, WebhookEventCategory(event_category=name, events=[]))
        category.setdefault("events", []).append(_subscription(event))
    body["event_categories"] = list(categories.values())
    return body


def plan_create(desired: DesiredWebhook) -> Plan:
    changes = [Change("subscribe", event.name, after=_describe(event)) for event in desired.events]
    return Plan("create", desired.url, changes=tuple(changes), body=create_body(desired))


def plan_update(
    desired: DesiredWebhook, actual: Webhook, *, owned: bool, prune: bool = False
) -> Plan:
    """Diff ``actual`` (read with placeholders) against ``desired``."""
    body: Webhook = copy.deepcopy(actual)
    for key in READ_ONLY_FIELDS:
        body.pop(key, None)  # type: ignore[misc]
    changes: list[Change] = []
    for key, want in _settings(desired).items():
        have = actual.get(key)
        if key == "basic_password":
            # Compare only when UltraCart shows the password; never print either value.
            if have is not None and have != want:
                changes.append(Change("set", key, "(current)", "(from secret)"))
            body["basic_password"] = str(want)
            continue
        if key == "compress_events":
            have = bool(have)
        if have != want:
            changes.append(Change("set", key, _show(have), _show(want)))
        body[key] = want  # type: ignore[literal-required]
    if actual.get("disabled"):
        changes.append(Change("set", "disabled", "true", "false"))
        body["disabled"] = False

    kept: list[str] = []
    wanted = {event.name: event for event in desired.events}
    current = subscribed_events(actual)
    placed: set[str] = set()
    for category in body.get("event_categories", []):
        for event in category.get("events", []):
            name = event.get("event_name", "")
            placed.add(name)
            if name in wanted:
                changes += _converge(event, wanted[name], name in current)
            elif event.get("subscribed"):
                if owned or prune:
                    event["subscribed"] = False
                    changes.append(Change("unsubscribe", name))
                else:
                    kept.append(name)
        _refresh_category_flags(category)
    for want in desired.events:
        if want.name not in placed:
            _place(body, want)
            changes.append(Change("subscribe", want.name, after=_describe(want)))
    action: Literal["update", "noop"] = "update" if changes else "noop"
    return Plan(
        action,
        desired.url,
        webhook_oid=actual.get("webhook_oid"),
        owned=owned,
        changes=tuple(changes),
        kept=tuple(sorted(kept)),
        body=body,
    )


def _converge(
    event: WebhookEventSubscription, want: DesiredEvent, subscribed: bool
) -> list[Change]:
    changes: list[Change] = []
    if not subscribed:
        changes.append(Change("subscribe", want.name, after=_describe(want)))
    else:
        have = _expansion(event.get("expansion"))
        if have != want.expansion:
            changes.append(
                Change(
                    "modify",
                    f"{want.name} expansion",
                    ",".join(have) or "none",
                    want.expansion_csv or "none",
                )
            )
        if (event.get("event_ruler") or None) != want.event_ruler:
            changes.append(
                Change(
                    "modify",
                    f"{want.name} event_ruler",
                    _show(event.get("event_ruler")),
                    _show(want.event_ruler),
                )
            )
    event["subscribed"] = True
    event["expansion"] = want.expansion_csv
    if want.event_ruler:
        event["event_ruler"] = want.event_ruler
    else:
        event.pop("event_ruler", None)
    return changes


def _place(body: Webhook, event: DesiredEvent) -> None:
    name = category_of(event.name) or "unknown"
    categories = body.setdefault("event_categories", [])
    for category in categories:
        if category.get("event_category") == name:
            category.setdefault("events", []).append(_subscription(event))
            _refresh_category_flags(category)
            return
    category = WebhookEventCategory(
        event_category=name,
        events=[_subscription(event)],
        available_expansions=list(AVAILABLE_EXPANSIONS.get(name, ())),
    )
    _refresh_category_flags(category)
    categories.append(category)


def _refresh_category_flags(category: WebhookEventCategory) -> None:
    # Keep the convenience flags consistent with the events, as UltraCart's UI would.
    flags = [bool(event.get("subscribed")) for event in category.get("events", [])]
    if "any_subscribed" in category or "subscribed" in category:
        category["any_subscribed"] = any(flags)
        category["subscribed"] = bool(flags) and all(flags)


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)
