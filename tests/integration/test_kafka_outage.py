"""A broker that goes away: relay answers 503 (never 200) and recovers when it returns."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.broker import LocalBroker
from tests.support.kafka import consume_all
from tests.support.metrics import metric_sum
from tests.support.relay import order_delivery, running_relay, topic_env
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def delivery(n: int) -> bytes:
    return order_delivery(f"OUT-{n}")


def test_stopped_broker_gives_503_and_no_200_then_recovery(
    private_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    env = {**topic_env(topic_prefix), "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "3"}
    acknowledged: list[int] = []
    with running_relay(private_broker.bootstrap, env, tmp_path / "relay.log") as relay:
        assert relay.post(delivery(0)).status_code == 200
        acknowledged.append(0)

        private_broker.stop()
        statuses = []
        for n in range(1, 6):
            started = time.monotonic()
            response = relay.post(delivery(n))
            statuses.append(response.status_code)
            assert time.monotonic() - started < 5, "the answer must come within the deadline"
            assert response.headers.get("retry-after") == "5"
            assert response.json()["error"] in {"kafka_unavailable", "ack_timeout"}
        assert statuses == [503] * 5
        assert relay.readiness().status_code == 503

        private_broker.start()
        relay.wait_ready(timeout=60)
        for n in range(6, 9):
            assert relay.post(delivery(n)).status_code == 200
            acknowledged.append(n)

    records = consume_all(private_broker.bootstrap, [topic_prefix + "order_create"], timeout=30)
    found = {r.key for r in records}
    # Every acknowledged delivery is in Kafka; 503s may or may not be (UltraCart re-sends them).
    assert {f"OUT-{n}".encode() for n in acknowledged} <= found


def test_sigterm_drains_in_flight_deliveries_before_exit(
    private_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """Deliveries waiting on Kafka when SIGTERM arrives still get their 200, then relay exits."""
    env = {**topic_env(topic_prefix), "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "15"}
    # Leaving the block waits for relay's exit after the SIGTERM below and checks it was 0.
    with running_relay(private_broker.bootstrap, env, tmp_path / "relay.log") as relay:
        assert relay.post(delivery(0)).status_code == 200  # topic exists, producer warm
        private_broker.signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                pending = [pool.submit(relay.post, delivery(n)) for n in range(1, 9)]
                wait_until(
                    lambda: metric_sum(relay.metrics(), "relay_inflight_deliveries") == 8,
                    message="the eight deliveries are not all waiting for acknowledgements",
                )
                assert not any(f.done() for f in pending)
                assert relay.process is not None
                relay.process.send_signal(signal.SIGTERM)
                # Draining: readiness turns 503 while the eight still wait for Kafka.
                wait_until(
                    lambda: relay.readiness().status_code == 503,
                    message="relay did not turn unready on SIGTERM",
                )
                private_broker.signal(signal.SIGCONT)
                statuses = [f.result().status_code for f in pending]
        finally:
            private_broker.signal(signal.SIGCONT)
    assert statuses == [200] * 8
    records = consume_all(
        private_broker.bootstrap, [topic_prefix + "order_create"], expected_count=9
    )
    assert {r.key for r in records} == {f"OUT-{n}".encode() for n in range(9)}


def test_the_byte_limit_refuses_deliveries_while_kafka_holds_others(
    private_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """intake.max_inflight_bytes: 503 overloaded while unacknowledged bytes would pass it;
    a delivery that finds nothing in flight goes through whatever its size."""
    env = {
        **topic_env(topic_prefix),
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "15",
        # Smaller than any event: every delivery is over it, so only a lone one is admitted.
        "RELAY_INTAKE__MAX_INFLIGHT_BYTES": "16",
    }
    with running_relay(private_broker.bootstrap, env, tmp_path / "relay.log") as relay:
        assert relay.post(order_delivery("BIG-0", "BIG-1", "BIG-2")).status_code == 200
        private_broker.signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                waiting = pool.submit(relay.post, delivery(1))
                wait_until(
                    lambda: metric_sum(relay.metrics(), "relay_inflight_bytes") > 0,
                    message="the first delivery is not waiting for its acknowledgement",
                )
                refused = relay.post(delivery(2))
                assert refused.status_code == 503
                assert refused.json()["error"] == "overloaded"
                assert refused.headers.get("retry-after") == "5"
                private_broker.signal(signal.SIGCONT)
                assert waiting.result().status_code == 200
        finally:
            private_broker.signal(signal.SIGCONT)
        wait_until(
            lambda: metric_sum(relay.metrics(), "relay_inflight_bytes") == 0,
            message="the acknowledged bytes were not released",
        )
        assert relay.post(delivery(3)).status_code == 200
    records = consume_all(
        private_broker.bootstrap, [topic_prefix + "order_create"], expected_count=5
    )
    # The refused delivery never reached Kafka; UltraCart re-sends it after Retry-After.
    assert {r.key for r in records} == {
        b"BIG-0",
        b"BIG-1",
        b"BIG-2",
        b"OUT-1",
        b"OUT-3",
    }
