"""The asyncio side of the producer: publish a delivery's records, await every acknowledgement.

One confluent-kafka ``Producer`` per app. librdkafka calls the delivery callback once per
record on whichever thread polls it (``relay.kafka.delivery_reports``: a poll thread by
default, the event loop if configured); a per-delivery ``_Batch`` counts them up and
completes the delivery's future once, when the last one is in: directly when the callback
runs on the loop, handed over to the loop from any other thread (futures must only be
touched from their own loop), by the poll thread once for all the deliveries one ``poll``
completed. The callback runs for every record, so it is kept to a
few attribute updates.

Admission is decided before any record is handed over: a delivery that would take the
number of unacknowledged events above ``max_inflight_events``, or that holds a record
larger than the producer accepts, is refused whole, so nothing is half-published.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from relay.deadlines import Deadlines
from relay.events.byte_limit import over_byte_limit
from relay.events.errors import RecordsRefused, Unavailable
from relay.events.records import Record, checked_record_bytes
from relay.kafka.client_config import max_message_bytes
from relay.kafka.delivery_reports import LoopPoller, ThreadPoller
from relay.kafka.errors import KafkaRefused, is_permanent, reason, translate
from relay.kafka.quiet_log import RepeatSuppressingLog
from relay.metrics import RelayMetrics

logger = logging.getLogger(__name__)

# Headroom for the key, headers and record framing on top of the value.
_RECORD_OVERHEAD = 1024

# produce() is called positionally, once per record: confluent-kafka's C signature is
# (topic, value, key, partition, callback, on_delivery, timestamp, headers), and keyword
# parsing cost 0.45 µs of a 2.3 µs call with relay's nine headers. The acknowledgement
# goes in ``callback``: an explicit None there would make librdkafka's binding ignore
# ``on_delivery``. These two fill the places before the headers with their defaults.
ANY_PARTITION = -1  # RD_KAFKA_PARTITION_UA: the partitioner picks, by key
TIMESTAMP_NOW = 0  # the producer stamps the record


class _Batch:
    """Counts one delivery's acknowledgements where the producer is polled; completes on the loop.

    Polled on the loop, everything happens on the loop's thread. Polled from a poll thread
    (the default, or by ``flush`` at shutdown), no lock is needed either: only the polling
    thread writes ``acked``, and ``expected`` changes (on the event loop) only when
    producing stopped short. Each side writes first and compares after, so
    whichever runs last sees both values and completes the batch; completing twice is
    harmless.
    """

    __slots__ = (
        "_completed",
        "_hand_over",
        "_loop_thread",
        "_on_complete",
        "acked",
        "errors",
        "expected",
        "waiter",
    )

    def __init__(
        self,
        size: int,
        loop: asyncio.AbstractEventLoop,
        on_complete: Callable[[int], None],
        loop_thread: int | None = None,
        hand_over: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.expected = size
        self.acked = 0
        self.errors: list[KafkaError] = []
        # How a completion reached on another thread gets to the loop: the poll thread's
        # batched hand-over, else one call_soon_threadsafe of its own.
        self._hand_over = hand_over if hand_over is not None else loop.call_soon_threadsafe
        # The loop's thread (publish() runs there); the publisher looks it up once.
        self._loop_thread = loop_thread if loop_thread is not None else threading.get_ident()
        self._on_complete = on_complete
        self._completed = False
        # What publish() awaits; cancelling that wait leaves the accounting to _complete.
        self.waiter: asyncio.Future[None] = loop.create_future()

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.errors.append(error)
        self.acked += 1
        if self.acked == self.expected:
            if threading.get_ident() == self._loop_thread:
                self._complete()
            else:
                self._hand_over(self._complete)

    def abandon(self, sent: int) -> None:
        """Producing stopped after ``sent`` records; the others will never be called back."""
        self.expected = sent
        if self.acked == sent:
            self._complete()

    def _complete(self) -> None:
        if self._completed:
            return
        self._completed = True
        self._on_complete(self.expected)
        if not self.waiter.done():
            self.waiter.set_result(None)


class KafkaPublisher:
    def __init__(
        self,
        config: dict[str, Any],
        max_inflight_events: int,
        metrics: RelayMetrics,
        delivery_reports: str = "thread",
        *,
        max_inflight_bytes: int | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        """``max_inflight_bytes``: None for no byte limit. ``deadlines``: the app's
        (relay.serving.app shares one per app); a tool that publishes outside an app gets
        its own."""
        self._config = dict(config)
        self._config["stats_cb"] = self._on_stats
        self._config["error_cb"] = self._on_error
        # librdkafka's own log lines go through Python logging (JSON), not raw to stderr.
        # A broker that refuses the credentials makes librdkafka log the same failure on
        # every reconnect (several a second); once a minute is enough to read it.
        self._config["logger"] = RepeatSuppressingLog(logging.getLogger("relay.librdkafka"))
        # Client errors already reported while Kafka has been unreachable (logged once).
        self._reported: set[int] = set()
        self._max_record_bytes = max_message_bytes(config) - _RECORD_OVERHEAD
        self._max_inflight = max_inflight_events
        self._max_inflight_bytes = max_inflight_bytes
        self._metrics = metrics
        self._inflight_events = 0
        self._inflight_bytes = 0
        self._inflight_gauge = metrics.turn_gauge(metrics.inflight_events)
        self._inflight_bytes_gauge = metrics.turn_gauge(metrics.inflight_bytes)
        self._producer: Producer | None = None
        self._poll_on_loop = delivery_reports == "loop"
        self._poller: LoopPoller | ThreadPoller | None = None
        self._ready = False
        self._loop_thread = 0
        self._hand_over: Callable[[Callable[[], None]], None] | None = None
        self._deadlines = deadlines if deadlines is not None else Deadlines()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def inflight_events(self) -> int:
        return self._inflight_events

    @property
    def max_record_bytes(self) -> int:
        """The largest record value ``publish`` accepts (the spool checks it up front)."""
        return self._max_record_bytes

    async def start(self, connect_timeout: float = 10.0) -> None:
        try:
            self._producer = Producer(self._config)
        except KafkaException as exc:
            raise KafkaRefused(f"librdkafka refused the configuration: {translate(exc)}") from None
        if self._poll_on_loop:
            self._poller = LoopPoller(self._producer, self._busy)
        else:
            self._poller = ThreadPoller(self._producer)
        self._poller.start(asyncio.get_running_loop())
        self._loop_thread = threading.get_ident()
        if isinstance(self._poller, ThreadPoller):
            self._hand_over = self._poller.hand_over
        # Learn once whether the cluster answers, so /readyz is right from the start;
        # afterwards the librdkafka statistics keep it current.
        producer = self._producer
        try:
            await asyncio.to_thread(producer.list_topics, timeout=connect_timeout)
            self._set_ready(True)
        except KafkaException as exc:
            logger.warning("kafka not reachable at start-up", extra={"error": translate(exc).text})
            self._set_ready(False)

    async def stop(self, flush_timeout: float) -> int:
        """Flush what is queued within ``flush_timeout``; return how many records remain."""
        if self._producer is None:
            return 0
        producer = self._producer
        # flush() polls on its own thread; _Batch hands completions back to the loop.
        remaining: int = await asyncio.to_thread(producer.flush, flush_timeout)
        if self._poller is not None:
            # On the loop: a LoopPoller's handles belong to it; a ThreadPoller joins its
            # thread off the loop.
            await self._poller.stop()
        if remaining:
            logger.error(
                "producer closed with unacknowledged records", extra={"records": remaining}
            )
        self._producer = None
        return remaining

    def _busy(self) -> bool:
        return self._inflight_events > 0

    async def publish(self, records: Sequence[Record], timeout: float) -> None:
        if not records:
            return
        producer = self._producer
        if producer is None or not self._ready:
            raise Unavailable("Kafka is not reachable; retry later", code="kafka_unavailable")
        size = checked_record_bytes(records, self._max_record_bytes)
        count = len(records)
        if self._inflight_events + count > self._max_inflight or over_byte_limit(
            self._inflight_bytes, size, self._max_inflight_bytes
        ):
            raise Unavailable("relay is at its in-flight limit; retry later", code="overloaded")

        loop = asyncio.get_running_loop()
        # The in-flight counts are released when the last acknowledgement arrives, not when
        # the caller stops waiting: until then the records still occupy the producer. The
        # bytes all go together then, those of records never produced included.
        batch = _Batch(
            count, loop, partial(self._release, size=size), self._loop_thread, self._hand_over
        )
        self._inflight_events += count
        self._inflight_bytes += size
        self._inflight_gauge.set(self._inflight_events)
        self._inflight_bytes_gauge.set(self._inflight_bytes)
        started = time.perf_counter()
        sent = 0
        # Looked up once: a delivery may hold thousands of records.
        produce = producer.produce
        on_delivery = batch.on_delivery
        if self._poller is not None:
            self._poller.kick()
        try:
            for record in records:
                produce(
                    record.topic,
                    record.value,
                    record.key,
                    ANY_PARTITION,
                    on_delivery,
                    None,
                    TIMESTAMP_NOW,
                    record.headers,
                )
                sent += 1
        except BufferError:
            self._release(count - sent)
            batch.abandon(sent)
            raise Unavailable(
                "the producer queue is full; retry later", code="overloaded"
            ) from None
        except KafkaException as exc:
            self._release(count - sent)
            batch.abandon(sent)
            self._count_error(translate(exc).name)
            raise Unavailable(
                "Kafka refused the records; retry later", code="produce_failed"
            ) from None

        try:
            with self._deadlines.guard(timeout):
                await batch.waiter
        except TimeoutError:
            raise Unavailable(
                f"Kafka did not acknowledge every event within {timeout:g} s; retry later",
                code="ack_timeout",
            ) from None
        self._metrics.produce_duration.observe(time.perf_counter() - started)
        if batch.errors:
            for error in batch.errors:
                self._count_error(translate(error).name)
            refused = sorted({reason(e) for e in batch.errors if is_permanent(e)})
            if refused:
                raise RecordsRefused(
                    f"Kafka refused {len(batch.errors)} of {count} events for good "
                    f"({', '.join(refused)})",
                    reasons=tuple(refused),
                )
            raise Unavailable(
                f"Kafka failed {len(batch.errors)} of {count} events "
                f"({batch.errors[0].name()}); retry later",
                code="produce_failed",
            )

    def _release(self, count: int, size: int = 0) -> None:
        self._inflight_events -= count
        self._inflight_gauge.set(self._inflight_events)
        if size:
            self._inflight_bytes -= size
            self._inflight_bytes_gauge.set(self._inflight_bytes)

    def _count_error(self, name: str) -> None:
        self._metrics.produce_errors.labels(error=name or "unknown").inc()

    def _set_ready(self, ready: bool) -> None:
        if ready != self._ready:
            logger.info("kafka readiness changed", extra={"ready": ready})
            if ready:
                self._reported.clear()
        self._ready = ready
        self._metrics.kafka_ready.set(1 if ready else 0)

    # librdkafka callbacks, on whichever thread polls (the poll thread by default, the
    # loop's or flush()'s otherwise). Plain attribute writes and prometheus updates are
    # safe on any of them; nothing here touches the event loop.

    def _on_stats(self, raw: str) -> None:
        stats = orjson.loads(raw)
        self._metrics.producer_queue_messages.set(stats.get("msg_cnt", 0))
        self._metrics.producer_queue_bytes.set(stats.get("msg_size", 0))
        brokers = stats.get("brokers", {}).values()
        # Bootstrap entries have nodeid -1; only a learned broker that is UP counts.
        self._set_ready(any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers))

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_ready(False)
        if error.code() == KafkaError._TRANSPORT or error.code() in self._reported:
            # Connection failures are already in librdkafka's log; any other error is
            # reported once until Kafka is reachable again, not on every reconnect.
            return
        self._reported.add(error.code())
        said = translate(error)
        if error.code() == KafkaError._AUTHENTICATION:
            logger.error(
                "Kafka refused relay's credentials; check kafka.librdkafka sasl.mechanism, "
                "sasl.username and sasl.password (deliveries get 503 until it accepts them)",
                extra={"error": said.name, "detail": said.text},
            )
            return
        logger.warning("kafka client error", extra={"error": said.name, "detail": said.text})
