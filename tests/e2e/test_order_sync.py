"""The example consumer (examples/order_sync) fed by a real ``relay serve`` over real Kafka.

Deliveries go through relay to the consumer; the consumer is killed (SIGKILL, no chance to
commit) in the middle and started again, and duplicate deliveries are injected (the same
body posted twice, as UltraCart's retry would). At the end the SQLite rows equal the last
object sent for each order, deleted orders are gone, and no ce_id was applied twice.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.kafka import create_topics
from tests.support.relay import REPO_ROOT, RelayProcess, running_relay, topic_env
from tests.support.waiting import wait_until

CONSUMER = REPO_ROOT / "examples" / "order_sync" / "order_sync.py"
ORDERS = 12

pytestmark = pytest.mark.slow


def _order(n: int, stage: str, quantity: int) -> dict[str, Any]:
    return {
        "merchant_id": "DEMO",
        "order_id": f"DEMO-{n:04d}",
        "current_stage": stage,
        "summary": {"total": {"currency_code": "USD", "value": 10.5 * quantity}},
        "items": [
            {
                "merchant_item_id": f"SKU-{n}-{line}",
                "quantity": quantity + line,
                "description": f"item {line} of order {n}",
            }
            for line in range(1 + n % 3)
        ],
    }


class OrderSync:
    def __init__(self, bootstrap: str, topic: str, group: str, db: Path, log: Path) -> None:
        self.command = [
            sys.executable,
            str(CONSUMER),
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--db",
            str(db),
            "--batch",
            "5",
        ]
        self.db = db
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log)

    def stop(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(30)

    def applied(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as db:
            try:
                return int(db.execute("SELECT count(*) FROM applied_events").fetchone()[0])
            except sqlite3.OperationalError:
                return 0


@pytest.fixture
def orders_relay(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[RelayProcess]:
    # Every order event on one topic: the order of one order's events then holds across
    # event types (docs/consumers.md, "Ordering").
    config = tmp_path / "relay.toml"
    config.write_text(f'[[topics.patterns]]\nmatch = "order_*"\ntopic = "{topic_prefix}orders"\n')
    create_topics(kafka_bootstrap, [topic_prefix + "orders"], partitions=3)
    env = {**topic_env(topic_prefix), "RELAY_CONFIG": str(config)}
    with running_relay(kafka_bootstrap, env, tmp_path / "relay.log") as relay:
        yield relay


def _post(relay: RelayProcess, events: list[tuple[str, dict[str, Any]]], times: int = 1) -> None:
    body = orjson.dumps({"events": [{name: obj} for name, obj in events]})
    for _ in range(times):
        assert relay.post(body).status_code == 200


def test_order_sync_converges_through_a_restart_and_duplicates(
    orders_relay: RelayProcess, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    consumer = OrderSync(
        kafka_bootstrap,
        topic_prefix + "orders",
        topic_prefix + "order-sync",
        tmp_path / "orders.db",
        tmp_path / "order-sync.log",
    )
    latest: dict[str, dict[str, Any]] = {}
    distinct_events: dict[str, int] = {}  # per order: events with distinct ce_ids
    posted = 0

    def send(name: str, obj: dict[str, Any], times: int = 1) -> None:
        nonlocal posted
        _post(orders_relay, [(name, obj)], times)
        posted += times
        latest[obj["order_id"]] = obj
        distinct_events[obj["order_id"]] = distinct_events.get(obj["order_id"], 0) + 1

    consumer.start()
    # Round 1: every order created; every third one delivered twice (a retried delivery).
    for n in range(ORDERS):
        send("order_create", _order(n, "Accounts Receivable", 1), times=2 if n % 3 == 0 else 1)
    wait_until(lambda: consumer.applied() >= 4, timeout=60, message="consumer applied nothing")

    # Killed mid-stream: whatever it applied but did not commit comes again after the restart.
    send("order_update", _order(0, "Shipping Department", 2))
    assert consumer.stop(signal.SIGKILL) == -signal.SIGKILL
    # Round 2 while it is down: updates, a delete, and duplicates of both kinds.
    for n in range(0, ORDERS, 2):
        send("order_update", _order(n, "Completed Order", 3), times=2 if n % 4 == 0 else 1)
    send("order_delete", latest["DEMO-0005"], times=2)
    latest.pop("DEMO-0005")
    consumer.start()
    # Round 3 after the restart: a re-send of a round-2 object (same bytes, same ce_id).
    _post(orders_relay, [("order_update", _order(2, "Completed Order", 3))])
    posted += 1

    expected_applied = sum(distinct_events.values())
    wait_until(
        lambda: consumer.applied() >= expected_applied,
        timeout=90,
        message=f"consumer did not apply {expected_applied} events",
    )
    assert consumer.stop(signal.SIGTERM) == 0

    with sqlite3.connect(consumer.db) as db:
        orders = {
            row[0]: (orjson.loads(row[1]), row[2], row[3], row[4], row[5])
            for row in db.execute(
                "SELECT order_id, document, current_stage, total, merchant_id, applied_count "
                "FROM orders"
            )
        }
        items = db.execute(
            "SELECT order_id, line, merchant_item_id, quantity, description FROM order_items "
            "ORDER BY order_id, line"
        ).fetchall()
        applied = db.execute("SELECT ce_id, count(*) FROM applied_events GROUP BY ce_id").fetchall()
        skipped = db.execute("SELECT count(*) FROM skipped_duplicates").fetchone()[0]

    assert set(orders) == set(latest)
    for order_id, (document, stage, total, merchant, applied_count) in orders.items():
        sent = latest[order_id]
        assert document == sent
        assert (stage, total, merchant) == (
            sent["current_stage"],
            sent["summary"]["total"]["value"],
            "DEMO",
        )
        # Each distinct event applied exactly once: duplicates were skipped, not re-applied.
        assert applied_count == distinct_events[order_id], order_id
    assert items == [
        (order_id, line, item["merchant_item_id"], item["quantity"], item["description"])
        for order_id in sorted(latest)
        for line, item in enumerate(latest[order_id]["items"])
    ]
    assert len(applied) == expected_applied
    assert all(count == 1 for _, count in applied)
    # Every record relay wrote was either applied once or skipped as a duplicate.
    assert expected_applied + skipped >= posted
