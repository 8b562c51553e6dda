"""The shared-timer deadlines: expiry, foreign cancellation, and waits that finish in time."""

from __future__ import annotations

import asyncio

import pytest

from relay.deadlines import Deadlines


def test_a_wait_past_its_deadline_raises_timeout_error() -> None:
    async def scenario() -> float:
        deadlines = Deadlines(resolution=0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError), deadlines.guard(0.05):
            await asyncio.sleep(10)
        return loop.time() - started

    elapsed = asyncio.run(scenario())
    assert 0.05 <= elapsed < 1.0


def test_waits_that_finish_in_time_are_left_alone_and_the_timer_stops() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(resolution=0.01)
        for _ in range(3):
            with deadlines.guard(5):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        # Nothing waits any more, so nothing is left to sweep.
        assert deadlines._sweeper is None
        # The task was never cancelled: a later await is undisturbed.
        await asyncio.sleep(0.02)

    asyncio.run(scenario())


def test_someone_elses_cancellation_is_not_turned_into_a_timeout() -> None:
    async def waiter(deadlines: Deadlines) -> None:
        with deadlines.guard(5):
            await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.create_task(waiter(Deadlines(resolution=0.01)))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_concurrent_waits_expire_independently() -> None:
    async def wait(deadlines: Deadlines, budget: float, takes: float) -> str:
        try:
            with deadlines.guard(budget):
                await asyncio.sleep(takes)
        except TimeoutError:
            return "timeout"
        return "done"

    async def scenario() -> list[str]:
        deadlines = Deadlines(resolution=0.01)
        return list(
            await asyncio.gather(
                wait(deadlines, 0.05, 5), wait(deadlines, 5, 0.1), wait(deadlines, 0.2, 5)
            )
        )

    assert asyncio.run(scenario()) == ["timeout", "done", "timeout"]
