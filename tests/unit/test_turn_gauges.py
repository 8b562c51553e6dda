"""The in-flight gauges: written once per loop turn, and never stale to a scrape."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest

from relay.metrics import RelayMetrics
from tests.support.metrics import metric_sum

pytestmark = pytest.mark.anyio


def scraped(metrics: RelayMetrics, name: str) -> float:
    return metric_sum(generate_latest(metrics.registry).decode(), name)


async def test_many_changes_in_one_turn_make_one_write_of_the_last_value() -> None:
    metrics = RelayMetrics()
    writes: list[float] = []
    real_set = metrics.inflight_events.set

    def counted_set(value: float) -> None:
        writes.append(value)
        real_set(value)

    metrics.inflight_events.set = counted_set  # type: ignore[method-assign]
    gauge = metrics.turn_gauge(metrics.inflight_events)
    for value in (1, 2, 3, 2):
        gauge.set(value)
    assert writes == []
    await asyncio.sleep(0)
    assert writes == [2]
    assert scraped(metrics, "relay_inflight_events") == 2


async def test_a_scrape_in_the_same_turn_reads_the_current_value() -> None:
    # A single-process relay answers /metrics on the same loop, possibly in the same turn.
    metrics = RelayMetrics()
    gauge = metrics.turn_gauge(metrics.inflight_deliveries)
    gauge.set(gauge.value + 1)
    assert scraped(metrics, "relay_inflight_deliveries") == 1
    gauge.set(gauge.value - 1)
    assert scraped(metrics, "relay_inflight_deliveries") == 0
    await asyncio.sleep(0)
    assert scraped(metrics, "relay_inflight_deliveries") == 0


async def test_a_later_turn_writes_again() -> None:
    metrics = RelayMetrics()
    gauge = metrics.turn_gauge(metrics.inflight_events)
    gauge.set(5)
    await asyncio.sleep(0)
    gauge.set(0)
    await asyncio.sleep(0)
    assert scraped(metrics, "relay_inflight_events") == 0
