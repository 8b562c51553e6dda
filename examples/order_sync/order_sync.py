"""order-sync: keep a SQLite table of UltraCart orders and their items current from relay's topics.

An example consumer (docs/consumers.md), runnable as is:

    python examples/order_sync/order_sync.py --bootstrap localhost:9092 \
        --topic ultracart.orders --db orders.db

What it shows:

- **Commit after processing.** A consumer group with auto-commit off: a batch of records is
  applied in one SQLite transaction, and only then are its offsets committed to Kafka. A
  crash between the two re-delivers the batch, which the next point makes harmless.
- **Idempotent by ce_id.** Every applied ``ce_id`` is written to ``applied_events`` in the
  same transaction as its effect; a record whose ``ce_id`` is already there (UltraCart
  re-sent the delivery, relay's spool replayed it, this consumer crashed before committing)
  is skipped. Ids older than ``--dedupe-window`` are forgotten.
- **Key order.** relay keys order events by ``order_id``, so one order's events sit on one
  partition, in the order relay received them, *within one topic*. Route every order event
  to one topic (``[[topics.patterns]] match = "order_*"``) for that order to hold across
  event types; with one topic per event, an ``order_update`` may be read before the
  ``order_create`` it follows.
- **Safe across restarts.** State and the ids applied live in SQLite; offsets in Kafka.
  SIGTERM or Ctrl-C finishes the current batch, commits and leaves the group.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

logger = logging.getLogger("order_sync")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    merchant_id TEXT,
    current_stage TEXT,
    total REAL,
    document TEXT NOT NULL,      -- the order exactly as relay published it
    last_event TEXT NOT NULL,
    last_ce_id TEXT NOT NULL,
    applied_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    merchant_item_id TEXT,
    quantity REAL,
    description TEXT,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE IF NOT EXISTS applied_events (
    ce_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    order_id TEXT,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    applied_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS skipped_duplicates (
    ce_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL
);
"""

TYPE_PREFIX = "com.ultracart.webhook."
DELETES = frozenset({"order_delete"})


class OrderStore:
    def __init__(self, path: str, dedupe_window_s: float) -> None:
        # isolation_level=None: transactions are begun and committed explicitly below.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._window = dedupe_window_s

    def close(self) -> None:
        self._db.close()

    def apply_batch(self, records: Iterable[Message]) -> tuple[int, int]:
        """Apply records in one transaction; return (applied, duplicates)."""
        applied = duplicates = 0
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "DELETE FROM applied_events WHERE applied_at < ?", (now - self._window,)
            )
            for msg in records:
                if self._apply(msg, now):
                    applied += 1
                else:
                    duplicates += 1
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return applied, duplicates

    def _apply(self, msg: Message, now: float) -> bool:
        headers = _headers(msg)
        ce_id = headers["ce_id"]
        event = headers.get("ce_type", "").removeprefix(TYPE_PREFIX)
        order: dict[str, Any] = json.loads(msg.value() or b"{}")
        order_id = order.get("order_id")
        where = (msg.topic(), msg.partition(), msg.offset())
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO applied_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ce_id, event, order_id, *where, now),
        ).rowcount
        if not inserted:
            self._db.execute("INSERT INTO skipped_duplicates VALUES (?, ?, ?, ?)", (ce_id, *where))
            return False
        if not isinstance(order_id, str):
            return True  # not an order we can place; counted as applied, nothing to keep
        if event in DELETES:
            self._db.execute("DELETE FROM order_items WHERE order_id = ?", (order_id,))
            self._db.execute("DELETE FROM orders WHERE order_id = ?", (order_id,))
            return True
        total = ((order.get("summary") or {}).get("total") or {}).get("value")
        self._db.execute(
            """INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, 1)
               ON CONFLICT(order_id) DO UPDATE SET merchant_id = excluded.merchant_id,
                 current_stage = excluded.current_stage, total = excluded.total,
                 document = excluded.document, last_event = excluded.last_event,
                 last_ce_id = excluded.last_ce_id, applied_count = applied_count + 1""",
            (
                order_id,
                order.get("merchant_id"),
                order.get("current_stage"),
                total,
                (msg.value() or b"").decode(),
                event,
                ce_id,
            ),
        )
        # The object is the whole current state: its items replace the previous ones.
        self._db.execute("DELETE FROM order_items WHERE order_id = ?", (order_id,))
        self._db.executemany(
            "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)",
            [
                (
                    order_id,
                    line,
                    item.get("merchant_item_id"),
                    item.get("quantity"),
                    item.get("description"),
                )
                for line, item in enumerate(order.get("items") or [])
            ],
        )
        return True


def _headers(msg: Message) -> dict[str, str]:
    raw = msg.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return {
        name: value.decode() if isinstance(value, bytes) else (value or "") for name, value in items
    }


def run(args: argparse.Namespace) -> int:
    store = OrderStore(args.db, args.dedupe_window)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    consumer.subscribe(list(args.topic))
    logger.info("consuming %s as group %s", args.topic, args.group)
    try:
        while not stopping:
            batch = consumer.consume(num_messages=args.batch, timeout=0.5)
            records = []
            for msg in batch:
                err = msg.error()
                if err is None:
                    records.append(msg)
                elif err.code() != KafkaError._PARTITION_EOF and not err.retriable():
                    raise KafkaException(err)
            if not records:
                continue
            applied, duplicates = store.apply_batch(records)
            # Offsets only after SQLite committed; synchronous, so a stop right after this
            # line loses nothing.
            consumer.commit(asynchronous=False)
            logger.info("applied %d, skipped %d duplicate(s)", applied, duplicates)
    finally:
        consumer.close()
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep SQLite orders current from relay.")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument(
        "--topic", action="append", required=True, help="topic holding order events (repeatable)"
    )
    parser.add_argument("--group", default="order-sync", help="consumer group id")
    parser.add_argument("--db", required=True, help="SQLite file")
    parser.add_argument("--batch", type=int, default=100, help="records per transaction")
    parser.add_argument(
        "--dedupe-window",
        type=float,
        default=7 * 86400,
        help="seconds a ce_id is remembered (default 7 days)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s order-sync %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
