"""SpoolingSink: Kafka first, the spool when Kafka fails, drained in order, replayed on start."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from relay.events.errors import PayloadTooLarge, Unavailable
from relay.events.records import Record
from relay.metrics import RelayMetrics
from relay.spool.log import SpoolLog
from relay.spool.quarantine import Quarantine
from relay.spool.sink import SpoolingSink
from tests.support.fake_sink import FakeSink
from tests.support.waiting import await_until

pytestmark = pytest.mark.anyio

DOWN = Unavailable("Kafka is not reachable", code="kafka_unavailable")


def delivery(n: int, events: int = 1, size: int = 10) -> list[Record]:
    return [
        Record(
            topic="t.order_create",
            key=f"D{n}-E{e}".encode(),
            value=b"x" * size,
            headers=[("ce_id", f"{n}-{e}".encode())],
            label="order_create",
        )
        for e in range(events)
    ]


def make_sink(
    directory: Path, kafka: FakeSink, *, max_bytes: int = 1 << 20, max_record_bytes: int = 1000
) -> tuple[SpoolingSink, RelayMetrics]:
    metrics = RelayMetrics()
    log = SpoolLog(directory, max_bytes, segment_bytes=4096)
    sink = SpoolingSink(
        kafka,
        log,
        metrics,
        max_record_bytes=max_record_bytes,
        drain_timeout=1.0,
        quarantine=Quarantine(directory / "quarantine"),
    )
    return sink, metrics


@asynccontextmanager
async def started(
    directory: Path, kafka: FakeSink, stop_timeout: float = 1.0, **limits: int
) -> AsyncIterator[tuple[SpoolingSink, RelayMetrics]]:
    """A started sink over ``kafka``, stopped when the block ends."""
    sink, metrics = make_sink(directory, kafka, **limits)
    await sink.start()
    try:
        yield sink, metrics
    finally:
        await sink.stop(stop_timeout)


def kafka_down() -> FakeSink:
    kafka = FakeSink()
    kafka.failure = DOWN
    return kafka


def published_keys(kafka: FakeSink) -> list[bytes | None]:
    return [r.key for r in kafka.records]


def gauge(metrics: RelayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None
    return value


async def test_kafka_up_publishes_directly_and_spools_nothing(tmp_path: Path) -> None:
    kafka = FakeSink()
    async with started(tmp_path, kafka) as (sink, metrics):
        await sink.publish(delivery(1, events=2), timeout=1.0)
        assert published_keys(kafka) == [b"D1-E0", b"D1-E1"]
        assert sink.pending_records == 0
        assert gauge(metrics, "relay_spool_records") == 0


async def test_kafka_down_spools_then_drains_in_order_when_it_returns(tmp_path: Path) -> None:
    kafka = kafka_down()
    async with started(tmp_path, kafka) as (sink, metrics):
        for n in range(5):
            await sink.publish(delivery(n, events=2), timeout=1.0)  # no exception: spooled
        assert kafka.published == []
        assert sink.pending_records == 10
        assert gauge(metrics, "relay_spool_records") == 10
        assert gauge(metrics, "relay_spool_bytes") > 0
        assert gauge(metrics, "relay_spool_oldest_age_seconds") >= 0
        reasons = metrics.registry.get_sample_value(
            "relay_spooled_deliveries_total", {"reason": "kafka_unavailable"}
        )
        assert reasons == 1  # the first; the rest queued behind it
        assert (
            metrics.registry.get_sample_value(
                "relay_spooled_deliveries_total", {"reason": "backlog"}
            )
            == 4
        )

        kafka.failure = None
        await await_until(lambda: sink.pending_records == 0, timeout=5)
        assert published_keys(kafka) == [f"D{n}-E{e}".encode() for n in range(5) for e in (0, 1)]
        assert gauge(metrics, "relay_spool_records") == 0
        assert gauge(metrics, "relay_spool_oldest_age_seconds") == 0


async def test_deliveries_queue_behind_a_non_empty_spool(tmp_path: Path) -> None:
    """Once anything is spooled, later deliveries go behind it even if Kafka is back."""
    kafka = kafka_down()
    async with started(tmp_path, kafka) as (sink, _):
        await sink.publish(delivery(0), timeout=1.0)
        kafka.failure = None
        await sink.publish(delivery(1), timeout=1.0)
        await await_until(lambda: sink.pending_records == 0, timeout=5)
        assert published_keys(kafka) == [b"D0-E0", b"D1-E0"]


async def test_spool_full_answers_unavailable(tmp_path: Path) -> None:
    limits = {"max_bytes": 2048, "max_record_bytes": 10_000}
    async with started(tmp_path, kafka_down(), **limits) as (sink, metrics):
        with pytest.raises(Unavailable) as caught:
            for n in range(100):
                await sink.publish(delivery(n, size=300), timeout=1.0)
        assert caught.value.code == "spool_full"
        assert gauge(metrics, "relay_spool_bytes") <= 2048


async def test_a_record_kafka_would_refuse_is_refused_before_spooling(tmp_path: Path) -> None:
    async with started(tmp_path, kafka_down(), max_record_bytes=100) as (sink, _):
        with pytest.raises(PayloadTooLarge):
            await sink.publish(delivery(0, size=101), timeout=1.0)
        assert sink.pending_records == 0


async def test_a_failing_drain_keeps_the_records(tmp_path: Path) -> None:
    kafka = kafka_down()
    async with started(tmp_path, kafka) as (sink, _):
        await sink.publish(delivery(0), timeout=1.0)
        # The direct attempt, then the drainer's tries (backing off between them) all fail.
        await await_until(
            lambda: kafka.attempts >= 3, timeout=5, message="the drainer did not retry"
        )
        assert sink.pending_records == 1
        assert kafka.published == []


async def test_spooled_deliveries_are_replayed_by_the_next_start(tmp_path: Path) -> None:
    async with started(tmp_path, kafka_down()) as (sink, _):
        for n in range(3):
            await sink.publish(delivery(n), timeout=1.0)

    kafka = FakeSink()
    async with started(tmp_path, kafka) as (sink, _):
        await await_until(lambda: sink.pending_records == 0, timeout=5)
    assert published_keys(kafka) == [b"D0-E0", b"D1-E0", b"D2-E0"]


async def test_a_slow_kafka_leaves_time_to_spool_within_the_deadline(tmp_path: Path) -> None:
    class Stalled(FakeSink):
        async def publish(self, records: Sequence[Record], timeout: float) -> None:
            await asyncio.sleep(timeout)  # no acknowledgement within the time given
            raise Unavailable("no ack", code="ack_timeout")

    async with started(tmp_path, Stalled(), stop_timeout=0.1) as (sink, metrics):
        began = time.monotonic()
        await sink.publish(delivery(0), timeout=2.0)
        assert time.monotonic() - began < 2.0
        assert sink.pending_records == 1
        assert (
            metrics.registry.get_sample_value(
                "relay_spooled_deliveries_total", {"reason": "ack_timeout"}
            )
            == 1
        )


async def test_the_drainer_outlives_an_unexpected_error(tmp_path: Path) -> None:
    class Flaky(FakeSink):
        async def publish(self, records: Sequence[Record], timeout: float) -> None:
            if self.attempts < 2:  # the direct attempt, then the drainer's first try
                self.attempts += 1
                raise (DOWN if self.attempts == 1 else RuntimeError("a bug"))
            await super().publish(records, timeout)

    kafka = Flaky()
    async with started(tmp_path, kafka) as (sink, _):
        await sink.publish(delivery(0), timeout=1.0)
        await await_until(lambda: sink.pending_records == 0, timeout=5)
        assert published_keys(kafka) == [b"D0-E0"]


def no_space(fd: int, data: bytes) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


async def test_a_full_disk_is_503_spool_disk_full_logged_once_and_cleared_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import relay.spool.log
    import relay.spool.sink

    async with started(tmp_path, kafka_down()) as (sink, metrics):
        monkeypatch.setattr(relay.spool.log, "write_all", no_space)
        for n in range(3):
            with pytest.raises(Unavailable) as caught:
                await sink.publish(delivery(n), timeout=1.0)
            assert caught.value.code == "spool_disk_full"
        assert gauge(metrics, "relay_spool_disk_full") == 1
        assert sink.ready  # a full disk is not a broken one
        full = [r for r in caplog.records if "disk is full" in r.getMessage()]
        assert len(full) == 1
        monkeypatch.undo()
        # No delivery needs the spool now: the free space alone clears the gauge.
        monkeypatch.setattr(relay.spool.sink, "_DISK_CHECK_SECONDS", 0.01)
        await await_until(lambda: gauge(metrics, "relay_spool_disk_full") == 0, 5)
        await sink.publish(delivery(9), timeout=1.0)
        assert sink.pending_records == 1


async def test_a_failed_fsync_is_503_spool_failed_for_good_and_never_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    async with started(tmp_path, kafka_down()) as (sink, metrics):
        await sink.publish(delivery(0), timeout=1.0)
        monkeypatch.setattr(os, "fsync", failing_fsync)
        for n in range(1, 4):
            with pytest.raises(Unavailable) as caught:
                await sink.publish(delivery(n), timeout=1.0)
            assert caught.value.code == "spool_failed"
        monkeypatch.undo()
        assert len(calls) == 1
        assert not sink.ready
        assert gauge(metrics, "relay_spool_failed") == 1
        failed = [r for r in caplog.records if "fsync or write failed" in r.getMessage()]
        assert len(failed) == 1
