"""The relay every fault scenario runs: a short ack deadline, so faults show within seconds,
and optionally the spool, on the scenario's own topics."""

from __future__ import annotations

from pathlib import Path

from tests.support.metrics import metric_sum
from tests.support.relay import RelayProcess, topic_env
from tests.support.waiting import wait_until

# Short, so a paused or dead leader turns into 503s (or spooled 200s) within the scenario.
ACK_DEADLINE = 2.0


def fault_relay(
    bootstrap: str, prefix: str, tmp_path: Path, *, spool: bool, spool_directory: Path | None = None
) -> RelayProcess:
    """``spool_directory`` defaults to one under ``tmp_path`` (faultfs scenarios pass theirs)."""
    env = {
        **topic_env(prefix),
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": str(ACK_DEADLINE),
        "RELAY_SERVER__SHUTDOWN_GRACE_SECONDS": "5",
    }
    if spool:
        env |= {
            "RELAY_SPOOL__ENABLED": "true",
            "RELAY_SPOOL__DIRECTORY": str(spool_directory or tmp_path / "spool"),
            "RELAY_SPOOL__MAX_BYTES": str(256 * 1024 * 1024),
        }
    return RelayProcess(bootstrap, env, log_path=tmp_path / "relay.log")


def wait_for_spool_drain(relay: RelayProcess, seconds: float = 60) -> None:
    """Wait until relay's spool holds no record: everything it acknowledged is in Kafka."""
    wait_until(
        lambda: metric_sum(relay.metrics(), "relay_spool_records") == 0,
        seconds,
        interval=0.2,
        message="the spool did not drain",
    )


def drain_and_stop(relay: RelayProcess, *, spool: bool) -> int:
    """Wait for the spool (if any) to reach Kafka, then stop relay; its exit code."""
    try:
        if spool:
            wait_for_spool_drain(relay)
    finally:
        exit_code = relay.stop()
    return exit_code
