"""Read UltraCart's webhook, plan, and carry the plan out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from relay.control.client import UltraCartClient
from relay.control.desired import DesiredWebhook
from relay.control.errors import ControlError
from relay.control.models import Webhook
from relay.control.plan import Plan, plan_create, plan_update
from relay.control.state import Ownership, OwnershipState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    webhook: Webhook | None


def make_plan(
    client: UltraCartClient,
    desired: DesiredWebhook,
    state: OwnershipState,
    *,
    prune: bool = False,
) -> Plan:
    actual = client.find_by_url(desired.url, placeholders=True)
    if actual is None:
        return plan_create(desired)
    owned = state.owns(desired.url, actual.get("webhook_oid"))
    return plan_update(desired, actual, owned=owned, prune=prune)


def apply(
    client: UltraCartClient,
    desired: DesiredWebhook,
    state: OwnershipState,
    *,
    prune: bool = False,
) -> Outcome:
    plan = make_plan(client, desired, state, prune=prune)
    if plan.action == "noop":
        return Outcome(plan, None)
    if plan.action == "create":
        webhook = client.insert_webhook(plan.body, placeholders=True)
        oid = webhook.get("webhook_oid")
        if not isinstance(oid, int):
            raise ControlError("UltraCart created the webhook but returned no webhook_oid")
        state.put(desired.url, Ownership(oid, created_by_relay=True))
        logger.info("created webhook %s for %s", oid, desired.url)
        return Outcome(plan, webhook)
    assert plan.webhook_oid is not None
    webhook = client.update_webhook(plan.webhook_oid, plan.body, placeholders=True)
    if state.get(desired.url) is None:
        # Remember the adoption (not ownership) so later runs report it consistently.
        state.put(desired.url, Ownership(plan.webhook_oid, created_by_relay=False))
    logger.info("updated webhook %s for %s", plan.webhook_oid, desired.url)
    return Outcome(plan, webhook)
