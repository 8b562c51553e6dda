"""Gauges that change on every delivery, written to prometheus_client once per loop turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from prometheus_client import Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class TurnGauge:
    """A gauge changed on every delivery, written to its metric at most once per loop turn.

    With several workers each gauge write is a lock and an mmap write (multiprocess mode);
    the in-flight gauges change twice per delivery, and under load dozens of deliveries
    start and finish within one turn of the event loop. The value is kept here and written
    by a callback at the end of the turn, so what a scrape reads is at most one turn old.
    Only the event loop's thread may call ``set``.
    Created by ``RelayMetrics.turn_gauge``, which writes every pending value before a
    scrape of the app's own registry reads it (a single-process relay's /metrics answers on
    the same loop, possibly within the same turn).
    """

    __slots__ = ("_gauge", "_scheduled", "value")

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._scheduled = False
        self.value = 0

    def set(self, value: int) -> None:
        self.value = value
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        self._gauge.set(self.value)

    def write_now(self) -> None:
        if self._scheduled:
            self._gauge.set(self.value)


class PendingGaugeWrites(Collector):
    """Collected first on the app's registry: writes the turn gauges' values, yields nothing."""

    def __init__(self) -> None:
        self.gauges: list[TurnGauge] = []

    def collect(self) -> Iterable[Metric]:
        for gauge in self.gauges:
            gauge.write_now()
        return ()
