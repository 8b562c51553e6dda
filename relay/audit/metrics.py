"""What a continuously running audit exports: the last audit's events by outcome, what it
repaired, when it last ran to completion, and every run's result."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from relay.audit.outcome import OUTCOMES, AuditReport

# How a run ended: nothing missing, something missing (after repair, if asked), the log not
# read to its end (budget), or an error before any report (UltraCart, Kafka, settings).
RUN_RESULTS = ("ok", "missing", "incomplete", "error")


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Gauge(
            "relay_audit_events",
            "Events of the last audit by outcome (in_kafka, missing, unverifiable, pending); "
            "missing counts those found missing, repaired or not.",
            ["outcome"],
            registry=self.registry,
        )
        self.repaired = Gauge(
            "relay_audit_repaired_events",
            "Missing events the last audit republished from UltraCart's log.",
            registry=self.registry,
        )
        self.deliveries = Gauge(
            "relay_audit_deliveries",
            "Deliveries in UltraCart's log over the last audit's window.",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "relay_audit_last_success_timestamp_seconds",
            "Unix time the last audit that read UltraCart's log over its whole window ended.",
            registry=self.registry,
        )
        self.runs = Counter(
            "relay_audit_runs",
            "Audits run, by result (ok, missing, incomplete, error).",
            ["result"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.events.labels(outcome)
        for result in RUN_RESULTS:
            self.runs.labels(result)

    def observe(self, report: AuditReport, ended: float) -> None:
        counts = report.counts()
        for outcome in OUTCOMES:
            self.events.labels(outcome).set(counts[outcome])
        self.repaired.set(report.repaired)
        self.deliveries.set(report.deliveries)
        if not report.complete:
            self.runs.labels("incomplete").inc()
            return
        self.last_success.set(ended)
        self.runs.labels("ok" if report.exit_code == 0 else "missing").inc()

    def failed(self) -> None:
        self.runs.labels("error").inc()
