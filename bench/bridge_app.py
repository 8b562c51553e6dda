"""The bridge floor: the least any HTTP-to-Kafka bridge on relay's stack has to do.

A Starlette handler that reads the body, produces the records relay would build for it and
answers 200 once Kafka has acknowledged every one (by default on relay's default ack path,
a poll thread and one loop wake-up per delivery; ``BENCH_ACK_PATH`` picks another): the
same contract as relay, and nothing else. No authentication, no parsing or validation (the
records are built before the run by relay's own parser and ``RecordBuilder`` and looked up
by body), no metrics, no admission control, no deadlines. Served by
``relay.serving.run.serve`` with relay's producer settings, so the HTTP stack and the Kafka
client are exactly relay's.

Between the bare app and this floor lies what the Kafka round trip costs on this stack;
between this floor and relay lies what relay's own work costs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer
from starlette.requests import Request
from starlette.responses import Response

from bench.bare_app import reference_app
from bench.producer import build_deliveries
from relay.events.records import Record
from relay.kafka.client_config import producer_config
from relay.kafka.delivery_reports import LoopPoller
from relay.kafka.publisher import ANY_PARTITION, TIMESTAMP_NOW
from relay.serving.app import Intake
from relay.settings import Settings

BODIES_FILE_ENV = "BENCH_BODIES_FILE"
_OK = b'{"status":"ok"}'


# Which acknowledgement path the floor uses (bench.ack_paths compares them): "thread" (the
# default, relay's default: a poll thread and one call_soon_threadsafe per delivery),
# "loop" (relay's "loop": the event loop polls while records are in flight), "spin" (poll
# on every loop iteration while anything is in flight, never a timer),
# "thread-batched" (a poll thread that wakes the loop once for every delivery completed
# since its last wake-up).
ACK_PATH_ENV = "BENCH_ACK_PATH"
ACK_PATHS = ("loop", "spin", "thread", "thread-batched")


class _MinimalBridge:
    """One producer, one future per delivery, the chosen ack path: nothing more."""

    def __init__(self, settings: Settings, ack_path: str) -> None:
        self._config = producer_config(settings.kafka, settings.intake)
        self._ack_path = ack_path
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._loop_poller: LoopPoller | None = None
        self._pending = 0
        self._spinning = False
        # thread-batched: futures completed on the poll thread, handed over in one wake-up.
        self._done: list[asyncio.Future[bool]] = []
        self._done_results: list[bool] = []
        self._wake_pending = False
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._producer = Producer(self._config)
        if self._ack_path in ("thread", "thread-batched"):
            self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
            self._poller.start()
        elif self._ack_path == "loop":
            self._loop_poller = LoopPoller(self._producer, lambda: self._pending > 0)
            self._loop_poller.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        if self._loop_poller is not None:
            await self._loop_poller.stop()
        if self._producer is not None:
            self._producer.flush(10)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)

    def _poll(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stop.is_set():
            producer.poll(0.05)

    def _spin(self) -> None:
        producer = self._producer
        assert producer is not None
        producer.poll(0)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._spin)
        else:
            self._spinning = False

    def _drain_done(self) -> None:
        with self._lock:
            done, results = self._done, self._done_results
            self._done, self._done_results = [], []
            self._wake_pending = False
        for future, result in zip(done, results, strict=True):
            future.set_result(result)

    async def publish(self, records: list[Record]) -> bool:
        """True once Kafka acknowledged every record, False if it failed any."""
        producer = self._producer
        assert producer is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        remaining = [len(records)]
        failed = [False]
        ack_path = self._ack_path

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failed[0] = True
            remaining[0] -= 1
            if remaining[0]:
                return
            if ack_path == "thread":
                loop.call_soon_threadsafe(done.set_result, not failed[0])
            elif ack_path == "thread-batched":
                with self._lock:
                    self._done.append(done)
                    self._done_results.append(not failed[0])
                    wake = not self._wake_pending
                    self._wake_pending = True
                if wake:
                    loop.call_soon_threadsafe(self._drain_done)
            else:
                self._pending -= len(records)
                done.set_result(not failed[0])

        if ack_path in ("loop", "spin"):
            self._pending += len(records)
        if self._loop_poller is not None:
            self._loop_poller.kick()
        elif ack_path == "spin" and not self._spinning:
            self._spinning = True
            loop.call_soon(self._spin)
        for record in records:
            # Called as relay calls it (positionally, see relay.kafka.publisher), so that
            # the floor never pays a cost relay does not.
            producer.produce(
                record.topic,
                record.value,
                record.key,
                ANY_PARTITION,
                on_delivery,
                None,
                TIMESTAMP_NOW,
                record.headers,
            )
        return await done


def create_bridge_app(settings: Settings) -> Intake:
    bodies = Path(os.environ[BODIES_FILE_ENV]).read_bytes().splitlines()
    bodies = [body for body in bodies if body]
    by_body = dict(zip(bodies, build_deliveries(settings, bodies), strict=True))
    ack_path = os.environ.get(ACK_PATH_ENV, "thread")
    if ack_path not in ACK_PATHS:
        raise ValueError(f"{ACK_PATH_ENV} must be one of {', '.join(ACK_PATHS)}")
    bridge = _MinimalBridge(settings, ack_path)

    async def handle(request: Request) -> Response:
        records = by_body.get(await request.body())
        if records is None:
            return Response(b'{"error":"unknown body"}', status_code=400)
        if not await bridge.publish(records):
            return Response(b'{"error":"kafka failed"}', status_code=503)
        return Response(_OK, media_type="application/json")

    return reference_app(settings, handle, on_start=bridge.start, on_stop=bridge.stop)
