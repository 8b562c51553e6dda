"""The shared-timer deadlines: expiry, foreign cancellation, and waits that finish in time."""

from __future__ import annotations

import asyncio

import pytest

from relay.deadlines import Deadlines
from tests.support.waiting import await_until

pytestmark = pytest.mark.anyio

# These sleep on the loop's real clock on purpose: Deadlines are loop timers, and what is
# tested is when the loop fires them (each wait is hundredths of a second).


async def test_a_wait_past_its_deadline_raises_timeout_error() -> None:
    deadlines = Deadlines(resolution=0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), deadlines.guard(0.05):
        await asyncio.sleep(10)
    elapsed = loop.time() - started
    assert 0.05 <= elapsed < 1.0


async def test_waits_that_finish_in_time_are_left_alone_and_the_timer_stops() -> None:
    deadlines = Deadlines(resolution=0.01)
    for _ in range(3):
        with deadlines.guard(5):
            await asyncio.sleep(0.02)  # the guarded work, well inside its budget
    # Nothing waits any more, so nothing is left to sweep: the sweeper ends.
    await await_until(lambda: deadlines._sweeper is None, timeout=1, message="sweeper runs on")
    # The task was never cancelled: a later await is undisturbed.
    await asyncio.sleep(0.02)


async def test_someone_elses_cancellation_is_not_turned_into_a_timeout() -> None:
    guarded = asyncio.Event()

    async def waiter(deadlines: Deadlines) -> None:
        with deadlines.guard(5):
            guarded.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(waiter(Deadlines(resolution=0.01)))
    await guarded.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_concurrent_waits_expire_independently() -> None:
    async def wait(deadlines: Deadlines, budget: float, takes: float) -> str:
        try:
            with deadlines.guard(budget):
                await asyncio.sleep(takes)
        except TimeoutError:
            return "timeout"
        return "done"

    deadlines = Deadlines(resolution=0.01)
    results = await asyncio.gather(
        wait(deadlines, 0.05, 5), wait(deadlines, 5, 0.1), wait(deadlines, 0.2, 5)
    )
    assert list(results) == ["timeout", "done", "timeout"]
