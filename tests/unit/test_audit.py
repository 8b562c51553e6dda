"""The audit's pure logic: rebuilding logged bodies, judging outcomes, repair records, the
API budget, the report and its exit codes (no network; the e2e tests use the real ones)."""

from __future__ import annotations

import base64
import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from relay.audit.collect import LoggedDelivery, Window, settled_by_summary
from relay.audit.judge import Judge
from relay.audit.kafka_index import REPAIRED_FROM_HEADER, KafkaIndex
from relay.audit.outcome import AuditReport
from relay.audit.rebuild import LOGGED_BODY_LIMIT, NotRebuilt, Rebuilt, ce_id, rebuild
from relay.audit.repair import repair_records
from relay.cli.audit import progress_line
from relay.control.budget import BudgetSpent, CallBudget
from relay.control.models import WebhookLog, WebhookLogSummary
from relay.events.records import RecordBuilder, event_id
from relay.events.routing import KeyPicker, TopicRouter
from relay.settings import Settings

SETTINGS = Settings.load(None, env={"RELAY_AUTH__ALLOW_UNAUTHENTICATED": "true"})
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORDERS = [
    b'{"order_id":"A-1","total":49.950}',
    b'{"order_id":"A-2", "n": 123456789012345678901234567890}',
]


def _builder() -> RecordBuilder:
    return RecordBuilder(
        TopicRouter(SETTINGS.topics), KeyPicker(SETTINGS.keys), SETTINGS.cloudevents
    )


def _events_json() -> bytes:
    return b"[" + b",".join(b'{"order_create":' + raw + b"}" for raw in ORDERS) + b"]"


def _bodies() -> dict[str, bytes]:
    events = _events_json()
    packed = base64.b64encode(gzip.compress(events)).decode()
    return {
        "object": b'{"events":' + events + b"}",
        "array": events,
        "object+gzip-base64": json.dumps({"events": packed}).encode(),
        "string+gzip-base64": json.dumps(packed).encode(),
    }


def _log(body: str, *, success: bool = True, rid: str = "log-1") -> WebhookLog:
    return WebhookLog(
        request_id=rid,
        delivery_dts=WHEN.isoformat(),
        request=body,
        request_headers=[{"name": "Content-Type", "value": "application/json"}],
        response='{"status":"ok","delivery_id":"relay-d-1","events":2}',
        status_code=200 if success else 503,
        success=success,
    )


@pytest.mark.parametrize("shape", sorted(_bodies()))
def test_every_body_shape_rebuilds_to_the_same_records_and_ce_ids(shape: str) -> None:
    found = rebuild(_log(_bodies()[shape].decode()), _builder(), SETTINGS.intake)
    assert isinstance(found, Rebuilt)
    assert [r.value for r in found.records] == ORDERS  # the bytes as sent: 49.950 stays
    assert [ce_id(r) for r in found.records] == [event_id("order_create", raw) for raw in ORDERS]
    assert [r.key for r in found.records] == [b"A-1", b"A-2"]
    assert found.names == ("order_create", "order_create")
    # relay's own delivery id, from its answer in the log; distinct from the log request id
    headers = dict(found.records[0].headers)
    assert headers["relay_delivery_id"] == b"relay-d-1"


def test_a_body_cut_at_100000_characters_is_truncated_not_malformed() -> None:
    body = '{"events":[{"order_create":{"order_id":"A-1","pad":"' + "x" * LOGGED_BODY_LIMIT
    cut = rebuild(_log(body[:LOGGED_BODY_LIMIT]), _builder(), SETTINGS.intake)
    assert isinstance(cut, NotRebuilt) and cut.truncated
    short = rebuild(_log('{"events": 5}'), _builder(), SETTINGS.intake)
    assert isinstance(short, NotRebuilt) and not short.truncated
    assert "bad_events" in short.reason


def _delivery(summary: WebhookLogSummary, log: WebhookLog | None = None) -> LoggedDelivery:
    return LoggedDelivery(summary, WHEN, log)


def _judge(index: KafkaIndex, pending_for: timedelta = timedelta(hours=24)) -> Judge:
    router, keys = TopicRouter(SETTINGS.topics), KeyPicker(SETTINGS.keys)
    return Judge(router, keys, index, timedelta(hours=1), pending_for)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_events_are_in_kafka_by_ce_id_within_the_window_and_missing_outside_it() -> None:
    log = _log(_bodies()["object"].decode())
    rebuilt = rebuild(log, _builder(), SETTINGS.intake)
    assert isinstance(rebuilt, Rebuilt)
    first, second = (ce_id(r) for r in rebuilt.records)
    index = KafkaIndex()
    index.add("ultracart.order_create", first, b"A-1", _ms(WHEN) + 50, False)
    # The same event two hours later is not this delivery's record.
    index.add("ultracart.order_create", second, b"A-2", _ms(WHEN + timedelta(hours=2)), False)
    summary = WebhookLogSummary(request_id="log-1", success=True)
    judged = _judge(index).judge(_delivery(summary, log), rebuilt, timedelta(minutes=5))
    assert [e.outcome for e in judged.events] == ["in_kafka", "missing"]
    assert [e.ce_id for e, _ in judged.repairable] == [second]
    # A repair, written whenever, counts: a second audit after --repair finds it.
    index.add("ultracart.order_create", second, b"A-2", _ms(WHEN + timedelta(days=3)), True)
    again = _judge(index).judge(_delivery(summary, log), rebuilt, timedelta(minutes=5))
    assert [e.outcome for e in again.events] == ["in_kafka", "in_kafka"]


def test_a_failed_delivery_is_pending_until_the_bound_then_missing() -> None:
    summary = WebhookLogSummary(
        request_id="log-2", success=False, status_code=503, event_names=["order_create"]
    )
    assert settled_by_summary(summary, WHEN, _window(now=WHEN + timedelta(hours=1)))
    young = _judge(KafkaIndex()).judge(_delivery(summary), None, timedelta(hours=1))
    [event] = young.events
    assert event.outcome == "pending" and event.checked_by == "summary"
    assert not settled_by_summary(summary, WHEN, _window(now=WHEN + timedelta(hours=30)))
    log = _log(_bodies()["array"].decode(), success=False, rid="log-2")
    rebuilt = rebuild(log, _builder(), SETTINGS.intake)
    old = _judge(KafkaIndex()).judge(_delivery(summary, log), rebuilt, timedelta(hours=30))
    assert [e.outcome for e in old.events] == ["missing", "missing"]


def test_a_truncated_delivery_is_checked_by_its_order_ids_as_keys() -> None:
    summary = WebhookLogSummary(
        request_id="log-3",
        success=True,
        event_names=["order_create"],
        order_ids=["A-1", "A-2"],
    )
    index = KafkaIndex()
    index.add("ultracart.order_create", "some-id", b"A-1", _ms(WHEN), False)
    cut = NotRebuilt(True, "cut")
    judged = _judge(index).judge(_delivery(summary), cut, timedelta(minutes=5))
    by_key = {e.key: e for e in judged.events}
    assert by_key["A-1"].outcome == "unverifiable" and by_key["A-1"].checked_by == "key"
    assert by_key["A-2"].outcome == "missing" and "reflow order_create" in str(by_key["A-2"].advice)
    assert all(e.truncated and e.order_ids == ("A-1", "A-2") for e in judged.events)
    assert not judged.repairable  # nothing to republish from a cut body
    items = WebhookLogSummary(request_id="log-4", success=True, event_names=["item_update"])
    [event] = _judge(index).judge(_delivery(items), cut, timedelta(minutes=5)).events
    assert event.outcome == "unverifiable" and "no id to look for" in str(event.reason)
    both = WebhookLogSummary(
        request_id="log-5",
        success=True,
        event_names=["item_update", "order_create"],
        order_ids=["A-1"],
    )
    events = _judge(index).judge(_delivery(both), cut, timedelta(minutes=5)).events
    assert [(e.event_name, e.checked_by, e.outcome) for e in events] == [
        ("item_update", "summary", "unverifiable"),
        ("order_create", "key", "unverifiable"),
    ]


def _window(now: datetime) -> Window:
    return Window(WHEN - timedelta(hours=1), None, timedelta(hours=24), now)


def test_repair_records_keep_bytes_and_ce_id_add_the_source_and_write_each_event_once() -> None:
    log = _log(_bodies()["object"].decode())
    rebuilt = rebuild(log, _builder(), SETTINGS.intake)
    assert isinstance(rebuilt, Rebuilt)
    summary = WebhookLogSummary(request_id="log-1", success=True)
    judged = _judge(KafkaIndex()).judge(_delivery(summary, log), rebuilt, timedelta(0))
    twice = judged.repairable + judged.repairable  # the same events from two deliveries
    records = repair_records(twice)
    assert len(records) == 2
    for record, original in zip(records, rebuilt.records, strict=True):
        assert record.value == original.value and ce_id(record) == ce_id(original)
        assert dict(record.headers)[REPAIRED_FROM_HEADER] == b"ultracart-log:log-1"
        assert REPAIRED_FROM_HEADER not in dict(original.headers)


def test_the_budget_paces_calls_evenly_and_stops_at_its_ceiling() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = CallBudget(1000, 3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        budget.spend()
    assert slept == [pytest.approx(3.6), pytest.approx(3.6)]
    with pytest.raises(BudgetSpent):
        budget.spend()
    assert budget.spent == 3


def test_report_counts_and_exit_codes() -> None:
    report = AuditReport(webhook_oid=1, since="s", until=None, deliveries=1)
    assert report.exit_code == 0
    log = _log(_bodies()["object"].decode())
    rebuilt = rebuild(log, _builder(), SETTINGS.intake)
    summary = WebhookLogSummary(request_id="log-1", success=True)
    judged = _judge(KafkaIndex()).judge(_delivery(summary, log), rebuilt, timedelta(0))
    report.events.extend(judged.events)
    counts = report.counts()
    assert counts == {
        "deliveries": 1,
        "events": 2,
        "in_kafka": 0,
        "missing": 2,
        "unverifiable": 0,
        "pending": 0,
        "repaired": 0,
        "missing_after_repair": 2,
    }
    assert report.exit_code == 1
    for event in report.events:
        event.repaired = True
    assert report.exit_code == 0
    report.complete = False  # the log was not read to its end: nothing can be claimed
    assert report.exit_code == 1
    document = report.to_json()
    assert document["detail"][0]["log_request_id"] == "log-1"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only() -> None:
    budget = CallBudget(1000)
    assert progress_line(budget, io.StringIO()) is None
    terminal = _Terminal()
    show = progress_line(budget, terminal)
    assert show is not None
    show(3, 10)
    show(10, 10)
    assert "3/10 deliveries read" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["webhooks", "audit"],
        ["webhooks", "audit", "--since", "yesterday"],
        ["webhooks", "audit", "--since", "2h", "--max-api-calls", "0"],
        ["webhooks", "audit", "--since", "1h", "--until", "2h"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from relay import cli

    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    assert code == 2
    assert capsys.readouterr().err


def test_every_run_updates_the_metrics_and_a_failed_run_is_counted() -> None:
    import threading

    from prometheus_client import generate_latest

    from relay.audit.continuous import run_every
    from relay.audit.metrics import AuditMetrics
    from relay.control.errors import TransportError

    metrics = AuditMetrics()
    stop = threading.Event()
    calls = [0]

    def run_once() -> AuditReport:
        calls[0] += 1
        if calls[0] == 2:
            raise TransportError("UltraCart unreachable")
        if calls[0] == 3:
            stop.set()
        report = AuditReport(webhook_oid=1, since="s", until=None, deliveries=3)
        log = _log(_bodies()["object"].decode())
        rebuilt = rebuild(log, _builder(), SETTINGS.intake)
        summary = WebhookLogSummary(request_id="log-1", success=True)
        report.events = (
            _judge(KafkaIndex()).judge(_delivery(summary, log), rebuilt, timedelta(0)).events
        )
        return report

    assert run_every(run_once, 0.0, metrics, stop, clock=lambda: 1234.0) == 3
    text = generate_latest(metrics.registry).decode()
    assert 'relay_audit_runs_total{result="missing"} 2.0' in text
    assert 'relay_audit_runs_total{result="error"} 1.0' in text
    assert 'relay_audit_events{outcome="missing"} 2.0' in text
    assert "relay_audit_last_success_timestamp_seconds 1234.0" in text
    assert "relay_audit_deliveries 3.0" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--since", "2026-12-01T00:00Z", "--every", "1h"],
        ["--since", "2h", "--until", "1h", "--every", "1h"],
        ["--since", "2h", "--metrics-port", "9999"],
    ],
)
def test_every_needs_a_span_and_no_until(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from relay import cli

    assert cli.main(["webhooks", "audit", *argv]) == 2
    assert "relay: error: --" in capsys.readouterr().err
