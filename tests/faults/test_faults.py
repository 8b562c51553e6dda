"""Fault injection under sustained load: nothing acknowledged is ever lost.

Each scenario runs relay against this module's private broker while an UltraCart-like
sender (tests/faults/sender.py) delivers at a steady rate, injects one fault, lets the
sender finish its retries, then reads every topic back and reconciles (ledger.py). The rows
go to build/fault-report/ and to the end of the pytest output.

Bounded for CI: a 2 s acknowledgement deadline, a few seconds of load around each fault.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.ledger import FaultReport, assert_every_event_once, reconcile
from tests.faults.relay_under_test import ACK_DEADLINE, drain_and_stop, fault_relay
from tests.faults.sender import UltraCartSender
from tests.support.broker import LocalBroker
from tests.support.kafka import consume_all, create_topics
from tests.support.metrics import metric_sum
from tests.support.relay import CREDENTIALS, RelayProcess
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 40.0  # deliveries per second, over all senders
SENDERS = 4
# Durations, not waits: how long each phase of the scenario lasts.
LOAD_BEFORE = 2.0  # seconds of steady load before the fault
LOAD_AFTER = 3.0  # and after recovery
BROKER_DOWN = 2.0  # a killed broker stays down this long
SETTLE = 90.0  # for the sender's last retries
# Deliveries acknowledged from the spool before relay is killed under them.
SPOOLED_BEFORE_KILL = 20


@dataclass
class Stage:
    relay: RelayProcess
    broker: LocalBroker


def kill_broker(stage: Stage) -> None:
    stage.broker.kill()
    time.sleep(BROKER_DOWN)
    stage.broker.start()


def pause_broker(stage: Stage) -> None:
    stage.broker.signal(signal.SIGSTOP)
    try:
        time.sleep(ACK_DEADLINE + 3.0)  # every delivery in the meantime outlives its deadline
    finally:
        stage.broker.signal(signal.SIGCONT)


def restart_relay(sig: signal.Signals) -> Callable[[Stage], None]:
    def fault(stage: Stage) -> None:
        stage.relay.stop(sig)
        stage.relay.start()

    return fault


def kill_relay_while_spooling(stage: Stage) -> None:
    """The spool's hard case: acknowledged from disk, then relay dies before sending any."""
    stage.broker.kill()
    # Deliveries are answered from the spool meanwhile.
    wait_until(
        lambda: spooled(stage.relay) >= SPOOLED_BEFORE_KILL,
        timeout=30,
        interval=0.2,
        message="nothing was spooled: the scenario did not test the spool",
    )
    assert metric_sum(stage.relay.metrics(), "relay_spool_records") > 0
    stage.relay.stop(signal.SIGKILL)
    stage.relay.start()  # replays the spool; Kafka is still down
    # The new process took deliveries behind the replayed ones before Kafka returns.
    wait_until(
        lambda: spooled(stage.relay) > 0,
        timeout=30,
        interval=0.2,
        message="the restarted relay spooled nothing while Kafka was down",
    )
    stage.broker.start()


def spooled(relay: RelayProcess) -> float:
    """Deliveries this relay process acknowledged from the spool."""
    return metric_sum(relay.metrics(), "relay_spooled_deliveries_total")


SCENARIOS: dict[str, tuple[bool, Callable[[Stage], None]]] = {
    "broker SIGKILL + restart": (False, kill_broker),
    "broker SIGSTOP > ack deadline": (False, pause_broker),
    "relay SIGTERM + restart": (False, restart_relay(signal.SIGTERM)),
    "relay SIGKILL + restart": (False, restart_relay(signal.SIGKILL)),
    "spool: broker SIGKILL + restart": (True, kill_broker),
    "spool: relay SIGKILL while spooling": (True, kill_relay_while_spooling),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_acknowledged_event_is_lost(
    scenario: str,
    module_broker: LocalBroker,
    tmp_path: Path,
    record_fault_report: Callable[[FaultReport], None],
) -> None:
    spool, fault = SCENARIOS[scenario]
    prefix = f"f{uuid.uuid4().hex[:8]}."
    names = ["order_create", "item_update", "unknown", "dead_letter"]
    create_topics(module_broker.bootstrap, [prefix + "order_create", prefix + "item_update"])
    relay = fault_relay(module_broker.bootstrap, prefix, tmp_path, spool=spool)
    relay.start()
    sender = UltraCartSender(relay.url, CREDENTIALS, prefix, senders=SENDERS, rate=RATE)
    started = time.monotonic()
    settled = sender.around(
        lambda: fault(Stage(relay, module_broker)),
        before=LOAD_BEFORE,
        after=LOAD_AFTER,
        settle=SETTLE,
    )
    try:
        spool_used = spooled(relay) if spool else 0
    finally:
        exit_code = drain_and_stop(relay, spool=spool)
    seconds = time.monotonic() - started

    records = consume_all(module_broker.bootstrap, [prefix + n for n in names], idle=2.0)
    report = reconcile(scenario, spool, seconds, sender.deliveries, records, prefix + "dead_letter")
    record_fault_report(report)

    assert_every_event_once(report, settled=settled, exit_code=exit_code)
    if spool:
        assert spool_used > 0, "the spool was never used"
    else:
        # Without a spool relay never sends an event twice: every copy is a retry's.
        assert report.duplicates_from_relay == 0
        assert report.failed_attempts > 0, "the fault was not felt by the sender"
