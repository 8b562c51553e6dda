"""Fixtures shared by all tests.

Kafka tests run against a real broker: the cluster named by RELAY_TEST_KAFKA (bootstrap
servers) if set, otherwise the repo's local single-node broker on port 19092, which this
session starts if needed (deploy/local/kafka) and stops again only if it started it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.broker_control import LocalBroker, broker_of_its_own

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka"
# Not 9092, so tests never write into (or stop) a developer's `make run` broker.
TEST_KAFKA_PORT = 19092
# First start may resolve Kafka with Maven before the script's own 90 s readiness timeout.
KAFKA_SCRIPT_TIMEOUT_S = 600


# Property and fuzz tests run with a fixed budget in CI ("ci", the default); `make fuzz`
# runs the same properties with HYPOTHESIS_PROFILE=fuzz for a much longer search. No
# deadline: on a busy two-core CI machine timing says nothing about the code.
hypothesis_settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
hypothesis_settings.register_profile("fuzz", max_examples=5_000, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that asks for the broker is a Kafka test even if its author forgot the marker,
    # so `-m "not kafka"` really runs without a broker.
    for item in items:
        if isinstance(item, pytest.Function) and "kafka_bootstrap" in item.fixturenames:
            item.add_marker(pytest.mark.kafka)


def _run_kafka_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RELAY_KAFKA_PORT=str(TEST_KAFKA_PORT))
    # Derived from the port unless set; a value meant for the dev broker must not leak in.
    env.pop("RELAY_KAFKA_CONTROLLER_PORT", None)
    return subprocess.run(
        [str(KAFKA_SCRIPT), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=KAFKA_SCRIPT_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the Kafka cluster the tests use."""
    external = os.environ.get("RELAY_TEST_KAFKA", "").strip()
    if external:
        yield external
        return

    started_here = _run_kafka_script("status").returncode != 0
    # A broker this session starts begins empty: tests' topics would otherwise pile up in
    # the data dir run after run and slow every later start. One left running is reused.
    result = _run_kafka_script("start", "--fresh") if started_here else _run_kafka_script("start")
    if result.returncode != 0:
        pytest.fail(
            f"`RELAY_KAFKA_PORT={TEST_KAFKA_PORT} {KAFKA_SCRIPT} start` failed "
            f"(exit {result.returncode}); set RELAY_TEST_KAFKA to use another cluster.\n"
            f"{result.stderr}",
            pytrace=False,
        )
    lines = result.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"{KAFKA_SCRIPT} start printed no bootstrap address\n{result.stderr}")
    try:
        yield lines[-1]
    finally:
        if started_here:
            _run_kafka_script("stop")


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so tests sharing the broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def private_broker(kafka_bootstrap: str) -> Iterator[LocalBroker]:
    """A broker of this test's own, on a free port, that it may stop, kill or pause."""
    # kafka_bootstrap first: the shared broker's start resolves the Kafka jars for this one.
    with broker_of_its_own() as broker:
        yield broker
