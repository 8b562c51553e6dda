"""Fault injection on a replicated cluster: leader failover loses nothing acknowledged.

The same sender, ledger and report as test_faults.py, against the 3-node KRaft cluster of
deploy/local/kafka-cluster with relay's topics at replication factor 3 and
min.insync.replicas 2. Each scenario starts from a fully replicated cluster, injects one
fault under load, waits until relay answers 2xx again, and reconciles what the sender was
told against what the cluster holds.

Short for CI (a few seconds of load per phase); ``make faults-cluster`` sets
RELAY_FAULTS_LONG=1, which stretches every phase (load, pause, outage) five-fold.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.faults.ledger import FaultReport, assert_every_event_once, reconcile
from tests.faults.relay_under_test import ACK_DEADLINE, drain_and_stop, fault_relay
from tests.faults.sender import UltraCartSender
from tests.support.cluster import NODES, LocalCluster, cluster_of_its_own
from tests.support.kafka import consume_all, create_topics
from tests.support.metrics import metric_sum
from tests.support.relay import CREDENTIALS, RelayProcess
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCALE = 5.0 if os.environ.get("RELAY_FAULTS_LONG") == "1" else 1.0
RATE = 40.0
SENDERS = 4
LOAD_BEFORE = 2.0 * SCALE
LOAD_AFTER = 2.0 * SCALE
PAUSE = (ACK_DEADLINE + 3.0) * SCALE  # a paused leader outlives every deadline meanwhile
OUTAGE = 5.0 * SCALE  # two nodes down this long: past two ack deadlines and a backoff
SETTLE = 90.0
NAMES = ("order_create", "item_update", "unknown", "dead_letter")
# The partition whose leader the leader scenarios go after.
LED_TOPIC = "order_create"


@dataclass
class Stage:
    relay: RelayProcess
    cluster: LocalCluster
    sender: UltraCartSender
    prefix: str
    # Sender-clock seconds during which no 2xx may be answered from Kafka (two nodes down).
    no_acks_window: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        return [self.prefix + n for n in NAMES]


def kill_leader(stage: Stage) -> None:
    """SIGKILL the leader; relay must carry on once another replica leads, before it is back."""
    topic = stage.prefix + LED_TOPIC
    leader = stage.cluster.leader(topic)
    stage.cluster.kill(leader)
    wait_until(
        lambda: stage.cluster.leader(topic) != leader,
        30,
        interval=0.2,
        message="no new leader was elected",
        ignore=(RuntimeError,),
    )
    failover = stage.sender.now()
    wait_until(
        lambda: stage.sender.last_success() > failover,
        30,
        interval=0.2,
        message="relay answered no 2xx with the old leader down",
    )
    time.sleep(LOAD_AFTER)  # under load on two nodes
    stage.cluster.start(leader)


def pause_leader(stage: Stage) -> None:
    leader = stage.cluster.leader(stage.prefix + LED_TOPIC)
    stage.cluster.pause(leader)
    try:
        time.sleep(PAUSE)
    finally:
        stage.cluster.resume(leader)


def rolling_restart(stage: Stage) -> None:
    """Each node in turn stopped cleanly and started, the next only once all are in sync."""
    for node in NODES:
        stage.cluster.stop(node)
        stage.cluster.start(node)
        stage.cluster.wait_fully_replicated(stage.topics)


def two_down(stage: Stage) -> None:
    """Two of three down: fewer in-sync replicas than min.insync.replicas (and no quorum)."""
    survivor = stage.cluster.leader(stage.prefix + LED_TOPIC)
    down = [n for n in NODES if n != survivor]
    stage.cluster.kill(*down)
    start = stage.sender.now()
    time.sleep(OUTAGE)
    stage.no_acks_window = (start, stage.sender.now())
    stage.cluster.start(*down)


SCENARIOS: dict[str, Callable[[Stage], None]] = {
    "cluster: leader SIGKILL": kill_leader,
    "cluster: leader SIGSTOP > ack deadline": pause_leader,
    "cluster: rolling restart": rolling_restart,
    "cluster: two brokers down (below min.insync)": two_down,
}


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str) -> Iterator[LocalCluster]:
    # kafka_bootstrap first: the shared broker's start resolves the Kafka jars for these.
    with cluster_of_its_own() as cluster:
        yield cluster


@pytest.mark.parametrize("spool", [False, True], ids=["direct", "spool"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_acknowledged_event_is_lost_on_the_cluster(
    scenario: str,
    spool: bool,
    cluster: LocalCluster,
    tmp_path: Path,
    record_fault_report: Callable[[FaultReport], None],
) -> None:
    began = time.monotonic()
    prefix = f"c{uuid.uuid4().hex[:8]}."
    topics = [prefix + n for n in NAMES]
    create_topics(
        cluster.bootstrap,
        topics,
        replication_factor=3,
        config={"min.insync.replicas": "2"},
    )
    cluster.wait_fully_replicated(topics)
    relay = fault_relay(cluster.bootstrap, prefix, tmp_path, spool=spool)
    relay.start()
    sender = UltraCartSender(relay.url, CREDENTIALS, prefix, senders=SENDERS, rate=RATE)
    stage = Stage(relay, cluster, sender, prefix)
    settled = sender.around(
        lambda: SCENARIOS[scenario](stage), before=LOAD_BEFORE, after=LOAD_AFTER, settle=SETTLE
    )
    try:
        spool_used = metric_sum(relay.metrics(), "relay_spooled_deliveries_total")
    finally:
        exit_code = drain_and_stop(relay, spool=spool)
    # Back to full strength before reading: the next scenario starts from there too.
    cluster.wait_fully_replicated(topics)
    records = consume_all(cluster.bootstrap, topics, idle=2.0)
    report = reconcile(
        scenario,
        spool,
        time.monotonic() - began,
        sender.deliveries,
        records,
        prefix + "dead_letter",
        brokers=len(NODES),
    )
    record_fault_report(report)

    assert_every_event_once(report, settled=settled, exit_code=exit_code)
    if not spool and stage.no_acks_window is None:
        # Below min.insync (and without a quorum) the surviving leader appends what it is
        # sent but cannot commit it; librdkafka times the records out, bumps its producer
        # epoch and re-sends under the new one, and once the followers are back every copy
        # commits. Those copies share one attempt (and one ce_id): only there is relay's own
        # duplicate expected without the spool.
        assert report.duplicates_from_relay == 0
    if stage.no_acks_window is not None:
        low, high = stage.no_acks_window
        inside = [
            a
            for d in sender.deliveries
            for a in d.attempts
            if a.started >= low and a.started + a.seconds <= high
        ]
        assert inside, "no attempt was answered while two nodes were down"
        if spool:
            # 200 then means "on disk", never "in Kafka": the spool took every one.
            assert spool_used > 0, "the spool was not used while the cluster was below min.insync"
        else:
            assert not [a for a in inside if a.ok], "relay answered 2xx below min.insync"
            assert any(a.status == 503 for a in inside), "relay did not answer 503"
