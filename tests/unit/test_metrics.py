"""What the metrics issue asked for, at unit level: limits as gauges, counted credential
reloads, series that exist before their first event, and process figures per process."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.testclient import TestClient

from relay.intake.basic_auth import BasicCredentials
from relay.metrics import RelayMetrics
from relay.serving.app import create_app, export_limits
from relay.serving.process_metrics import SUPERVISOR, WorkerProcessCollector
from relay.serving.supervisor import worker_settings
from relay.settings import Settings
from tests.support.fake_sink import FakeSink
from tests.support.metrics import by_label, metric_sum
from tests.support.settings import settings_with
from tests.support.waiting import wait_until

SECOND = "Basic " + base64.b64encode(b"second:pw2").decode()


def scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_limits_are_exported_from_the_settings() -> None:
    settings = settings_with(
        server={"max_concurrent_connections": 50},
        intake={
            "max_inflight_events": 500,
            "max_events_per_delivery": 100,
            "max_body_bytes": 4096,
            "max_inflight_bytes": 1 << 20,
        },
    )
    with TestClient(create_app(settings, sink=FakeSink())) as client:
        text = client.get("/metrics").text
    assert metric_sum(text, "relay_max_inflight_events") == 500
    assert metric_sum(text, "relay_max_inflight_bytes") == 1 << 20
    assert metric_sum(text, "relay_max_concurrent_connections") == 50
    assert metric_sum(text, "relay_max_body_bytes") == 4096
    # Spool off: 0, which a fill ratio reads as 0/0 (no alert) rather than a full spool.
    assert "relay_spool_max_bytes 0.0" in text


def test_spool_limit_and_worker_shares() -> None:
    spool = Settings.from_mapping(
        {
            "auth": {"allow_unauthenticated": True},
            "spool": {"enabled": True, "directory": "/tmp/spool", "max_bytes": 64 * 1024 * 1024},
        }
    )
    metrics = RelayMetrics()
    export_limits(metrics.limits, spool)
    assert metric_sum(scrape(metrics.registry), "relay_spool_max_bytes") == 64 * 1024 * 1024

    # Each of 4 workers exports its share; the supervisor's scrape adds them up (livesum).
    fleet = Settings.from_mapping(
        {
            "auth": {"allow_unauthenticated": True},
            "server": {"workers": 4, "admin_port": 9090},
            "intake": {"max_inflight_events": 1000, "max_events_per_delivery": 100},
        }
    )
    shares = []
    for _ in range(4):
        metrics = RelayMetrics()
        export_limits(metrics.limits, worker_settings(fleet))
        shares.append(metric_sum(scrape(metrics.registry), "relay_max_inflight_events"))
    assert shares == [250] * 4


def test_ok_deliveries_exist_before_the_first_delivery() -> None:
    """The silence alerts compare an unchanging ok count; a missing series would hide it."""
    text = scrape(RelayMetrics().registry)
    assert 'relay_deliveries_total{outcome="ok"} 0.0' in text
    assert 'relay_delivery_duration_seconds_count{outcome="ok"} 0.0' in text
    assert 'relay_delivery_duration_seconds_bucket{le="30.0",outcome="ok"} 0.0' in text
    assert "relay_delivery_seconds" not in text and "relay_produce_seconds" not in text
    assert "relay_produce_duration_seconds_count 0.0" in text


def test_credential_reloads_are_counted(tmp_path: Path) -> None:
    metrics = RelayMetrics()
    path = tmp_path / "basic"
    path.write_text("first:pw1\n")
    now = [0.0]
    creds = BasicCredentials(
        [],
        str(path),
        reload_interval=1.0,
        clock=lambda: now[0],
        reloads=metrics.credentials_reloads,
    )

    def reloads() -> dict[str, float]:
        return by_label(scrape(metrics.registry), "relay_credentials_reloads_total", "outcome")

    assert reloads() == {"ok": 0, "failed": 0}  # the load at start-up is not a reload
    path.write_text("first:pw1\nsecond:pw2\n")
    os.utime(path, ns=(1, 1))
    now[0] += 2
    creds.check(SECOND)
    assert reloads() == {"ok": 1, "failed": 0}
    path.write_text("not a pair\n")
    os.utime(path, ns=(2, 2))
    for _ in range(2):
        now[0] += 2
        creds.check(SECOND)  # the previous set still works
    # Tried at each check while it stays broken: a failure that lasts keeps counting.
    assert reloads() == {"ok": 1, "failed": 2}


def test_a_single_process_serves_its_process_and_platform_figures() -> None:
    text = scrape(RelayMetrics().registry)
    assert metric_sum(text, "process_resident_memory_bytes") > 0
    assert "python_info{" in text
    assert "worker=" not in text


def test_worker_process_collector_labels_each_live_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pids = {SUPERVISOR: os.getpid(), "0": child.pid}
    registry = CollectorRegistry()
    registry.register(WorkerProcessCollector(lambda: pids))
    try:

        def both_read() -> bool:
            memory = by_label(scrape(registry), "process_resident_memory_bytes", "worker")
            return sorted(memory) == ["0", SUPERVISOR] and all(v > 0 for v in memory.values())

        # A child that has only just been forked may read 0 until it has exec'd python.
        wait_until(both_read, 10, message="the child's memory was never read")
        cpu = by_label(scrape(registry), "process_cpu_seconds_total", "worker")
        assert sorted(cpu) == ["0", SUPERVISOR]
    finally:
        child.kill()
        child.wait()
    # A pid that is gone between the supervisor's list and the read yields no series.
    memory = by_label(scrape(registry), "process_resident_memory_bytes", "worker")
    assert sorted(memory) == [SUPERVISOR]


def test_a_pinned_worker_pid_is_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import Counter, values

    from relay.metrics import pin_worker_pid

    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # restored after the test
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pin_worker_pid()
    pid = os.getpid()

    def no_getpid() -> int:
        raise AssertionError("os.getpid() called on a metric update")

    counter = Counter("pinned", "a counter", registry=None)
    monkeypatch.setattr(os, "getpid", no_getpid)
    counter.inc()
    counter.inc(2)
    assert counter._value.get() == 3
    assert (tmp_path / f"counter_{pid}.db").exists()
