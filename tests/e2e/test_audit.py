"""`relay webhooks audit` end to end: the emulator delivers to `relay serve` on the real Kafka,
records then go missing the ways they do in production, and the audit must find exactly
those events from UltraCart's log, repair them with their ce_ids, and find nothing the
second time.

Ways of losing records: Kafka's DeleteRecords on part of a topic, a topic deleted and
recreated, and a proxy in front of relay that answers 200 without forwarding. Besides: a
delivery that failed and was retried (pending, then in Kafka), and an order larger than
UltraCart's log keeps (unverifiable, with its order id).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from relay import cli
from relay.emulator.app import create_emulator_app
from relay.emulator.options import EmulatorOptions
from relay.emulator.store import StoredWebhook
from relay.events.records import event_id
from relay.intake.parsing import parse_delivery
from tests.e2e.audit_support import (
    SIMPLE_KEY,
    AuditRun,
    Blackhole,
    read_topics,
    run_audit,
    webhooks_toml,
)
from tests.support.net import free_port
from tests.support.relay import CREDENTIALS, RelayProcess, serve_env, topic_env
from tests.support.server_thread import ServerThread
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# The emulator's bucket holds an hour's calls: pacing at 1,000 an hour would only slow the
# test down (the budget has its own test below).
FAST = ("--since", "10m", "--api-calls-per-hour", "36000")


def _queue(api: str, event_name: str, **body: object) -> None:
    answer = httpx2.post(f"{api}/_emulator/events", json={"event_name": event_name, **body})
    assert answer.status_code == 200, answer.text


def _settled(webhook: StoredWebhook, delivered: int) -> None:
    wait_until(
        lambda: not webhook.queue and webhook.delivered_events >= delivered,
        timeout=60,
        message=f"the emulator did not deliver {delivered} events",
    )


def _audit_env(monkeypatch: pytest.MonkeyPatch, bootstrap: str, prefix: str) -> None:
    # The audit reads relay's routing from relay's settings: the same as the relay under test.
    for name, value in topic_env(prefix).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELAY_KAFKA__BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("RELAY_AUTH__BASIC_CREDENTIALS", ":".join(CREDENTIALS))
    monkeypatch.delenv("RELAY_CONFIG", raising=False)


def _ends(bootstrap: str, topics: list[str]) -> dict[str, int]:
    return {t: len(read_topics(bootstrap, [t])) for t in topics}


def test_audit_finds_what_went_missing_and_repair_restores_it(
    relay: RelayProcess,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _audit_env(monkeypatch, kafka_bootstrap, topic_prefix)
    items, orders = topic_prefix + "item_update", topic_prefix + "order_create"
    options = EmulatorOptions(
        simple_keys=(SIMPLE_KEY,),
        items=40,
        orders=10,
        retry_base_seconds=0.5,
        delivery_tick_seconds=0.02,
        loopback_only=True,
    )
    app = create_emulator_app(options)
    blackhole = Blackhole()
    with ServerThread(app) as emulator, blackhole.serving() as blackhole_url:
        # Compressed (base64 of gzip): five expanded items would not fit in a log uncompressed.
        config = webhooks_toml(
            tmp_path, emulator.url, relay.url, ["item_update", "order_create"], compress=True
        )
        assert cli.main(["webhooks", "apply", "--config", str(config)]) == 0
        [webhook] = app.state.emulator.webhooks.values()

        # Deliveries that reach Kafka: 10 items, 6 orders.
        _queue(emulator.url, "item_update", count=10)
        _queue(emulator.url, "order_create", count=6)
        _settled(webhook, 16)
        first = run_audit(capsys, config, *FAST)
        assert first.code == 0, first.err
        assert first.counts["events"] == 16 == first.counts["in_kafka"], json.dumps(
            first.document, indent=1
        )

        # A delivery that fails (nothing listens), then succeeds on UltraCart's retry.
        webhook.settings["webhook_url"] = f"http://127.0.0.1:{free_port()}/webhooks/ultracart"
        _queue(emulator.url, "item_update", count=1)
        wait_until(lambda: webhook.consecutive_failures >= 1, timeout=30)
        webhook.settings["webhook_url"] = relay.url
        _settled(webhook, 17)

        # Three items delivered to a proxy that answers 200 and forwards nothing.
        webhook.settings["webhook_url"] = blackhole_url
        _queue(emulator.url, "item_update", count=3)
        _settled(webhook, 20)
        webhook.settings["webhook_url"] = relay.url
        swallowed = {
            event_id(e.name, e.raw): e.raw
            for body in blackhole.bodies
            for e in parse_delivery(body, max_events=100, max_inflated_bytes=10**7).events
        }
        assert len(swallowed) == 3

        # DeleteRecords: the first 2 records of every item_update partition (fewer if it has
        # fewer: a cut beyond the end is out of range).
        kept = {r.header("ce_id"): r.value for r in read_topics(kafka_bootstrap, [items, orders])}
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        on_items = read_topics(kafka_bootstrap, [items])
        sizes = Counter(r.partition for r in on_items)
        cut = [TopicPartition(items, p, min(2, n)) for p, n in sizes.items()]
        deleted = {r.header("ce_id") for r in on_items if r.offset < 2}
        assert deleted
        for future in admin.delete_records(cut).values():
            future.result(timeout=10)
        # And the order_create topic deleted and created again, empty.
        lost_orders = {r.header("ce_id") for r in read_topics(kafka_bootstrap, [orders])}
        assert len(lost_orders) == 6
        count = len(admin.list_topics(timeout=10).topics[orders].partitions)
        admin.delete_topics([orders])[orders].result(timeout=20)
        wait_until(lambda: orders not in admin.list_topics(timeout=10).topics, timeout=30)
        recreate = admin.create_topics([NewTopic(orders, count, 1)])
        wait_until(lambda: _created(recreate[orders]), timeout=30, ignore=(Exception,))

        # An order larger than UltraCart's log keeps of a body: it reaches Kafka whole.
        # Random text, so that compressed it is still over 100,000 characters.
        notes = os.urandom(150_000).hex()
        big = {"merchant_id": "DEMO", "order_id": "BIG-0001", "special_instructions": notes}
        _queue(emulator.url, "order_create", objects=[big])
        _settled(webhook, 21)
        wait_until(lambda: read_topics(kafka_bootstrap, [orders]), timeout=30)

        expected = deleted | lost_orders | set(swallowed)
        found = run_audit(capsys, config, *FAST)
        assert found.code == 1, found.err
        assert {e["ce_id"] for e in found.with_outcome("missing")} == expected
        [pending] = found.with_outcome("pending")
        assert pending["event_name"] == "item_update" and pending["checked_by"] == "summary"
        [cut_short] = found.with_outcome("unverifiable")
        assert cut_short["order_ids"] == ["BIG-0001"] and cut_short["truncated"] is True
        assert cut_short["checked_by"] == "key" and cut_short["key"] == "BIG-0001"
        assert found.counts["missing"] == len(expected)
        # 17 items and 7 orders logged as delivered, plus the failed attempt's item.
        assert found.counts["events"] == len(expected) + found.counts["in_kafka"] + 2

        repaired = run_audit(capsys, config, *FAST, "--repair")
        assert repaired.code == 0, repaired.err
        assert repaired.counts["repaired"] == len(expected)
        assert repaired.counts["missing_after_repair"] == 0
        logs_of = {e["ce_id"]: e["log_request_id"] for e in repaired.with_outcome("missing")}
        records = read_topics(kafka_bootstrap, [items, orders])
        restored = {r.header("ce_id"): r for r in records if r.header("relay_repaired_from")}
        assert set(restored) == expected
        originals: dict[str | None, bytes] = dict(kept)
        originals.update(swallowed)
        for ce_id, record in restored.items():
            assert record.value == originals[ce_id]  # byte for byte
            assert record.header("relay_repaired_from") == f"ultracart-log:{logs_of[ce_id]}"
            assert record.topic == (orders if ce_id in lost_orders else items)

        before = _ends(kafka_bootstrap, [items, orders])
        again = run_audit(capsys, config, *FAST, "--repair")
        assert again.code == 0, again.err
        assert again.counts["missing"] == 0 and again.counts["repaired"] == 0
        assert _ends(kafka_bootstrap, [items, orders]) == before  # nothing written

        # Continuously: `--every` as its own process, its results as metrics, SIGTERM ends it.
        started = time.time()
        watched = _every(config, relay, topic_prefix)
        try:
            metrics = wait_until(
                lambda: _scraped(watched.port, 'relay_audit_runs_total{result="ok"}', 2),
                timeout=60,
                message="the --every audit did not complete two runs",
            )
        finally:
            watched.process.send_signal(signal.SIGTERM)
            assert watched.process.wait(timeout=20) == 0
        assert 'relay_audit_events{outcome="missing"} 0.0' in metrics
        assert 'relay_audit_events{outcome="unverifiable"} 1.0' in metrics
        last = re.search(r"^relay_audit_last_success_timestamp_seconds (\S+)$", metrics, re.M)
        assert last is not None and float(last.group(1)) >= started


@dataclass
class _Every:
    process: subprocess.Popen[bytes]
    port: int


def _every(config: Path, relay: RelayProcess, prefix: str) -> _Every:
    port = free_port()
    env = {
        **serve_env(
            bootstrap=relay.bootstrap, port=relay.port, admin_port=0, credentials=CREDENTIALS
        ),
        **topic_env(prefix),
    }
    command = [sys.executable, "-m", "relay", "webhooks", "audit", "--config", str(config)]
    command += [*FAST, "--every", "1s", "--metrics-port", str(port), "--metrics-host"]
    command += ["127.0.0.1", "--json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    return _Every(process, port)


def _scraped(port: int, series: str, at_least: float) -> str | None:
    try:
        text = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx2.HTTPError:
        return None
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return text if match and float(match.group(1)) >= at_least else None


def _created(future: object) -> bool:
    future.result(timeout=1)  # type: ignore[attr-defined]
    return True


def test_audit_keeps_to_its_api_budget_under_the_emulators_rate_limit(
    relay: RelayProcess,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _audit_env(monkeypatch, kafka_bootstrap, topic_prefix)
    # 2 calls a second, and a bucket of only 3: a client that does not pace itself is
    # refused within a few calls.
    per_hour = 7200
    options = EmulatorOptions(
        simple_keys=(SIMPLE_KEY,),
        rate_limit_per_hour=per_hour,
        rate_limit_burst=3,
        delivery_tick_seconds=0.02,
        loopback_only=True,
    )
    app = create_emulator_app(options)
    state = app.state.emulator
    with ServerThread(app) as emulator:
        # Backoff from 0.5 s (never below 0.25 s): five retries outlast a slot of the bucket
        # (0.5 s), so the hurried run below always gets through, whatever the jitter draws.
        config = webhooks_toml(
            tmp_path, emulator.url, relay.url, ["item_update"], maximum_events=2, retry_base=0.5
        )
        assert cli.main(["webhooks", "apply", "--config", str(config)]) == 0
        [webhook] = state.webhooks.values()
        _queue(emulator.url, "item_update", count=16)  # 8 deliveries of 2 items: 8 logs to read
        _settled(webhook, 16)
        time.sleep(2)  # let the bucket drain after apply's calls

        refused = state.rejected[429]
        started = time.monotonic()
        paced_at = ("--api-calls-per-hour", str(per_hour))
        paced = run_audit(capsys, config, "--since", "10m", *paced_at)
        elapsed = time.monotonic() - started
        assert paced.code == 0, paced.err
        assert paced.counts["in_kafka"] == 16 and paced.counts["deliveries"] == 8
        # One list of webhooks, one page of summaries, one log per delivery; no 429.
        assert paced.document["api_calls"] == 10
        assert state.rejected[429] == refused, paced.err
        assert elapsed >= 9 * 3600 / per_hour

        # The same audit at 20 times the rate overflows the bucket; the 429s are waited
        # out and the audit still completes.
        time.sleep(2)
        hurried = run_audit(
            capsys, config, "--since", "10m", "--api-calls-per-hour", str(per_hour * 20)
        )
        assert hurried.code == 0, hurried.err
        assert state.rejected[429] > refused
        assert "UltraCart rate limit (429)" in hurried.err
        assert hurried.counts["in_kafka"] == 16

        # --max-api-calls bounds the run: what it cannot read is unverifiable, not missing.
        time.sleep(2)
        bounded = run_audit(capsys, config, "--since", "10m", "--max-api-calls", "5", *paced_at)
        assert bounded.document["api_calls"] == 5
        # 1 list call, 1 page of summaries, 3 logs read: 5 deliveries left unread.
        assert bounded.counts["unverifiable"] == 5 and bounded.counts["in_kafka"] == 6
        assert bounded.code == 0
        _check_reports_shape(bounded)

        # An item larger than the log keeps: unverifiable, and --reflow asks UltraCart to
        # re-send every item, once.
        big = {"merchant_id": "DEMO", "merchant_item_oid": 1, "notes": os.urandom(60_000).hex()}
        _queue(emulator.url, "item_update", objects=[big])
        _settled(webhook, 17)
        time.sleep(2)
        reflowed = run_audit(capsys, config, "--since", "10m", "--reflow", *paced_at)
        assert reflowed.code == 0, reflowed.err
        [cut_short] = reflowed.with_outcome("unverifiable")
        assert cut_short["truncated"] is True and "reflow item_update" in cut_short["advice"]
        assert reflowed.document["reflows"] == [{"event_name": "item_update", "queued": True}]
        assert len(webhook.queue) + webhook.delivered_events >= 17 + options.items


def _check_reports_shape(run: AuditRun) -> None:
    for key in ("deliveries", "events", "in_kafka", "missing", "unverifiable", "pending"):
        assert key in run.counts
    assert "repaired" in run.counts
    for event in run.document["detail"]:
        for key in ("log_request_id", "event_name", "topic", "key", "ce_id", "outcome"):
            assert key in event
