"""The spool's volume full (ENOSPC) or failing (fsync EIO), on faultfs, against real Kafka.

- Full disk: while Kafka is up relay serves straight to it (200, nothing spooled); with
  Kafka down it answers 503 ``spool_disk_full``, says so in one log line and in
  ``relay_spool_disk_full``; when space returns it spools again by itself and the gauge
  clears; once Kafka is back every delivery answered 200 is in Kafka.
- Failed fsync: the delivery it covered gets 503 ``spool_failed``, never 200; relay takes
  nothing more (503, ``/readyz`` 503, ``relay_spool_failed``) and does not fsync again;
  after a power cut and a restart it reopens from what is durable and everything answered
  200 reaches Kafka.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx2
import orjson
import pytest

from tests.faults.relay_under_test import fault_relay, wait_for_spool_drain
from tests.support.broker import LocalBroker
from tests.support.faultfs import FaultFs
from tests.support.kafka import consume_all, create_topics
from tests.support.metrics import metric_sum
from tests.support.relay import RelayProcess, order_delivery
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DISK_FULL_LINE = "the spool's disk is full"
FAILED_LINE = "spool fsync or write failed"
# Bounds a loop that fills the disk: far more deliveries than the budget below holds.
MAX_POSTS = 400


class Deliveries:
    """Posts numbered deliveries of one order_create event each; remembers the 200s."""

    def __init__(self, relay: RelayProcess, prefix: str) -> None:
        self.relay = relay
        self.prefix = prefix
        self.acknowledged: list[str] = []
        self.sent = 0

    def post(self) -> httpx2.Response:
        key = f"{self.prefix}{self.sent}"
        self.sent += 1
        response = self.relay.post(order_delivery(key))
        if response.status_code == 200:
            self.acknowledged.append(key)
        return response

    def in_kafka(self, bootstrap: str) -> set[str]:
        records = consume_all(bootstrap, [self.prefix + "order_create"], idle=2.0)
        return {r.key.decode() for r in records if r.key is not None}


def error_code(response: httpx2.Response) -> str:
    code: str = orjson.loads(response.content)["error"]
    return code


def gauge(relay: RelayProcess, name: str) -> float:
    return metric_sum(relay.metrics(), name)


def start_relay(broker: LocalBroker, tmp_path: Path, fs: FaultFs) -> tuple[RelayProcess, str]:
    prefix = f"d{uuid.uuid4().hex[:8]}."
    create_topics(broker.bootstrap, [prefix + "order_create"])
    relay = fault_relay(broker.bootstrap, prefix, tmp_path, spool=True, spool_directory=fs.path)
    relay.start()
    return relay, prefix


def test_a_full_disk_is_503_until_space_returns_and_loses_nothing(
    private_broker: LocalBroker, tmp_path: Path, faultfs: FaultFs
) -> None:
    relay, prefix = start_relay(private_broker, tmp_path, faultfs)
    deliveries = Deliveries(relay, prefix)
    try:
        faultfs.set_budget(faultfs.status()["used"])  # not one byte more
        for _ in range(10):
            assert deliveries.post().status_code == 200  # straight to Kafka
        assert gauge(relay, "relay_spooled_deliveries_total") == 0

        private_broker.kill()
        faultfs.set_budget(faultfs.status()["used"] + 16 * 1024)  # a few dozen deliveries
        refused = []
        for _ in range(MAX_POSTS):
            response = deliveries.post()
            if response.status_code != 200:
                refused.append(response)
                if len(refused) == 5:
                    break
        assert [r.status_code for r in refused] == [503] * 5
        assert {error_code(r) for r in refused} == {"spool_disk_full"}
        spooled = gauge(relay, "relay_spooled_deliveries_total")
        assert spooled > 0, "the disk filled before anything was spooled"
        assert gauge(relay, "relay_spool_disk_full") == 1
        assert (tmp_path / "relay.log").read_text().count(DISK_FULL_LINE) == 1

        faultfs.set_budget(None)
        wait_until(
            lambda: gauge(relay, "relay_spool_disk_full") == 0,
            10,
            interval=0.2,
            message="relay_spool_disk_full did not clear once space returned",
        )
        for _ in range(5):
            assert deliveries.post().status_code == 200  # spooled again
        assert gauge(relay, "relay_spooled_deliveries_total") == spooled + 5

        private_broker.start()
        wait_for_spool_drain(relay)
    finally:
        assert relay.stop() == 0
    print(
        f"full disk: {deliveries.sent} sent, {len(deliveries.acknowledged)} answered 200, "
        f"{spooled:.0f} spooled before the disk filled"
    )
    missing = set(deliveries.acknowledged) - deliveries.in_kafka(private_broker.bootstrap)
    assert not missing, f"answered 200 but not in Kafka: {sorted(missing)}"


def test_a_failed_fsync_is_never_a_200_and_stops_the_spool(
    private_broker: LocalBroker, tmp_path: Path, faultfs: FaultFs
) -> None:
    relay, prefix = start_relay(private_broker, tmp_path, faultfs)
    deliveries = Deliveries(relay, prefix)
    try:
        private_broker.kill()
        for _ in range(5):
            assert deliveries.post().status_code == 200  # spooled
        faultfs.fail_next_fsync()
        failed = deliveries.post()
        assert failed.status_code == 503
        assert error_code(failed) == "spool_failed"
        assert faultfs.status()["failed_fsyncs"] == 1
        fsyncs = faultfs.status()["fsyncs"]
        later = [deliveries.post() for _ in range(3)]
        assert [(r.status_code, error_code(r)) for r in later] == [(503, "spool_failed")] * 3
        assert faultfs.status()["fsyncs"] == fsyncs, "relay fsynced again after a failure"
        assert relay.readiness().status_code == 503
        assert gauge(relay, "relay_spool_failed") == 1
        assert (tmp_path / "relay.log").read_text().count(FAILED_LINE) == 1

        # What is durable is what relay reopens from: the power goes, relay restarts.
        faultfs.freeze()
        relay.stop(signal.SIGKILL)
        faultfs.cut(seed=1)
        relay.start()
        assert gauge(relay, "relay_spool_failed") == 0
        assert gauge(relay, "relay_spool_records") == 5  # the failed one was not durable
        assert deliveries.post().status_code == 200
        private_broker.start()
        wait_for_spool_drain(relay)
    finally:
        assert relay.stop() == 0
    assert len(deliveries.acknowledged) == 6
    missing = set(deliveries.acknowledged) - deliveries.in_kafka(private_broker.bootstrap)
    assert not missing, f"answered 200 but not in Kafka: {sorted(missing)}"
