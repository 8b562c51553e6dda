"""Several worker processes (server.workers = 2) against the real broker.

What a supervisor must get right: every delivery lands whichever worker takes it, one
scrape counts them all (requests refused below the app, by the head guard, as well), a
crashed worker comes back without the counters going backwards, readiness covers every
worker, and no process outlives relay.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka import consume_all
from tests.support.metrics import by_label, metric_sum
from tests.support.relay import RelayProcess, order_delivery, topic_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka

WORKERS = 2


@pytest.fixture
def relay_settings() -> dict[str, str]:
    return {"RELAY_SERVER__WORKERS": str(WORKERS)}


def readiness(relay: RelayProcess) -> tuple[int, dict[str, Any]]:
    response = relay.readiness()
    body: dict[str, Any] = response.json()
    return response.status_code, body


def worker_pids(relay: RelayProcess) -> list[int]:
    return [w["pid"] for w in readiness(relay)[1]["workers"]]


def deliver(relay: RelayProcess, order_ids: list[str]) -> list[int]:
    """One delivery per id, each on its own connection, so they spread over the workers."""
    with ThreadPoolExecutor(8) as pool:
        return [r.status_code for r in pool.map(relay.post, map(order_delivery, order_ids))]


def alive(pid: int) -> bool:
    # A zombie is dead even if nobody has reaped it yet (PID 1 here may never do so).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def ok_deliveries(metrics: str) -> int:
    return int(metric_sum(metrics, "relay_deliveries_total", outcome="ok"))


def refused(metrics: str) -> dict[str, float]:
    return by_label(metrics, "relay_http_refused_total", "reason")


def test_every_worker_serves_and_one_scrape_counts_all(
    relay: RelayProcess, topic_prefix: str
) -> None:
    status, body = readiness(relay)
    assert status == 200
    assert [w["state"] for w in body["workers"]] == ["ready"] * WORKERS
    assert len(set(worker_pids(relay))) == WORKERS

    ids = [f"W-{n}" for n in range(40)]
    assert deliver(relay, ids) == [200] * len(ids)
    records = consume_all(relay.bootstrap, [topic_prefix + "order_create"], expected_count=40)
    assert sorted(r.key or b"" for r in records) == sorted(i.encode() for i in ids)

    metrics = relay.metrics()
    assert ok_deliveries(metrics) == len(ids)
    assert 'relay_events_total{event_type="order_create",outcome="published"} 40.0' in metrics
    assert f"relay_workers {float(WORKERS)}" in metrics
    assert "relay_kafka_ready 1.0" in metrics
    assert 'relay_build_info{version="' in metrics
    # Every process's own figures, told apart by worker; the workers' shares of a relay-wide
    # limit add up to it (the default intake.max_inflight_events).
    memory = by_label(metrics, "process_resident_memory_bytes", "worker")
    assert sorted(memory) == sorted(["supervisor", *map(str, range(WORKERS))])
    assert all(value > 0 for value in memory.values())
    assert metric_sum(metrics, "relay_max_inflight_events") == 100_000


def test_heads_refused_by_any_worker_are_counted_in_one_scrape(relay: RelayProcess) -> None:
    """A 431 is answered below the app, in whichever worker took the connection."""
    oversized = (
        b"POST /webhooks/ultracart HTTP/1.1\r\nHost: relay\r\n"
        + b"X-Big: "
        + b"a" * 40_000
        + b"\r\n\r\n"  # over the default 32 KiB
    )
    connections = 6  # each its own, so the kernel spreads them over the workers' sockets
    for _ in range(connections):
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(oversized)
            answer = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    answer += chunk
        # The 431 may be lost to a reset; relay closing is what the count waits for.
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert refused(relay.metrics()) == {"headers_too_large": connections, "header_timeout": 0}


def test_a_killed_worker_is_replaced_and_counters_keep_counting(relay: RelayProcess) -> None:
    assert deliver(relay, [f"K-{n}" for n in range(10)]) == [200] * 10
    victim = worker_pids(relay)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        status, body = readiness(relay)
        pids = [w["pid"] for w in body["workers"]]
        return status == 200 and victim not in pids and None not in pids

    wait_until(replaced, timeout=30, interval=0.1, message="the killed worker was not replaced")
    assert deliver(relay, [f"L-{n}" for n in range(10)]) == [200] * 10
    metrics = relay.metrics()
    # The dead worker's deliveries still count: the total never goes backwards.
    assert ok_deliveries(metrics) == 20
    assert "relay_worker_restarts_total 1.0" in metrics


def test_sigterm_drains_every_worker_and_leaves_no_process(relay: RelayProcess) -> None:
    pids = worker_pids(relay)
    assert deliver(relay, ["T-1", "T-2"]) == [200, 200]
    assert relay.stop(signal.SIGTERM) == 0
    assert not any(alive(pid) for pid in pids)


def test_workers_drain_by_themselves_when_the_supervisor_dies(
    kafka_bootstrap: str, topic_prefix: str, relay_settings: dict[str, str], tmp_path: Path
) -> None:
    env = {**topic_env(topic_prefix), **relay_settings}
    process = RelayProcess(kafka_bootstrap, env, log_path=tmp_path / "relay.log")
    process.start()
    pids = worker_pids(process)
    process.stop(signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout=30, interval=0.1)
