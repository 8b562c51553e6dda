"""Run inside a container from relay's image on the compose network (confluent-kafka is
installed there): read every record on relay's topics from the beginning and print a
JSON summary for tests/compose/test_compose_e2e.py.

    python -I consume_events.py BOOTSTRAP EXPECTED TIMEOUT_SECONDS

Reads until EXPECTED records arrived and no more came for a few seconds (so extras, such
as duplicates, are counted too), or until the timeout.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaError

QUIET_SECONDS = 5.0


def main() -> None:
    bootstrap, expected, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"compose-e2e-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # A regex subscription only sees topics as metadata refreshes: refresh often.
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([r"^ultracart\..*"])
    topics: Counter[str] = Counter()
    header_sets: Counter[str] = Counter()
    without_key = 0
    count = 0
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if count >= expected and time.monotonic() - last > QUIET_SECONDS:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise SystemExit(f"consume_events: {error}")
            count += 1
            last = time.monotonic()
            topics[message.topic() or ""] += 1
            if not message.key():
                without_key += 1
            headers = message.headers() or []
            names = sorted(str(header[0]) for header in headers if header[0].startswith("ce_"))
            header_sets[",".join(names)] += 1
    finally:
        consumer.close()
    summary = {
        "count": count,
        "topics": dict(topics),
        "without_key": without_key,
        "ce_header_sets": dict(header_sets),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
