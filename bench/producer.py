"""The producer ceiling, run as its own process: ``python -m bench.producer``.

confluent-kafka producing the records relay would produce for the same deliveries (built by
relay's own parser and RecordBuilder from the same bodies, with relay's producer
configuration from the same settings), straight to the broker: no HTTP, no parsing on the
clock. Like relay it has one poll thread serving delivery callbacks and counts each
delivery's acknowledgements down, so its latency is the producer's own acknowledgement
latency for a delivery's worth of records.

Open loop, as the HTTP load generator: delivery *i* is produced at ``t0 + i / rate`` and its
latency runs from that intended time to the last record's acknowledgement.

Protocol: the first stdin line is JSON ``{"bodies_file": ..., "env": {...}}``; each further
line a step ``{"rate", "warmup", "duration", "drain"}``; one JSON result line per step.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from bench.stats import latency_summary
from relay.events.records import Record, RecordBuilder, now_utc
from relay.events.routing import KeyPicker, TopicRouter
from relay.intake.parsing import parse_delivery
from relay.kafka.client_config import producer_config
from relay.kafka.publisher import ANY_PARTITION, TIMESTAMP_NOW
from relay.settings import Settings

# Sleep granularity of the pacer (as in bench.loadgen).
_TICK = 0.001


def build_deliveries(settings: Settings, bodies: list[bytes]) -> list[list[Record]]:
    builder = RecordBuilder(
        TopicRouter(settings.topics), KeyPicker(settings.keys), settings.cloudevents
    )
    deliveries = []
    for body in bodies:
        parsed = parse_delivery(
            body,
            max_events=settings.intake.max_events_per_delivery,
            max_inflated_bytes=settings.intake.max_decompressed_bytes,
        )
        deliveries.append(builder.build(parsed.events, uuid.uuid4().hex, now_utc()))
    return deliveries


class _Window:
    """What one step records: latencies of deliveries due inside its measuring window."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.latencies = array("d")
        self.failed = 0
        self.lock = threading.Lock()

    def covers(self, intended: float) -> bool:
        return self.start <= intended < self.end


class ProducerBench:
    def __init__(self, settings: Settings, bodies: list[bytes]) -> None:
        config = producer_config(settings.kafka, settings.intake)
        # relay's publisher sets these callbacks too; librdkafka then does the same work.
        config["stats_cb"] = lambda _raw: None
        config["error_cb"] = lambda _error: None
        self.producer = Producer(config)
        self.deliveries = build_deliveries(settings, bodies)
        self.outstanding = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self) -> None:
        self.producer.flush(30)
        self._stop.set()
        self._poller.join(5)

    def _callback(self, window: _Window, intended: float, count: int) -> Callable[..., None]:
        remaining = [count]
        errors = [0]

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            with self._lock:
                remaining[0] -= 1
                if error is not None:
                    errors[0] += 1
                done = remaining[0] == 0
                if done:
                    self.outstanding -= 1
            if done and window.covers(intended):
                latency = time.perf_counter() - intended
                with window.lock:
                    if errors[0]:
                        window.failed += 1
                    else:
                        window.latencies.append(latency)

        return on_delivery

    def _produce(self, records: list[Record], callback: Callable[..., None]) -> None:
        for record in records:
            while True:
                try:
                    # Positionally, as relay's publisher calls it.
                    self.producer.produce(
                        record.topic,
                        record.value,
                        record.key,
                        ANY_PARTITION,
                        callback,
                        None,
                        TIMESTAMP_NOW,
                        record.headers,
                    )
                    break
                except BufferError:
                    # Only when the local queue is full; wait for acknowledgements.
                    time.sleep(_TICK)

    def run_step(self, rate: float, warmup: float, duration: float, drain: float) -> dict[str, Any]:
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        total = int(rate * (warmup + duration))
        t0 = time.perf_counter() + _TICK
        window = _Window(t0 + warmup, t0 + warmup + duration)
        sent = 0
        index = 0
        requests = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                intended = t0 + sent / rate
                requests += window.covers(intended)
                records = self.deliveries[index]
                index = (index + 1) % len(self.deliveries)
                with self._lock:
                    self.outstanding += 1
                self._produce(records, self._callback(window, intended, len(records)))
                sent += 1
            if sent < total:
                time.sleep(max(_TICK, t0 + sent / rate - time.perf_counter()))
        deadline = time.perf_counter() + drain
        while self.outstanding and time.perf_counter() < deadline:
            time.sleep(0.01)
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
            usage_after.ru_stime - usage_before.ru_stime
        )
        with window.lock:
            latencies = list(window.latencies)
            failed = window.failed
        unanswered = requests - len(latencies) - failed
        return {
            "offered_rate": rate,
            "window_seconds": duration,
            "requests": requests,
            "answered": len(latencies),
            "status": {"200": len(latencies)} if latencies else {},
            "errors": {k: v for k, v in {"failed": failed, "timeout": unanswered}.items() if v},
            "latency": latency_summary(latencies),
            # Raw samples, so the caller can merge several producer processes exactly.
            "latencies_ms": [round(v * 1000, 4) for v in latencies],
            "cpu_seconds": cpu,
            "outstanding": self.outstanding,
        }


def main() -> int:
    setup = orjson.loads(sys.stdin.buffer.readline())
    settings = Settings.load(env=setup["env"])
    bodies = [b for b in Path(setup["bodies_file"]).read_bytes().splitlines() if b]
    bench = ProducerBench(settings, bodies)
    # Metadata for every topic before the clock starts, as relay has after its first requests.
    bench.producer.list_topics(timeout=10)
    _reply({"ready": True, "deliveries": len(bench.deliveries)})
    try:
        for line in sys.stdin.buffer:
            if line.strip():
                s = orjson.loads(line)
                _reply(bench.run_step(s["rate"], s["warmup"], s["duration"], s["drain"]))
    finally:
        bench.close()
    return 0


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    sys.exit(main())
