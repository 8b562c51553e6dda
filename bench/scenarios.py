"""What the benchmark sends: UltraCart-shaped deliveries of 1, 10 or 100 events.

Two object shapes: a small order (a few identifying fields, ~150 bytes) and a realistic
expanded order of several KB, cut down from the synthetic Order sample relay ships for its
emulator (same field names and nesting as UltraCart's Order model). Every event carries its
own order id, so records spread over partitions by key as real traffic does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]

# Distinct request bodies the load generator cycles through.
POOL_SIZE = 64
# The "several KB" realistic order: the sample's top-level sections, in order, while the
# object stays under this many bytes.
ORDER_TARGET_BYTES = 5 * 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    events: int
    shape: str  # "small" or "order"

    @property
    def label(self) -> str:
        return f"{self.events} x {self.shape}"


ALL = (
    Scenario("small-1", 1, "small"),
    Scenario("small-10", 10, "small"),
    Scenario("small-100", 100, "small"),
    Scenario("order-1", 1, "order"),
    Scenario("order-10", 10, "order"),
    Scenario("order-100", 100, "order"),
)
BY_NAME = {s.name: s for s in ALL}


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def realistic_order() -> JsonObject:
    text = resources.files("relay.emulator").joinpath("samples", "order.json").read_text("utf-8")
    sample: JsonObject = json.loads(text)
    order: JsonObject = {}
    for key, value in sample.items():
        candidate = {**order, key: value}
        if len(_compact(candidate)) <= ORDER_TARGET_BYTES:
            order = candidate
    return order


def small_order() -> JsonObject:
    return {
        "merchant_id": "DEMO",
        "order_id": "DEMO-0000000000",
        "current_stage": "Accounts Receivable",
        "creation_dts": "2026-01-01T00:00:00+00:00",
        "currency_code": "USD",
        "summary": {"total": {"value": 49.95, "currency_code": "USD"}},
    }


def object_template(shape: str) -> JsonObject:
    if shape == "small":
        return small_order()
    if shape == "order":
        return realistic_order()
    raise ValueError(f"unknown object shape {shape!r}")


def delivery_bodies(scenario: Scenario, pool: int = POOL_SIZE) -> list[bytes]:
    """``pool`` distinct compact JSON bodies ``{"events": [{"order_create": {...}}, ...]}``."""
    template = object_template(scenario.shape)
    bodies = []
    serial = 0
    for _ in range(pool):
        events = []
        for _ in range(scenario.events):
            serial += 1
            events.append({"order_create": {**template, "order_id": f"DEMO-{serial:010d}"}})
        bodies.append(_compact({"events": events}))
    return bodies


def object_bytes(shape: str) -> int:
    return len(_compact(object_template(shape)))


def write_bodies(path: Path, bodies: list[bytes]) -> None:
    """One body per line (compact JSON has no raw newlines), as bench.loadgen reads them."""
    path.write_bytes(b"\n".join(bodies) + b"\n")
