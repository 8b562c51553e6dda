from __future__ import annotations

from types import SimpleNamespace

import pytest

import relay.serving.app
from relay.serving.app import Runtime, build_intake
from tests.support.fake_sink import FakeSink
from tests.support.settings import settings_with


def runtime(grace: float) -> Runtime:
    settings = settings_with(server={"shutdown_grace_seconds": grace})
    return build_intake(settings, sink=FakeSink()).runtime


class Clock:
    """relay.serving.app's monotonic clock, moved by the test instead of by sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        # Only the module's own name is replaced: asyncio and the rest keep the real clock.
        monkeypatch.setattr(relay.serving.app, "time", SimpleNamespace(monotonic=self.read))

    def read(self) -> float:
        return self.now


def test_the_whole_drain_shares_one_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    rt = runtime(grace=3.0)
    assert rt.drain_seconds_left() == 3.0  # no stop requested yet
    rt.begin_drain()
    assert rt.draining
    first = rt.drain_seconds_left()
    assert first == 3.0
    clock.now += 0.3
    # A second begin_drain (the lifespan after the signal handler) keeps the first clock.
    rt.begin_drain()
    assert rt.drain_seconds_left() == pytest.approx(first - 0.3)


def test_a_spent_grace_period_still_leaves_a_last_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    rt = runtime(grace=0.1)
    rt.begin_drain()
    clock.now += 0.2
    assert rt.drain_seconds_left() == 1.0
