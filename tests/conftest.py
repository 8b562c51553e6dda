"""Fixtures shared by all tests.

Kafka tests run against a real broker: the cluster named by RELAY_TEST_KAFKA (bootstrap
servers) if set, otherwise the repo's local single-node broker on port 19092, which this
session starts if needed (deploy/local/kafka) and stops again only if it started it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.broker import BrokerScriptError, LocalBroker, broker_of_its_own
from tests.support.faultfs import FaultFs, mounted_faultfs, unavailable_reason
from tests.support.relay import RelayProcess, running_relay, topic_env

# Not 9092, so tests never write into (or stop) a developer's `make run` broker.
TEST_KAFKA_PORT = 19092


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


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio: relay's code is asyncio's."""
    return "asyncio"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the Kafka cluster the tests use."""
    external = os.environ.get("RELAY_TEST_KAFKA", "").strip()
    if external:
        yield external
        return

    broker = LocalBroker(TEST_KAFKA_PORT)
    started_here = not broker.running()
    try:
        # A broker this session starts begins empty: tests' topics would otherwise pile up in
        # the data dir run after run and slow every later start. One left running is reused.
        bootstrap = broker.start(fresh=started_here)
    except BrokerScriptError as error:
        pytest.fail(f"{error}\nSet RELAY_TEST_KAFKA to use another cluster.", pytrace=False)
    try:
        yield bootstrap
    finally:
        if started_here:
            broker.stop()


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


@pytest.fixture
def faultfs(tmp_path: Path) -> Iterator[FaultFs]:
    """faultfs (tests/support/faultfs) mounted for this test; root and /dev/fuse, as CI has."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with mounted_faultfs(tmp_path / "volume") as fs:
        yield fs


@pytest.fixture
def relay_settings() -> dict[str, str]:
    """Extra RELAY_* settings for the ``relay`` fixture; a module overrides this to add some."""
    return {}


@pytest.fixture
def relay(
    kafka_bootstrap: str, topic_prefix: str, relay_settings: dict[str, str], tmp_path: Path
) -> Iterator[RelayProcess]:
    """A ready ``relay serve`` writing to this test's topics; it must exit 0 when stopped."""
    env = {**topic_env(topic_prefix), **relay_settings}
    with running_relay(kafka_bootstrap, env, tmp_path / "relay.log") as process:
        yield process
