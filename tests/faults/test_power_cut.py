"""Power cuts under the spool: what relay answered 200 survives a machine losing power.

Process kills leave the kernel's page cache behind, so they never tested the fsyncs. Here
the spool lives on faultfs (tests/support/faultfs), which forgets every write that was not
fsynced. Kafka is down, deliveries arrive under load and are answered from the spool, and
at one instant relay is SIGKILLed and the filesystem drops its unsynced state (keeping a
random torn prefix of each file's unsynced bytes, as a disk may). relay restarts on what is
left, and the cut is repeated at random points: half after a random time, half right after
a random write, before its fsync (so a frame is torn). Then Kafka returns, the spool drains
and the ledger reconciles as in every fault scenario: lost = 0, every copy of an event
under one ce_id, and the spool opened every time, truncating torn tails.

Seeds are printed; RELAY_POWER_CUT_SEED=<n> replays a run, RELAY_POWER_CUTS its length.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.ledger import FaultReport, reconcile
from tests.faults.relay_under_test import fault_relay, wait_for_spool_drain
from tests.faults.report import report_dir
from tests.faults.sender import UltraCartSender
from tests.support.broker import LocalBroker
from tests.support.faultfs import FaultFs
from tests.support.kafka import consume_all, create_topics
from tests.support.metrics import metric_sum
from tests.support.relay import CREDENTIALS, RelayProcess
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CUTS = int(os.environ.get("RELAY_POWER_CUTS", "20"))
RATE = 40.0
SENDERS = 4
SETTLE = 90.0
# A cut after a random time comes within this many seconds of deliveries being spooled.
MAX_DELAY = 1.5
# A cut after a random write comes within this many writes to the volume.
MAX_WRITES = 12
TORN_TAIL = "spool segment has a torn or corrupt tail"


def spooled(relay: RelayProcess) -> float:
    return metric_sum(relay.metrics(), "relay_spooled_deliveries_total")


def power_cuts(
    relay: RelayProcess, fs: FaultFs, broker: LocalBroker, seed: int, log: list[str]
) -> Callable[[], None]:
    def fault() -> None:
        broker.kill()
        rng = random.Random(seed)
        for n in range(CUTS):
            # Each relay process spools some deliveries of its own before its cut.
            wait_until(
                lambda: spooled(relay) > 0,
                30,
                interval=0.1,
                message="relay spooled nothing while Kafka was down",
            )
            cut_seed = rng.randrange(2**32)
            if n % 2 == 0:
                delay = rng.uniform(0.0, MAX_DELAY)
                time.sleep(delay)
                fs.freeze()
                where = f"after {delay:.2f} s"
            else:
                writes = rng.randint(1, MAX_WRITES)
                fs.freeze_after_writes(writes)
                wait_until(lambda: fs.status()["frozen"], 30, interval=0.01)
                where = f"after {writes} writes"
            relay.stop(signal.SIGKILL)
            report = fs.cut(cut_seed)
            log.append(
                f"cut {n + 1}/{CUTS} {where}, seed {cut_seed}: dropped "
                f"{report['dropped_bytes']} bytes and {report['dropped_names']} names, "
                f"kept {report['kept_unsynced_bytes']} unsynced bytes"
            )
            print(log[-1])
            relay.start()  # must open the spool on what is left, torn tail and all
        broker.start()

    return fault


def test_power_cuts_lose_nothing_acknowledged(
    private_broker: LocalBroker,
    tmp_path: Path,
    faultfs: FaultFs,
    record_fault_report: Callable[[FaultReport], None],
) -> None:
    seed = int(os.environ.get("RELAY_POWER_CUT_SEED", str(random.randrange(2**32))))
    print(f"power cuts: seed {seed} (RELAY_POWER_CUT_SEED={seed} replays this run)")
    prefix = f"p{uuid.uuid4().hex[:8]}."
    names = ["order_create", "item_update", "unknown", "dead_letter"]
    create_topics(private_broker.bootstrap, [prefix + "order_create", prefix + "item_update"])
    relay = fault_relay(
        private_broker.bootstrap, prefix, tmp_path, spool=True, spool_directory=faultfs.path
    )
    relay.start()
    sender = UltraCartSender(relay.url, CREDENTIALS, prefix, senders=SENDERS, rate=RATE)
    cuts: list[str] = []
    started = time.monotonic()
    try:
        settled = sender.around(
            power_cuts(relay, faultfs, private_broker, seed, cuts),
            before=1.0,
            after=2.0,
            settle=SETTLE,
        )
        wait_for_spool_drain(relay)
    finally:
        exit_code = relay.stop()
    seconds = time.monotonic() - started

    records = consume_all(private_broker.bootstrap, [prefix + n for n in names], idle=2.0)
    scenario = f"spool: {CUTS} power cuts, Kafka down (seed {seed})"
    report = reconcile(scenario, True, seconds, sender.deliveries, records, prefix + "dead_letter")
    record_fault_report(report)
    torn_tails = (tmp_path / "relay.log").read_text().count(TORN_TAIL)
    cuts.append(f"{len(cuts)} cuts, {torn_tails} torn tails truncated on restart")
    print(cuts[-1])
    # Beside the report, whose row names the run's seed: each cut's place and seed.
    report_dir().mkdir(parents=True, exist_ok=True)
    (report_dir() / "power-cuts.log").write_text(f"seed {seed}\n" + "\n".join(cuts) + "\n")

    assert len(cuts) == CUTS + 1
    assert settled, "some deliveries never got a 2xx within the settle time"
    assert exit_code == 0
    assert report.lost == 0
    assert report.unacknowledged == 0
    assert report.found == report.events_expected
    assert report.ce_id_mismatches == 0, "an event was published under different ce_ids"
    assert report.unexpected == 0
    assert report.dead_letters == 0
    assert torn_tails > 0, "no cut tore a frame: the scenario did not test torn tails"
