"""A record the broker refuses for good leaves the spool for quarantine; the rest flow on.

The topic has a small max.message.bytes, which the broker enforces per record batch and
relay's client-side limit (1 MB) does not know about. The poison is an event whose value
does not compress below it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson

from tests.support.broker import LocalBroker
from tests.support.kafka import consume_all, create_topics
from tests.support.metrics import by_label, metric_sum
from tests.support.relay import RelayProcess, order_delivery, topic_env
from tests.support.waiting import wait_until

MAX_MESSAGE_BYTES = 4096
GOOD = [f"good-{n}" for n in range(6)]


def poison_delivery(order_id: str) -> bytes:
    """One order_create whose value is ~16 KB of incompressible text."""
    note = base64.b64encode(os.urandom(12_000)).decode()
    return orjson.dumps({"events": [{"order_create": {"order_id": order_id, "note": note}}]})


def small_topic(bootstrap: str, prefix: str) -> str:
    topic = prefix + "order_create"
    # One partition: the poison and the good records share it, and so their batches.
    create_topics(
        bootstrap, [topic], partitions=1, config={"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    )
    return topic


def test_poison_in_the_spool_is_quarantined_and_the_deliveries_behind_it_flow(
    private_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    topic = small_topic(private_broker.bootstrap, topic_prefix)
    spool = tmp_path / "spool"
    env = {
        **topic_env(topic_prefix),
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "2",
        "RELAY_SPOOL__ENABLED": "true",
        "RELAY_SPOOL__DIRECTORY": str(spool),
    }
    relay = RelayProcess(private_broker.bootstrap, env, log_path=tmp_path / "relay.log")
    relay.start()
    try:
        # With Kafka away everything is spooled, in order: good, poison, then more good.
        private_broker.stop()
        answers = [relay.post(order_delivery(key)).status_code for key in GOOD[:3]]
        answers.append(relay.post(poison_delivery("poison")).status_code)
        answers += [relay.post(order_delivery(key)).status_code for key in GOOD[3:]]
        assert answers == [200] * 7
        assert metric_sum(relay.metrics(), "relay_spool_records") == 7
        private_broker.start()
        wait_until(
            lambda: metric_sum(relay.metrics(), "relay_spool_records") == 0,
            60,
            interval=0.2,
            message="the spool stalled behind the poison record",
        )
        scrape = relay.metrics()
        # The spool is empty, so new deliveries go straight to Kafka again.
        after = relay.post(order_delivery("after"))
    finally:
        assert relay.stop() == 0

    assert after.status_code == 200
    assert by_label(scrape, "relay_spool_quarantined_total", "reason") == {
        "msg_size_too_large": 1.0
    }
    records = consume_all(private_broker.bootstrap, [topic], idle=2.0)
    keys = [r.key.decode() for r in records if r.key is not None]
    # Every good delivery, in the order accepted (duplicates with the same ce_id allowed).
    assert list(dict.fromkeys(keys)) == [*GOOD, "after"]
    quarantined = list((spool / "quarantine").glob("*.delivery"))
    assert len(quarantined) == 1 and "msg_size_too_large" in quarantined[0].name
    assert b"poison" in quarantined[0].read_bytes()
    log = (tmp_path / "relay.log").read_text()
    assert "moved to quarantine" in log


def test_poison_without_the_spool_is_a_503_naming_the_refusal(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    small_topic(kafka_bootstrap, topic_prefix)
    env = {**topic_env(topic_prefix), "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "5"}
    relay = RelayProcess(kafka_bootstrap, env, log_path=tmp_path / "relay.log")
    relay.start()
    try:
        refused = relay.post(poison_delivery("poison"))
        good = relay.post(order_delivery("good"))
        scrape = relay.metrics()
    finally:
        assert relay.stop() == 0

    assert refused.status_code == 503
    assert refused.json()["error"] == "kafka_refused", refused.text
    assert good.status_code == 200
    assert metric_sum(scrape, "relay_produce_errors_total", error="MSG_SIZE_TOO_LARGE") == 1
