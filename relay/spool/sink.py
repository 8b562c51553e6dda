"""``SpoolingSink``: an EventSink that tries Kafka first and falls back to the spool.

Per delivery:
- spool empty: publish to Kafka directly, keeping a little of the deadline back; if Kafka
  refuses or does not acknowledge in time, append the delivery to the spool instead;
- spool not empty: append at once, behind what is already waiting, so deliveries reach
  Kafka in the order they were accepted and a recovering broker is not raced;
- the delivery is acknowledged (200) once the append is fsynced (per ``spool.fsync``).

The drainer sends the oldest spooled deliveries to Kafka in batches and removes them only
after Kafka acknowledged every record; on failure it backs off and retries the same batch.
A delivery Kafka refuses for good (relay.kafka.errors: too large for the topic, not
authorized) would fail that batch forever, so the drainer then sends the batch's deliveries
one by one, moves those refused for good to the quarantine directory, and goes on.
Duplicates are possible, never loss: a direct attempt that timed out may still land before
its spooled copy, and a crash between Kafka's acknowledgement and the checkpoint replays a
batch. Every copy carries the same ``ce_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from relay.events.errors import DeliveryError, RecordsRefused, Unavailable
from relay.events.records import Record, checked_record_bytes
from relay.events.sink import EventSink
from relay.metrics import RelayMetrics
from relay.settings import Settings
from relay.spool.codec import decode_delivery, encode_delivery
from relay.spool.errors import SpoolDiskFull, SpoolFailed, SpoolFull
from relay.spool.group_sync import GroupSync
from relay.spool.log import Entry, SpoolLog
from relay.spool.quarantine import Quarantine

logger = logging.getLogger(__name__)

# The drainer's batches: large enough to catch up quickly after an outage, small enough to
# stay well inside the producer's in-flight limit and the acknowledgement deadline.
_DRAIN_RECORDS = 2000
_DRAIN_BYTES = 8 * 1024 * 1024
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 2.0
# Part of a delivery's deadline kept back from the direct attempt for writing the spool.
_SPOOL_RESERVE_MAX = 1.0
# While the volume is full, how often its free space is looked at, and how much must be
# free (beyond the frame that did not fit) before the spool counts as writable again.
_DISK_CHECK_SECONDS = 1.0
_DISK_HEADROOM = 64 * 1024


class SpoolingSink:
    def __init__(
        self,
        kafka: EventSink,
        log: SpoolLog,
        metrics: RelayMetrics,
        *,
        max_record_bytes: int,
        drain_timeout: float,
        quarantine: Quarantine,
        drain_records: int = _DRAIN_RECORDS,
        drain_bytes: int = _DRAIN_BYTES,
    ) -> None:
        self._kafka = kafka
        self._log = log
        self._dir = log.directory
        self._quarantine = quarantine
        self._metrics = metrics
        self._max_record_bytes = max_record_bytes
        self._drain_timeout = drain_timeout
        self._drain_records = drain_records
        self._drain_bytes = drain_bytes
        self._group_sync = GroupSync(log.sync)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._disk_watch: asyncio.Task[None] | None = None
        # Bytes of the append the volume had no room for; None while it has room.
        self._disk_full_at: int | None = None
        self._failure_logged = False
        # Read at scrape time, so the gauges never lag behind the log.
        metrics.spool_records.set_function(lambda: log.pending_records)
        metrics.spool_bytes.set_function(lambda: log.disk_bytes)
        metrics.spool_oldest_age_seconds.set_function(log.oldest_age)
        metrics.spool_disk_full.set_function(lambda: self._disk_full_at is not None)
        metrics.spool_failed.set_function(lambda: log.failed)

    @property
    def ready(self) -> bool:
        """Deliveries can be taken: by the spool, whatever Kafka's state."""
        return self._log.is_open and not self._log.failed

    @property
    def pending_records(self) -> int:
        return self._log.pending_records

    async def start(self) -> None:
        recovery = await asyncio.to_thread(self._log.open)
        if recovery.entries or recovery.truncated_bytes:
            logger.warning(
                "spool replay: deliveries left by the previous run will be sent to Kafka",
                extra={
                    "deliveries": recovery.entries,
                    "records": recovery.records,
                    "truncated_bytes": recovery.truncated_bytes,
                },
            )
        self._drainer = asyncio.create_task(self._drain_forever(), name="spool-drainer")

    async def stop(self, timeout: float) -> None:
        """Let a batch being sent finish (within ``timeout``); the rest stays on disk."""
        self._stop.set()
        self._wake.set()
        if self._disk_watch is not None:
            self._disk_watch.cancel()
            await asyncio.gather(self._disk_watch, return_exceptions=True)
        if self._drainer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._drainer), timeout)
            except TimeoutError:
                self._drainer.cancel()
                await asyncio.gather(self._drainer, return_exceptions=True)
        await asyncio.to_thread(self._log.close)
        if self._log.pending_records:
            logger.warning(
                "relay stopped with records in the spool; they are sent on the next start",
                extra={"records": self._log.pending_records},
            )

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        if not records:
            return
        if self._log.failed:
            raise self._failed_error()
        if not self.ready:
            raise Unavailable("the spool is not usable; retry later", code="spool_unavailable")
        checked_record_bytes(records, self._max_record_bytes)
        reason = "backlog"
        if self._log.pending_entries == 0:
            reserve = min(_SPOOL_RESERVE_MAX, timeout / 4)
            try:
                await self._kafka.publish(records, max(0.001, timeout - reserve))
                return
            except Unavailable as exc:
                reason = exc.code
        await self._append(records, reason)

    async def _append(self, records: Sequence[Record], reason: str) -> None:
        appended_at = time.time()
        payload = encode_delivery(records, appended_at)
        try:
            await asyncio.to_thread(self._log.append, payload, len(records), appended_at)
        except SpoolFull:
            raise Unavailable("the spool is full; retry later", code="spool_full") from None
        except SpoolDiskFull as exc:
            self._disk_is_full(len(payload), exc)
            raise Unavailable(
                "the spool's disk is full; retry later", code="spool_disk_full"
            ) from None
        except (OSError, SpoolFailed) as exc:
            raise self._write_failed(exc) from None
        self._disk_has_room()
        try:
            await self._group_sync.sync()
        except (OSError, SpoolFailed) as exc:
            # Not acknowledged: the fsync covering it failed, so it may not be on disk.
            raise self._write_failed(exc) from None
        self._metrics.spooled_deliveries.labels(reason=reason).inc()
        self._wake.set()

    def _write_failed(self, exc: Exception) -> Unavailable:
        if not self._log.failed:
            logger.error(
                "spool write failed; this delivery was not spooled",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            return Unavailable(
                "the delivery could not be spooled; retry later", code="spool_write_failed"
            )
        if not self._failure_logged:
            self._failure_logged = True
            logger.error(
                "spool fsync or write failed: what is on disk is unknown, so relay takes no "
                "more deliveries (503 spool_failed, /readyz 503) and keeps sending what it "
                "holds to Kafka; restart it on a working volume",
                extra={"error": f"{type(exc).__name__}: {exc}", "directory": str(self._dir)},
            )
        return self._failed_error()

    @staticmethod
    def _failed_error() -> Unavailable:
        return Unavailable(
            "the spool failed (a disk error) and takes no deliveries until relay is restarted",
            code="spool_failed",
        )

    def _disk_is_full(self, needed: int, exc: Exception) -> None:
        if self._disk_full_at is None:
            logger.error(
                "the spool's disk is full: deliveries Kafka cannot take are answered 503 "
                "spool_disk_full until space returns",
                extra={"error": str(exc), "directory": str(self._dir)},
            )
            if self._disk_watch is None or self._disk_watch.done():
                self._disk_watch = asyncio.create_task(self._watch_disk(), name="spool-disk-watch")
        self._disk_full_at = needed

    def _disk_has_room(self) -> None:
        if self._disk_full_at is not None:
            self._disk_full_at = None
            logger.warning("the spool's disk has room again; spooling resumed")

    async def _watch_disk(self) -> None:
        """While the volume is full, look at its free space until there is room again, so
        the gauge clears even when no delivery needs the spool meanwhile."""
        while self._disk_full_at is not None:
            await asyncio.sleep(_DISK_CHECK_SECONDS)
            needed = self._disk_full_at
            if needed is None:
                return
            try:
                stat = await asyncio.to_thread(os.statvfs, self._dir)
            except OSError:
                continue
            if stat.f_bavail * stat.f_frsize >= needed + _DISK_HEADROOM:
                self._disk_has_room()

    async def _drain_forever(self) -> None:
        delay = _BACKOFF_MIN
        failing = False
        while not self._stop.is_set():
            if self._log.pending_entries == 0:
                self._wake.clear()
                if self._log.pending_entries == 0:
                    await self._wake.wait()
                continue
            try:
                sent = await self._drain_once()
            except DeliveryError as exc:
                if not failing:
                    logger.warning("spool cannot drain yet; retrying", extra={"error": exc.code})
            except Exception:
                # Anything else (a read or commit error, a bug) must not end the drainer:
                # the spool would then fill up behind it unnoticed. Log it and try again.
                logger.exception("spool drain failed; retrying")
            else:
                if failing:
                    logger.info("spool draining again", extra={"records": sent})
                failing = False
                delay = _BACKOFF_MIN
                continue
            failing = True
            await self._pause(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _drain_once(self) -> int:
        batch = await asyncio.to_thread(self._log.head, self._drain_records, self._drain_bytes)
        deliveries = [decode_delivery(payload).records for _, payload in batch]
        records = [r for delivery in deliveries for r in delivery]
        try:
            await self._kafka.publish(records, self._drain_timeout)
        except RecordsRefused:
            await self._set_aside_refused(batch, deliveries)
        await asyncio.to_thread(self._log.commit, len(batch))
        return len(records)

    async def _set_aside_refused(
        self, batch: Sequence[tuple[Entry, bytes]], deliveries: Sequence[Sequence[Record]]
    ) -> None:
        """Find the deliveries Kafka refuses for good and quarantine them; send the rest.

        First every delivery is sent on its own, concurrently (about one round trip for the
        batch). A broker refuses a whole record batch, so a good delivery that shared one
        with the poison is refused too: each refused one is therefore sent once more,
        alone, and only a delivery refused alone is quarantined. Records Kafka took in an
        earlier try are sent again: duplicates with the same ce_id, as after any retry. A
        failure for a passing reason leaves the batch to be retried whole, with nothing
        quarantined yet.
        """
        outcomes = await asyncio.gather(
            *(self._kafka.publish(d, self._drain_timeout) for d in deliveries),
            return_exceptions=True,
        )
        refused: list[tuple[bytes, RecordsRefused]] = []
        for (_, payload), records, outcome in zip(batch, deliveries, outcomes, strict=True):
            if isinstance(outcome, RecordsRefused):
                try:
                    await self._kafka.publish(records, self._drain_timeout)
                except RecordsRefused as alone:
                    refused.append((payload, alone))
            elif isinstance(outcome, BaseException):
                raise outcome
        for payload, error in refused:
            reason = error.reasons[0]
            path = await asyncio.to_thread(self._quarantine.put, payload, reason)
            self._metrics.spool_quarantined.labels(reason=reason).inc()
            logger.error(
                "Kafka refused a spooled delivery for good; it was moved to quarantine and "
                "the spool goes on",
                extra={"reason": reason, "detail": error.message, "file": str(path)},
            )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def build_spooling_sink(
    settings: Settings, kafka: EventSink, metrics: RelayMetrics, *, max_record_bytes: int
) -> SpoolingSink:
    spool = settings.spool
    log = SpoolLog(Path(spool.directory), spool.max_bytes, fsync=spool.fsync == "always")
    return SpoolingSink(
        kafka,
        log,
        metrics,
        max_record_bytes=max_record_bytes,
        drain_timeout=settings.intake.ack_deadline_seconds,
        # Inside the spool's directory (the segments are only its *.seg files), so it sits
        # on the same volume and needs no setting of its own.
        quarantine=Quarantine(Path(spool.directory) / "quarantine"),
        # Half of each in-flight limit at most, so that a drain batch fits beside intake's
        # own deliveries (it is sent again one delivery at a time when Kafka refuses a record).
        drain_records=max(1, min(_DRAIN_RECORDS, settings.intake.max_inflight_events // 2)),
        drain_bytes=max(1, min(_DRAIN_BYTES, settings.intake.max_inflight_bytes // 2)),
    )
