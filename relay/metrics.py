"""Prometheus metrics, one registry per app instance.

Labels come from bounded sets only (event type from the catalog, outcome, reason), never
from request data, so a hostile sender cannot blow up the number of series.

With several worker processes (``relay.serving.supervisor``) each gauge says how to combine the
workers' values; the mode is ignored when relay runs as a single process.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    values,
)

from relay import __version__
from relay.turn_gauges import PendingGaugeWrites, TurnGauge

# Why the intake server's head guard (relay.serving.http_guard) refused a request: the
# label values of relay_http_refused_total and the "error" codes of its answers. Defined
# here, with the metric, so the metrics layer needs nothing from the serving layer.
HEADERS_TOO_LARGE = "headers_too_large"
HEADER_TIMEOUT = "header_timeout"
REFUSALS = (HEADERS_TOO_LARGE, HEADER_TIMEOUT)

# Acknowledgement latency spans sub-millisecond (warm producer, loopback) to UltraCart's 30 s
# deadline; the 15/20/25/30 s buckets let the latency alert place a p99 near the deadline.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    25.0,
    30.0,
)
_SIZE_BUCKETS = tuple(float(2**n) for n in range(8, 25, 2))  # 256 B .. 16 MiB


# Outcomes of reloading a changed file (TLS pair, basic credentials).
RELOAD_OUTCOMES = ("ok", "failed")


class RelayMetrics:
    """Every intake metric, on the app's own registry.

    The registry also carries the process and platform collectors, which a single-process
    relay serves as they are; with several workers only the supervisor's registry is scraped,
    and it reads each worker's process figures itself (``relay.serving.process_metrics``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Registered before every metric, so a scrape writes the turn gauges before it
        # reads them.
        self._pending_writes = PendingGaugeWrites()
        r.register(self._pending_writes)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.deliveries = Counter(
            "relay_deliveries",
            "Webhook deliveries received, by outcome (ok, or the error code answered).",
            ["outcome"],
            registry=r,
        )
        self.events = Counter(
            "relay_events",
            "Events by UltraCart event type and outcome (published, failed).",
            ["event_type", "outcome"],
            registry=r,
        )
        self.delivery_duration = Histogram(
            "relay_delivery_duration_seconds",
            "Time from request received to response sent, by outcome.",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.produce_duration = Histogram(
            "relay_produce_duration_seconds",
            "Time from handing a delivery's records to the producer to Kafka acknowledging all.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # "ok" exists from the start, so the silence alerts see a flat line rather than none.
        self.deliveries.labels(outcome="ok")
        self.delivery_duration.labels(outcome="ok")
        self.inflight_deliveries = Gauge(
            "relay_inflight_deliveries",
            "Deliveries being handled right now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.inflight_events = Gauge(
            "relay_inflight_events",
            "Events handed to the producer and not yet acknowledged or failed.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.inflight_bytes = Gauge(
            "relay_inflight_bytes",
            "Bytes of event data handed to the producer and not yet acknowledged or failed.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.inflight_body_bytes = Gauge(
            "relay_inflight_body_bytes",
            "Bytes of request bodies held by deliveries being read, parsed, published or "
            "answered (admitted against intake.max_inflight_bytes by Content-Length).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.payload_bytes = Histogram(
            "relay_payload_bytes",
            "Size of delivery bodies as received (before decompression).",
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "relay_auth_failures",
            "Deliveries refused for authentication, by reason.",
            ["reason"],
            registry=r,
        )
        self.http_refused = Counter(
            "relay_http_refused",
            "Requests refused on the intake port before reaching relay's app, by reason "
            "(headers_too_large: 431, header_timeout: 408).",
            ["reason"],
            registry=r,
        )
        for reason in REFUSALS:
            # Every series from the start, so rate() and alerts see the first refusal.
            self.http_refused.labels(reason=reason)
        self.dead_letters = Counter(
            "relay_dead_letters",
            "Authenticated but unusable deliveries written to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.produce_errors = Counter(
            "relay_produce_errors",
            "Records Kafka failed to take, by librdkafka error name.",
            ["error"],
            registry=r,
        )
        self.producer_queue_messages = Gauge(
            "relay_producer_queue_messages",
            "Messages in the producer's queue (librdkafka statistics msg_cnt).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.producer_queue_bytes = Gauge(
            "relay_producer_queue_bytes",
            "Bytes in the producer's queue (librdkafka statistics msg_size).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.kafka_ready = Gauge(
            "relay_kafka_ready",
            "1 while a Kafka broker is reachable, else 0.",
            # With several workers: 1 only while every one of them reaches Kafka.
            multiprocess_mode="livemin",
            registry=r,
        )
        self.topics_missing = Gauge(
            "relay_topics_missing",
            "Routed topics missing on a cluster that does not create topics automatically, at "
            "the last start-up check; /readyz fails while above 0.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.spool_records = Gauge(
            "relay_spool_records",
            "Records in the spool that Kafka has not acknowledged yet.",
            registry=r,
        )
        self.spool_bytes = Gauge(
            "relay_spool_bytes",
            "Bytes the spool occupies on disk (counted against spool.max_bytes).",
            registry=r,
        )
        self.spool_oldest_age_seconds = Gauge(
            "relay_spool_oldest_age_seconds",
            "Age of the oldest delivery still waiting in the spool; 0 when it is empty.",
            registry=r,
        )
        self.spool_disk_full = Gauge(
            "relay_spool_disk_full",
            "1 while the spool's volume has no room (ENOSPC): deliveries Kafka cannot take "
            "get 503 spool_disk_full; back to 0 by itself once space returns.",
            registry=r,
        )
        self.spool_failed = Gauge(
            "relay_spool_failed",
            "1 once a spool fsync or write failed for good: relay takes no delivery (503 "
            "spool_failed, /readyz 503) until it is restarted on a working volume.",
            registry=r,
        )
        self.spooled_deliveries = Counter(
            "relay_spooled_deliveries",
            "Deliveries answered from the spool, by why Kafka did not take them directly.",
            ["reason"],
            registry=r,
        )
        self.spool_quarantined = Counter(
            "relay_spool_quarantined",
            "Spooled deliveries Kafka refused for good, moved out of the spool into its "
            "quarantine directory, by librdkafka error (e.g. msg_size_too_large).",
            ["reason"],
            registry=r,
        )
        self.credentials_reloads = Counter(
            "relay_credentials_reloads",
            "Changed auth.basic_credentials_file loaded (ok) or refused (failed; the previous "
            "pairs stay accepted and the file is tried again at the next check).",
            ["outcome"],
            registry=r,
        )
        for outcome in RELOAD_OUTCOMES:
            self.credentials_reloads.labels(outcome=outcome)
        self.limits = LimitGauges(r)
        self.build_info = build_info(r)

    def turn_gauge(self, gauge: Gauge) -> TurnGauge:
        """``gauge``, written at most once per event-loop turn (see ``TurnGauge``)."""
        turn_gauge = TurnGauge(gauge)
        self._pending_writes.gauges.append(turn_gauge)
        return turn_gauge


def build_info(registry: CollectorRegistry) -> Info:
    """``relay_build_info{version}``, on a worker's registry and on the supervisor's alike."""
    info = Info("relay_build", "relay version.", registry=registry)
    info.info({"version": __version__})
    return info


class LimitGauges:
    """relay's configured limits, so saturation can be graphed and alerted on as a ratio.

    With several workers each worker enforces its share of the relay-wide limits, and the
    shares add up (``livesum``) to about the configured value.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.max_inflight_events = Gauge(
            "relay_max_inflight_events",
            "intake.max_inflight_events: events in flight beyond which deliveries get 503 "
            "overloaded (compare relay_inflight_events).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.max_inflight_bytes = Gauge(
            "relay_max_inflight_bytes",
            "intake.max_inflight_bytes: bytes of event data in flight beyond which deliveries "
            "get 503 overloaded (compare relay_inflight_bytes).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.max_concurrent_connections = Gauge(
            "relay_max_concurrent_connections",
            "server.max_concurrent_connections on the intake port.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.max_body_bytes = Gauge(
            "relay_max_body_bytes",
            "intake.max_body_bytes: the largest delivery body accepted (compare "
            "relay_payload_bytes).",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.spool_max_bytes = Gauge(
            "relay_spool_max_bytes",
            "spool.max_bytes: the spool's size limit (compare relay_spool_bytes); 0 when the "
            "spool is off.",
            multiprocess_mode="livemax",
            registry=registry,
        )


class TlsMetrics:
    """Certificate reloads and expiry, registered only when the intake port serves HTTPS.

    Apart from ``RelayMetrics`` so that a plain-HTTP relay exports no expiry at all rather
    than a zero an expiry alert would read as long past.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reloads = Counter(
            "relay_tls_reloads",
            "Changed certificate files loaded (ok) or refused (failed; the previous "
            "certificate is still served and the files are tried again at the next check). "
            "Counted per process: with several workers one renewal counts once per worker.",
            ["outcome"],
            registry=registry,
        )
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome=outcome)
        self.certificate_expiry = Gauge(
            "relay_tls_certificate_expiry_timestamp_seconds",
            "When the certificate served on the intake port expires (notAfter), as unix time.",
            # With several workers: the soonest, should one of them still serve an older one.
            multiprocess_mode="livemin",
            registry=registry,
        )


def pin_worker_pid() -> None:
    """In a worker process: name its metric files by the pid it has now, asked once.

    prometheus_client's multiprocess values call ``os.getpid()``, a system call, on every
    update, to notice a fork; a delivery makes about a dozen updates, and relay's workers are
    spawned and never fork. Must run before the worker's first metric is created.
    """
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    pid = os.getpid()
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]
