from __future__ import annotations

import time

from relay.serving.app import Runtime, create_app
from tests.support.fake_sink import FakeSink
from tests.support.settings import settings_with


def runtime(grace: float) -> Runtime:
    settings = settings_with(server={"shutdown_grace_seconds": grace})
    built: Runtime = create_app(settings, sink=FakeSink()).state.runtime
    return built


def test_the_whole_drain_shares_one_grace_period() -> None:
    rt = runtime(grace=3.0)
    assert rt.drain_seconds_left() == 3.0  # no stop requested yet
    rt.begin_drain()
    assert rt.draining
    first = rt.drain_seconds_left()
    assert 2.5 < first <= 3.0
    time.sleep(0.3)
    # A second begin_drain (the lifespan after the signal handler) keeps the first clock.
    rt.begin_drain()
    assert rt.drain_seconds_left() <= first - 0.25


def test_a_spent_grace_period_still_leaves_a_last_flush() -> None:
    rt = runtime(grace=0.1)
    rt.begin_drain()
    time.sleep(0.2)
    assert rt.drain_seconds_left() == 1.0
