"""The bridge floor: the least any HTTP-to-Kafka bridge on relay's stack has to do.

A Starlette handler that reads the body, produces the records relay would build for it and
answers 200 once Kafka has acknowledged every one: the same contract as relay, and nothing
else. No authentication, no parsing or validation (the records are built before the run by
relay's own parser and ``RecordBuilder`` and looked up by body), no metrics, no admission
control, no deadlines. Served by ``relay.serving.run.serve`` with relay's producer settings, so
the HTTP stack and the Kafka client are exactly relay's.

Between the bare app and this floor lies what the Kafka round trip costs on this stack;
between this floor and relay lies what relay's own work costs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from bench.bare_app import reference_app
from bench.producer import build_deliveries
from relay.events.records import Record
from relay.kafka.client_config import producer_config
from relay.settings import Settings

BODIES_FILE_ENV = "BENCH_BODIES_FILE"
_OK = b'{"status":"ok"}'


class _MinimalBridge:
    """One producer, one poll thread, one future per delivery: nothing more."""

    def __init__(self, settings: Settings) -> None:
        self._config = producer_config(settings.kafka, settings.intake)
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        self._producer = Producer(self._config)
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
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

    async def publish(self, records: list[Record]) -> bool:
        """True once Kafka acknowledged every record, False if it failed any."""
        producer = self._producer
        assert producer is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        remaining = [len(records)]
        failed = [False]

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failed[0] = True
            remaining[0] -= 1
            if remaining[0] == 0:
                loop.call_soon_threadsafe(done.set_result, not failed[0])

        for record in records:
            producer.produce(
                record.topic, record.value, record.key, headers=record.headers,
                on_delivery=on_delivery,
            )  # fmt: skip
        return await done


def create_bridge_app(settings: Settings) -> Starlette:
    bodies = Path(os.environ[BODIES_FILE_ENV]).read_bytes().splitlines()
    bodies = [body for body in bodies if body]
    by_body = dict(zip(bodies, build_deliveries(settings, bodies), strict=True))
    bridge = _MinimalBridge(settings)

    async def handle(request: Request) -> Response:
        records = by_body.get(await request.body())
        if records is None:
            return Response(b'{"error":"unknown body"}', status_code=400)
        if not await bridge.publish(records):
            return Response(b'{"error":"kafka failed"}', status_code=503)
        return Response(_OK, media_type="application/json")

    return reference_app(settings, handle, on_start=bridge.start, on_stop=bridge.stop)
