"""UltraCart's event catalog as documented (WEBHOOKS.md section 3).

The live catalog is ``GET /webhook/webhooks?_placeholders=true``; this copy lets relay check a
desired state before any call, group events into the categories UltraCart expects on insert,
and lets the emulator answer with placeholders. Only ``item_update`` and ``order_create``
support reflow.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

CATEGORIES: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {
        "auto_order": (
            "auto_order_cancel", "auto_order_create", "auto_order_decline",
            "auto_order_disable", "auto_order_preshipment", "auto_order_rebill",
            "auto_order_update",
        ),
        "chargeback": ("chargeback_create", "chargeback_delete", "chargeback_update"),
        "checkout": ("checkout_cart_abandon", "checkout_cart_send_return_email"),
        "customer": ("customer_create", "customer_delete", "customer_update"),
        "fulfillment": ("fulfillment_hold", "fulfillment_transmit"),
        "item": ("item_create", "item_delete", "item_update"),
        "order": (
            "order_abandon_recovery", "order_create", "order_delete", "order_payment_failed",
            "order_payment_process", "order_refund", "order_reject", "order_s3_invoice",
            "order_s3_packing_slip", "order_ship", "order_ship_delivered",
            "order_ship_expected", "order_ship_out_for_delivery", "order_stage_change",
            "order_update",
        ),
        "storefront": ("screen_recording",),
        "user": ("user_create", "user_delete", "user_login", "user_update"),
        "workflow_task": ("workflow_task_create", "workflow_task_delete", "workflow_task_update"),
    }
)

REFLOW_EVENTS: Final = frozenset({"item_update", "order_create"})

ORDER_EXPANSIONS: Final = (
    "affiliate", "affiliate.ledger", "auto_order", "billing", "channel_partner", "checkout",
    "coupon", "customer_profile", "digital_order", "edi", "fraud_score", "gift",
    "gift_certificate", "internal", "item", "linked_shipment", "marketing", "payment",
    "payment.transaction", "point_of_sale", "quote", "salesforce", "shipping",
    "shipping.tracking_number_details", "summary", "taxes", "utms",
)

# Only the order expansions are documented; the other categories get none here and the
# emulator accepts any expansion string for them.
AVAILABLE_EXPANSIONS: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {"order": ORDER_EXPANSIONS, "fulfillment": ORDER_EXPANSIONS}
)

EVENT_CATEGORY: Final[MappingProxyType[str, str]] = MappingProxyType(
    {event: category for category, events in CATEGORIES.items() for event in events}
)


def category_of(event_name: str) -> str | None:
    return EVENT_CATEGORY.get(event_name)


def supports_reflow(event_name: str) -> bool:
    return event_name in REFLOW_EVENTS
