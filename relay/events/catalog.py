"""UltraCart's webhook event catalog (docs/ultracart.md section 3, from UltraCart's SDK samples).

The live catalog is ``GET /webhook/webhooks?_placeholders=true``; this copy bounds metric
label values and picks default record keys. Events not listed here are still published,
to the configured unknown-event topic, so a new UltraCart event is never dropped.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

EVENTS_BY_CATEGORY: Final = MappingProxyType(
    {
        "auto_order": (
            "auto_order_cancel",
            "auto_order_create",
            "auto_order_decline",
            "auto_order_disable",
            "auto_order_preshipment",
            "auto_order_rebill",
            "auto_order_update",
        ),
        "chargeback": ("chargeback_create", "chargeback_delete", "chargeback_update"),
        "checkout": ("checkout_cart_abandon", "checkout_cart_send_return_email"),
        "customer": ("customer_create", "customer_delete", "customer_update"),
        "fulfillment": ("fulfillment_hold", "fulfillment_transmit"),
        "item": ("item_create", "item_delete", "item_update"),
        "order": (
            "order_abandon_recovery",
            "order_create",
            "order_delete",
            "order_payment_failed",
            "order_payment_process",
            "order_refund",
            "order_reject",
            "order_s3_invoice",
            "order_s3_packing_slip",
            "order_ship",
            "order_ship_delivered",
            "order_ship_expected",
            "order_ship_out_for_delivery",
            "order_stage_change",
            "order_update",
        ),
        "storefront": ("screen_recording",),
        "user": ("user_create", "user_delete", "user_login", "user_update"),
        "workflow_task": ("workflow_task_create", "workflow_task_delete", "workflow_task_update"),
    }
)

KNOWN_EVENTS: Final = frozenset(name for names in EVENTS_BY_CATEGORY.values() for name in names)

# "Currently, there are only two events available for reflow" (UltraCart SDK docs).
REFLOW_EVENTS: Final = frozenset({"item_update", "order_create"})

# Object fields that identify the entity an event is about, tried in order. Keying by
# entity keeps one order's (or item's) events on one partition, hence in order.
DEFAULT_KEY_FIELDS: Final = MappingProxyType(
    {
        "auto_order": ("auto_order_oid", "auto_order_code", "original_order_id"),
        "chargeback": ("chargeback_dispute_oid", "order_id"),
        "checkout": ("cart_id", "order_id"),
        "customer": ("customer_profile_oid", "email"),
        "fulfillment": ("order_id",),
        "item": ("merchant_item_oid", "merchant_item_id"),
        "order": ("order_id",),
        "storefront": ("screen_recording_uuid",),
        "user": ("user_id",),
        "workflow_task": ("workflow_task_uuid",),
    }
)

CATEGORY_BY_EVENT: Final = MappingProxyType(
    {name: category for category, names in EVENTS_BY_CATEGORY.items() for name in names}
)

UNKNOWN_EVENT_LABEL: Final = "unknown"


def metric_label(event_name: str) -> str:
    """Event name as a metric label; unknown names collapse so label sets stay bounded."""
    return event_name if event_name in KNOWN_EVENTS else UNKNOWN_EVENT_LABEL
