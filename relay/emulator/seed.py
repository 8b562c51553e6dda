"""Seed objects: N items and orders with distinct ids, made from the shipped samples.

The samples are synthetic objects that follow the field names and nesting of UltraCart's
``Item`` and ``Order`` models (docs/ultracart.md, "Samples"), so deliveries have realistic
shapes and sizes.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

JsonObject = dict[str, Any]

FIRST_ITEM_OID = 100_000


def _template(name: str) -> JsonObject:
    text = resources.files("relay.emulator").joinpath("samples", name).read_text("utf-8")
    data: JsonObject = json.loads(text)
    return data


def make_items(count: int, merchant_id: str = "DEMO") -> list[JsonObject]:
    template = _template("item.json")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for index in range(count):
        item = copy.deepcopy(template)
        item["merchant_id"] = merchant_id
        item["merchant_item_id"] = f"SKU-EMU-{index + 1:05d}"
        item["merchant_item_oid"] = FIRST_ITEM_OID + index
        item["description"] = f"Emulated item {index + 1}"
        item["last_modified_dts"] = (base + timedelta(minutes=index)).isoformat()
        items.append(item)
    return items


def make_orders(count: int, merchant_id: str = "DEMO") -> list[JsonObject]:
    template = _template("order.json")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    orders = []
    for index in range(count):
        order = copy.deepcopy(template)
        order["merchant_id"] = merchant_id
        order["order_id"] = f"EMU-{index + 1:010d}"
        order["creation_dts"] = (base + timedelta(minutes=index)).isoformat()
        orders.append(order)
    return orders


def object_id(event_name: str, obj: JsonObject) -> str:
    """The id used in the emulator's own bookkeeping (not sent to anyone)."""
    for key in ("order_id", "merchant_item_id", "customer_profile_oid", "auto_order_oid"):
        if key in obj:
            return str(obj[key])
    return event_name
