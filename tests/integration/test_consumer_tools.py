"""``relay tail`` and ``relay dead-letters`` against the real broker, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from relay.events.records import event_id
from tests.support.kafka import consume_all
from tests.support.relay import REPO_ROOT, RelayProcess, running_relay, topic_env


def _cli_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
        **topic_env(prefix),
        "RELAY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        **extra,
    }


def _relay(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _lines(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines() if line.strip()]


def _deliver(relay: RelayProcess, events: list[tuple[str, dict[str, object]]]) -> None:
    body = orjson.dumps({"events": [{name: obj} for name, obj in events]})
    assert relay.post(body).status_code == 200


def test_tail_filters_by_event_and_key_from_the_beginning_and_last_n(
    relay: RelayProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    _deliver(
        relay,
        [
            ("order_create", {"order_id": "A", "n": 1}),
            ("order_create", {"order_id": "B", "n": 2}),
            ("item_update", {"merchant_item_id": "SKU-1"}),
        ],
    )
    _deliver(relay, [("order_create", {"order_id": "A", "n": 3})])
    env = _cli_env(kafka_bootstrap, topic_prefix)

    every = _relay(["tail", "--from-beginning"], env)
    assert every.returncode == 0, every.stderr
    assert len(_lines(every.stdout)) == 4

    by_key = _relay(["tail", "--event", "order_create", "--key", "A", "--from-beginning"], env)
    assert by_key.returncode == 0, by_key.stderr
    records = _lines(by_key.stdout)
    assert [r["value"] for r in records] == [{"order_id": "A", "n": 1}, {"order_id": "A", "n": 3}]
    headers = records[0]["headers"]
    assert isinstance(headers, dict)
    assert headers["ce_type"] == "com.ultracart.webhook.order_create"
    assert records[0]["key"] == "A"
    assert records[0]["topic"] == topic_prefix + "order_create"

    last = _relay(["tail", "--event", "order_create", "--last", "1"], env)
    assert [r["value"] for r in _lines(last.stdout)] == [{"order_id": "A", "n": 3}]

    text = _relay(["tail", "--event", "item_update", "--from-beginning", "-o", "text"], env)
    assert text.returncode == 0, text.stderr
    assert f"{topic_prefix}item_update[" in text.stdout
    assert "key=SKU-1 com.ultracart.webhook.item_update" in text.stdout
    assert '"merchant_item_id": "SKU-1"' in text.stdout


def _sigint_as_at_a_terminal() -> None:
    """SIGINT back to its default in the child, as a shell gives a foreground command.

    A non-interactive shell starts a background job (``.ci/run > log &``) with SIGINT
    ignored, pytest and its children inherit that, and Python then leaves it ignored: the
    Ctrl-C this test sends would never arrive. The user at a terminal is what is tested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_tail_follows_until_ctrl_c_and_exits_cleanly(
    relay: RelayProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    _deliver(relay, [("order_create", {"order_id": "OLD"})])
    tail = subprocess.Popen(
        [sys.executable, "-m", "relay", "tail", "--event", "order_create", "--follow"],
        env=_cli_env(kafka_bootstrap, topic_prefix),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_sigint_as_at_a_terminal,
    )
    try:
        assert tail.stdout is not None
        # Following from the end: only records written after it started are printed. It
        # cannot say when its assignment is in place, so the new record is written until
        # one shows up.
        deadline = time.monotonic() + 30
        line = b""
        os.set_blocking(tail.stdout.fileno(), False)
        while not line and time.monotonic() < deadline:
            _deliver(relay, [("order_create", {"order_id": "NEW"})])
            time.sleep(0.5)
            line = tail.stdout.readline() or b""
        assert orjson.loads(line)["value"] == {"order_id": "NEW"}
        tail.send_signal(signal.SIGINT)
        _, errors = tail.communicate(timeout=15)
        assert tail.returncode == 130
        assert b"Traceback" not in errors
    finally:
        if tail.poll() is None:
            tail.kill()
        tail.communicate()


def test_dead_letters_list_show_and_replay_after_a_configuration_fix(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    objects = [{"order_id": f"DL-{n}", "merchant_id": "DEMO"} for n in range(3)]
    body = orjson.dumps({"events": [{"order_create": o} for o in objects]})
    # Small enough that a 3-event delivery is refused (422) and dead-lettered.
    settings = {**topic_env(topic_prefix), "RELAY_INTAKE__MAX_EVENTS_PER_DELIVERY": "2"}
    with running_relay(kafka_bootstrap, settings, tmp_path / "relay.log") as relay:
        assert relay.post(body).status_code == 422
        assert relay.post(b'{"events": [').status_code == 400
    env = _cli_env(kafka_bootstrap, topic_prefix)

    listed = _relay(["dead-letters", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    rows = orjson.loads(listed.stdout)
    assert sorted((r["reason"], r["status"], r["truncated"]) for r in rows) == [
        ("malformed_json", "400", False),
        ("too_many_events", "422", False),
    ]
    too_many = next(r for r in rows if r["reason"] == "too_many_events")
    broken = next(r for r in rows if r["reason"] != "too_many_events")

    shown = _relay(["dead-letters", "show", too_many["ref"], "--json"], env)
    assert orjson.loads(shown.stdout)["value"] == orjson.loads(body)

    # Still too many events under the same configuration: refused, nothing published.
    same = {**env, "RELAY_INTAKE__MAX_EVENTS_PER_DELIVERY": "2"}
    refused = _relay(["dead-letters", "replay", too_many["ref"]], same)
    assert refused.returncode == 1
    assert "still rejected: too_many_events" in refused.stderr

    fixed = {**env, "RELAY_INTAKE__MAX_EVENTS_PER_DELIVERY": "10"}
    for _ in range(2):  # replaying twice writes the same ce_ids again
        replayed = _relay(["dead-letters", "replay", too_many["ce_id"]], fixed)
        assert replayed.returncode == 0, replayed.stderr
        assert "published 3 event(s)" in replayed.stdout
    records = consume_all(kafka_bootstrap, [topic_prefix + "order_create"], expected_count=6)
    assert [orjson.loads(r.value or b"") for r in records if r.key == b"DL-0"] == [objects[0]] * 2
    ids = sorted(r.headers["ce_id"] for r in records)
    expected = sorted(event_id("order_create", orjson.dumps(o)).encode() for o in objects)
    assert ids == sorted(expected * 2)
    for record in records:
        assert record.headers["relay_replayed_from"].startswith(
            f"{topic_prefix}dead_letter:".encode()
        )
        assert record.headers["ce_time"]

    not_json = _relay(["dead-letters", "replay", broken["ref"]], fixed)
    assert not_json.returncode == 1
    assert "still rejected: malformed_json" in not_json.stderr
