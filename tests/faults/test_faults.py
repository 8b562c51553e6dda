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

from tests.broker_control import LocalBroker
from tests.faults.ledger import FaultReport, reconcile
from tests.faults.sender import UltraCartSender
from tests.kafka_support import consume_all, create_topics
from tests.relay_process import CREDENTIALS, RelayProcess, topic_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ACK_DEADLINE = 2.0
RATE = 40.0  # deliveries per second, over all senders
SENDERS = 4
LOAD_BEFORE = 2.0  # seconds of steady load before the fault
LOAD_AFTER = 3.0  # and after recovery
SETTLE = 90.0  # for the sender's last retries


@dataclass
class Stage:
    relay: RelayProcess
    broker: LocalBroker


def kill_broker(stage: Stage) -> None:
    stage.broker.kill()
    time.sleep(2.0)
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
    time.sleep(3.0)  # deliveries are answered from the spool meanwhile
    spooled = metric(stage.relay.metrics(), "relay_spool_records")
    assert spooled > 0, "nothing was spooled: the scenario did not test the spool"
    stage.relay.stop(signal.SIGKILL)
    stage.relay.start()  # replays the spool; Kafka is still down
    time.sleep(1.0)
    stage.broker.start()


SCENARIOS: dict[str, tuple[bool, Callable[[Stage], None]]] = {
    "broker SIGKILL + restart": (False, kill_broker),
    "broker SIGSTOP > ack deadline": (False, pause_broker),
    "relay SIGTERM + restart": (False, restart_relay(signal.SIGTERM)),
    "relay SIGKILL + restart": (False, restart_relay(signal.SIGKILL)),
    "spool: broker SIGKILL + restart": (True, kill_broker),
    "spool: relay SIGKILL while spooling": (True, kill_relay_while_spooling),
}


def metric(text: str, name: str) -> float:
    """Sum of every series of ``name`` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == name or series.startswith(name + "{"):
            total += float(value)
    return total


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_acknowledged_event_is_lost(
    scenario: str,
    private_broker: LocalBroker,
    tmp_path: Path,
    record_fault_report: Callable[[FaultReport], None],
) -> None:
    spool, fault = SCENARIOS[scenario]
    prefix = f"f{uuid.uuid4().hex[:8]}."
    names = ["order_create", "item_update", "unknown", "dead_letter"]
    create_topics(private_broker.bootstrap, [prefix + "order_create", prefix + "item_update"])
    env = {
        **topic_env(prefix),
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": str(ACK_DEADLINE),
        "RELAY_SERVER__SHUTDOWN_GRACE_SECONDS": "5",
    }
    if spool:
        env |= {
            "RELAY_SPOOL__ENABLED": "true",
            "RELAY_SPOOL__DIRECTORY": str(tmp_path / "spool"),
            "RELAY_SPOOL__MAX_BYTES": str(256 * 1024 * 1024),
        }
    relay = RelayProcess(private_broker.bootstrap, env, log_path=tmp_path / "relay.log")
    relay.start()
    sender = UltraCartSender(relay.url, CREDENTIALS, prefix, senders=SENDERS, rate=RATE)
    started = time.monotonic()
    sender.start()
    try:
        time.sleep(LOAD_BEFORE)
        fault(Stage(relay, private_broker))
        recovered = time.monotonic() - started
        # Load goes on until relay answers 2xx again, and a little beyond.
        wait_for(lambda: sender.last_success() > recovered, SETTLE, "relay did not recover")
        time.sleep(LOAD_AFTER)
    finally:
        settled = sender.finish(SETTLE)
    try:
        if spool:
            spooled = metric(relay.metrics(), "relay_spooled_deliveries_total")
            wait_for(
                lambda: metric(relay.metrics(), "relay_spool_records") == 0,
                60,
                "the spool did not drain",
            )
    finally:
        exit_code = relay.stop()
    seconds = time.monotonic() - started

    records = consume_all(private_broker.bootstrap, [prefix + n for n in names], idle=2.0)
    report = reconcile(
        scenario, spool, seconds, sender.deliveries, records, prefix + "dead_letter"
    )
    record_fault_report(report)

    assert settled, "some deliveries never got a 2xx within the settle time"
    assert exit_code == 0
    assert report.lost == 0
    assert report.unacknowledged == 0
    assert report.found == report.events_expected
    assert report.ce_id_mismatches == 0
    assert report.unexpected == 0
    assert report.dead_letters == 0
    if spool:
        assert spooled > 0, "the spool was never used"
    else:
        # Without a spool relay never sends an event twice: every copy is a retry's.
        assert report.duplicates_from_relay == 0
        assert report.failed_attempts > 0, "the fault was not felt by the sender"
