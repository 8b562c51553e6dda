"""check-config --connect, create-topics and serve's topic check against a real broker.

The shared test broker creates topics automatically (deploy/local/kafka), so a missing
topic there is reported but not fatal; each test routes every event to a topic of its own
prefix, which no other test uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.serving.app import create_app
from relay.settings import Settings
from tests.support.kafka import create_topics
from tests.support.net import free_port
from tests.support.waiting import wait_until

RELAY = [sys.executable, "-m", "relay"]


def relay_toml(tmp_path: Path, bootstrap: str, prefix: str) -> Path:
    # Every event into one topic, so the check looks at three topics rather than forty-five.
    path = tmp_path / "relay.toml"
    path.write_text(
        f"""
[auth]
allow_unauthenticated = true
[kafka]
bootstrap_servers = "{bootstrap}"
[topics]
unknown_event_topic = "{prefix}unknown"
dead_letter_topic = "{prefix}dead_letter"
[[topics.patterns]]
match = "*"
topic = "{prefix}events"
"""
    )
    return path


def relay(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [*RELAY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def topics_of(prefix: str) -> list[str]:
    return sorted(f"{prefix}{name}" for name in ("dead_letter", "events", "unknown"))


def test_connect_reports_missing_topics_then_create_topics_makes_them(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    config = str(relay_toml(tmp_path, kafka_bootstrap, topic_prefix))
    checked = relay("check-config", "--config", config, "--connect", "--json")
    # Auto-creation is on in the test broker: missing, reported, not a failure.
    assert checked.returncode == 0, checked.stderr
    document = json.loads(checked.stdout)
    assert document["valid"] is True
    assert document["kafka"]["auto_create"] is True
    assert document["kafka"]["missing"] == topics_of(topic_prefix)
    assert document["kafka"]["record_limit"] == 1_000_000

    text = relay("check-config", "--config", config, "--connect")
    assert text.returncode == 0
    assert "0/3 routed topics exist; 3 will be created on first write" in text.stdout

    created = relay("create-topics", "--config", config, "--partitions", "1", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {"created": topics_of(topic_prefix), "existing": []}
    again = relay("create-topics", "--config", config, "--json")
    assert json.loads(again.stdout) == {"created": [], "existing": topics_of(topic_prefix)}

    after = json.loads(relay("check-config", "--config", config, "--connect", "--json").stdout)
    assert after["kafka"]["missing"] == [] and after["kafka"]["ok"] is True


def test_connect_fails_a_topic_too_small_for_relay_s_records(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    config = str(relay_toml(tmp_path, kafka_bootstrap, topic_prefix))
    create_topics(
        kafka_bootstrap,
        [f"{topic_prefix}events"],
        partitions=1,
        config={"max.message.bytes": "10000"},
    )

    checked = relay("check-config", "--config", config, "--connect")
    assert checked.returncode == 1
    assert checked.stdout == ""
    assert (
        f"relay: topics: topic {topic_prefix}events: max.message.bytes 10000 is below relay's "
        "record limit 1000000" in checked.stderr
    )


@pytest.mark.parametrize(
    "command",
    [["create-topics", "--timeout", "3"], ["check-config", "--connect", "--timeout", "3"]],
)
def test_a_dead_broker_is_one_line_and_bounded_time(
    command: list[str], tmp_path: Path, topic_prefix: str
) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    config = str(relay_toml(tmp_path, bootstrap, topic_prefix))
    started = time.monotonic()
    result = relay(*command, "--config", config, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"relay: cannot reach Kafka at {bootstrap}: Connect to ipv4#127.0.0.1")
    assert "Connection refused" in line
    assert elapsed < 3 + 5  # the timeout plus interpreter start, not librdkafka's 30 s


def test_serve_reports_the_topic_check_in_readyz(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    config = relay_toml(tmp_path, kafka_bootstrap, topic_prefix)
    settings = Settings.load(config, env={"RELAY_SERVER__ADMIN_PORT": "0"})
    with TestClient(create_app(settings)) as client:

        def checked() -> dict[str, Any] | None:
            answer: dict[str, Any] = client.get("/readyz").json()
            return answer if answer["topics"]["checked"] else None

        body = wait_until(checked, 20, message="the topic check did not run")
        assert body["topics"]["missing"] == topics_of(topic_prefix)
        assert body["topics"]["auto_create"] is True
        # Missing on a cluster that creates them is not a reason to be unready.
        assert body["ready"] is True
        metrics = client.get("/metrics").text
        assert "relay_topics_missing 0.0" in metrics
