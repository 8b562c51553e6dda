"""What the control plane adds to relay's event catalog (``relay.events.catalog``).

The events and categories themselves live in ``relay.events.catalog`` (docs/ultracart.md section 3),
shared with intake. Here: which expansions UltraCart documents, which events can be
reflowed, and lookups for grouping desired events into the categories UltraCart expects.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from relay.events.catalog import CATEGORY_BY_EVENT, REFLOW_EVENTS

ORDER_EXPANSIONS: Final = (
    "affiliate",
    "affiliate.ledger",
    "auto_order",
    "billing",
    "channel_partner",
    "checkout",
    "coupon",
    "customer_profile",
    "digital_order",
    "edi",
    "fraud_score",
    "gift",
    "gift_certificate",
    "internal",
    "item",
    "linked_shipment",
    "marketing",
    "payment",
    "payment.transaction",
    "point_of_sale",
    "quote",
    "salesforce",
    "shipping",
    "shipping.tracking_number_details",
    "summary",
    "taxes",
    "utms",
)

# Only the order expansions are documented; the other categories get none here and the
# emulator accepts any expansion string for them.
AVAILABLE_EXPANSIONS: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {"order": ORDER_EXPANSIONS, "fulfillment": ORDER_EXPANSIONS}
)


def category_of(event_name: str) -> str | None:
    return CATEGORY_BY_EVENT.get(event_name)


def supports_reflow(event_name: str) -> bool:
    return event_name in REFLOW_EVENTS
