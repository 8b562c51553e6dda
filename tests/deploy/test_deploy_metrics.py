"""Every metric the Grafana dashboard and the alert rules use is one relay exports, and the
README's metrics table lists exactly the metrics relay exports.

The exported names come from real registries (``RelayMetrics``, the TLS metrics, the UltraCart
status poller's gauges, which relay serve registers on the same registry when the poller is
on, and the supervisor's ``FleetMetrics``), not from a list kept here; the names an
expression uses come from Prometheus' own PromQL parser (deploy/tools/promql-check), which
also rejects any expression that does not parse.
"""

from __future__ import annotations

import json
import re
import tempfile
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from relay.audit.metrics import AuditMetrics
from relay.control.status_poller import WebhookStatusGauges
from relay.metrics import RelayMetrics, TlsMetrics
from relay.serving.fleet_admin import FleetMetrics
from tests.deploy.support import REPO_ROOT, exported_series_names, promql_check

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "relay.json"
COMPOSE_ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"

# Series Prometheus itself adds to every scrape; a query may use them like relay's own.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def exported_families() -> dict[str, str]:
    """Family name -> type, for every metric any relay process serves."""
    registry: CollectorRegistry = RelayMetrics().registry
    WebhookStatusGauges(registry)
    TlsMetrics(registry)
    AuditMetrics(registry)  # `relay webhooks audit --every --metrics-port`
    families = {family.name: family.type for family in registry.collect()}
    with tempfile.TemporaryDirectory() as empty:
        # The supervisor's own series; its workers' are RelayMetrics' above.
        fleet = FleetMetrics(empty, lambda: 2, lambda: {})
        for family in fleet.registry.collect():
            assert families.setdefault(family.name, family.type) == family.type, family.name
    return families


def exported() -> set[str]:
    return exported_series_names(exported_families().items())


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every panel query and every query variable."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", str(target["expr"])))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = str(variable["query"]["query"])
            # label_values(<series selector>, <label>): the selector is PromQL.
            assert query.startswith("label_values(") and query.endswith(")"), query
            selector = query.removeprefix("label_values(").rsplit(",", 1)[0]
            found.append((f"variable {variable['name']!r}", selector))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules: dict[str, Any] = yaml.safe_load(COMPOSE_ALERTS.read_text(encoding="utf-8"))
    return [
        (f"alert {rule['alert']}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, dict[str, Any]]]:
    """(where, promql-check result) for every dashboard and alert expression."""
    sources = [*dashboard_expressions(), *alert_expressions()]
    results = promql_check([expr for _, expr in sources])
    assert len(results) == len(sources)
    return [(where, result) for (where, _), result in zip(sources, results, strict=True)]


def test_every_expression_parses(parsed: list[tuple[str, dict[str, Any]]]) -> None:
    errors = [f"{where}: {r['error']} in {r['expr']}" for where, r in parsed if r.get("error")]
    assert not errors, "\n".join(errors)


def test_every_metric_used_is_exported_by_relay(parsed: list[tuple[str, dict[str, Any]]]) -> None:
    known = exported() | PROMETHEUS_SERIES
    unknown = sorted(
        f"{name} (used by {where})"
        for where, r in parsed
        for name in r["metrics"]
        if name not in known
    )
    assert not unknown, "not exported by relay:\n" + "\n".join(unknown)


def test_dashboard_and_alerts_cover_every_area(parsed: list[tuple[str, dict[str, Any]]]) -> None:
    """Each area the deployment issue names has at least one query or rule."""
    used = {name for _, r in parsed for name in r["metrics"]}
    for needed in (
        "relay_events_total",  # intake rate by event type
        "relay_delivery_duration_seconds_bucket",  # acknowledgement latency
        "relay_produce_duration_seconds_bucket",
        "relay_auth_failures_total",  # errors by kind
        "relay_produce_errors_total",
        "relay_dead_letters_total",
        "relay_producer_queue_messages",  # Kafka producer queue
        "relay_producer_queue_bytes",
        "relay_kafka_ready",  # readiness
        "relay_spool_records",  # spool growth
        "relay_spool_oldest_age_seconds",
        "relay_ultracart_webhook_disabled",  # UltraCart webhook status
        "relay_ultracart_webhook_consecutive_failures",
        "relay_ultracart_webhook_pending",
        "relay_ultracart_status_poll_errors_total",  # the poller's own failures
        "relay_max_inflight_events",  # saturation
        "relay_spool_max_bytes",
        "relay_worker_restarts_total",  # worker restarts
        "process_resident_memory_bytes",  # per process
        "relay_credentials_reloads_total",  # reload failures
        "relay_tls_reloads_total",
        "relay_tls_certificate_expiry_timestamp_seconds",
        "relay_audit_events",  # Kafka against UltraCart's delivery log
        "relay_audit_last_success_timestamp_seconds",
    ):
        assert needed in used, f"nothing in the dashboard or the alerts uses {needed}"


def test_alerts_cover_the_failure_modes() -> None:
    names = {where.removeprefix("alert ") for where, _ in alert_expressions()}
    assert {
        "RelayAuthFailureSpike",
        "RelayProduceErrors",
        "RelayKafkaUnreachable",
        "RelaySpoolGrowing",
        "RelaySpoolDiskFull",
        "RelaySpoolFailed",
        "RelayUltraCartWebhookDisabled",
        "RelayAuditMissingEvents",
        "RelayAuditNotRun",
    } <= names


def test_promql_check_reports_names_and_errors() -> None:
    """The checker the tests above rely on: names from selectors only, errors reported."""
    results = promql_check(
        [
            'histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{job=~"$job"}'
            "[$__rate_interval])))",
            "sum(rate(a_total[5m] offset 1h)) / on (instance) group_left (version) b_info",
            "time() - max by (webhook_oid) (c_timestamp_seconds) > 900",
            "rate(a_total[5m]",
        ]
    )
    assert [r["metrics"] for r in results[:3]] == [
        ["a_seconds_bucket"],
        ["a_total", "b_info"],
        ["c_timestamp_seconds"],
    ]
    assert all("error" not in r for r in results[:3])
    assert "parse error" in results[3]["error"]


def test_exported_names_follow_the_client_conventions() -> None:
    names = exported()
    assert {
        "relay_events_total",
        "relay_delivery_duration_seconds_bucket",
        "relay_build_info",
        "relay_ultracart_webhook_disabled",
    } <= names
    assert "relay_events" not in names
    # Prometheus' naming: a histogram of durations ends in _duration_seconds.
    histograms = [name for name, kind in exported_families().items() if kind == "histogram"]
    for name in histograms:
        assert name.endswith(("_duration_seconds", "_bytes")), name


def test_dashboard_uses_its_datasource_variable() -> None:
    """Panels name ${datasource}, so the dashboard works with any Prometheus, not only
    the one compose provisions."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] == "relay"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
    titles = {panel["title"] for panel in board["panels"]}
    for needed in (
        "Intake rate by event type",
        "Acknowledgement latency",
        "Errors by kind",
        "Producer queue (messages)",
        "Webhook",
        "Saturation",
        "Worker restarts",
        "Status poll errors (1h)",
    ):
        assert needed in titles


def test_latency_panel_is_split_by_outcome() -> None:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panel = next(p for p in board["panels"] if p["title"] == "Acknowledgement latency")
    assert all("by (le, outcome)" in target["expr"] for target in panel["targets"])


README = REPO_ROOT / "README.md"
_EXPOSED_SUFFIX = {"counter": "_total", "info": "_info"}


def readme_metrics_table() -> dict[str, str]:
    """Name -> type for every metric in the README's "Metrics and probes" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Metrics and probes\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = re.findall(r"`([^`]+)`", cells[0])
        kinds = [kind.strip() for kind in cells[1].split(",")]
        if len(kinds) == 1:
            kinds *= len(names)
        assert len(kinds) == len(names), f"README row with {names} has types {kinds}"
        for name, kind in zip(names, kinds, strict=True):
            assert name not in table, f"{name} is in the README's table twice"
            table[name] = kind
    return table


def test_readme_metrics_table_matches_the_registries() -> None:
    """Every metric relay exports is in the table, with its type, and the table has no other:
    a documented metric relay never emits is a dashboard panel or an alert that stays empty."""
    families = {
        name + _EXPOSED_SUFFIX.get(kind, ""): kind for name, kind in exported_families().items()
    }
    table = readme_metrics_table()
    assert sorted(set(families) - set(table)) == [], "exported but not in the README's table"
    assert sorted(set(table) - set(families)) == [], "in the README's table but not exported"
    wrong = {name: (table[name], kind) for name, kind in families.items() if table[name] != kind}
    assert not wrong, f"README type differs from the registry (README, registry): {wrong}"
