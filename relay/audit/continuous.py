"""``--every``: audit again and again, each time over the same span back from now, with the
results as metrics. A run that fails (UltraCart or Kafka unreachable, say) is counted and
logged and the next one comes at its time; ``relay_audit_last_success_timestamp_seconds``
going stale is what the RelayAuditNotRun alert watches."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaException

from relay.audit.metrics import AuditMetrics
from relay.audit.outcome import AuditReport
from relay.control.errors import ControlError
from relay.kafka.errors import KafkaFailed
from relay.settings.errors import ConfigError

logger = logging.getLogger(__name__)

# What a run may fail with and the loop survives; anything else is a bug and stops it.
RUN_FAILURES = (ControlError, ConfigError, KafkaException, KafkaFailed)


def run_every(
    run_once: Callable[[], AuditReport],
    every: float,
    metrics: AuditMetrics,
    stop: threading.Event,
    on_report: Callable[[AuditReport], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run until ``stop`` is set; returns how many runs were made."""
    runs = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = run_once()
        except RUN_FAILURES as error:
            metrics.failed()
            logger.error("audit failed: %s; next run in %.0f s", error, every)
        else:
            metrics.observe(report, clock())
            if on_report is not None:
                on_report(report)
        runs += 1
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return runs
