"""Deadlines for many concurrent waits, checked by one periodic timer instead of one each.

Every delivery waits twice under a deadline: for its body (slow-client guard) and for
Kafka's acknowledgements. ``asyncio.timeout`` arms and cancels an event-loop timer for each
wait, about 12 µs a time on relay's hot path; here a wait costs two dict operations, and a
single timer, running only while something waits, cancels the tasks whose deadline has
passed. The price is precision: a wait may overrun its deadline by up to ``resolution``
seconds, which is nothing next to deadlines of several seconds.

A wait that overruns raises ``TimeoutError`` out of its ``with`` block, as ``asyncio.timeout``
does; any other cancellation of the task passes through untouched.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

# How late an expired wait may be noticed.
DEFAULT_RESOLUTION = 0.1


class Deadlines:
    """One per app (the Runtime's, shared by the endpoint's body reads and the publisher's
    acknowledgement waits); all its waits share the sweeping timer. Event-loop thread only.

    A task holds at most one guard at a time: they are keyed by task, so a nested guard
    is refused rather than silently ending the outer one.
    """

    def __init__(self, resolution: float = DEFAULT_RESOLUTION) -> None:
        self._resolution = resolution
        self._waits: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def guard(self, seconds: float) -> _Guard:
        """``with deadlines.guard(s):`` raises ``TimeoutError`` if the block takes over ``s``."""
        return _Guard(self, seconds)

    def _add(self, task: asyncio.Task[object], seconds: float) -> None:
        if task in self._waits:
            raise RuntimeError("this task already waits under a deadline of these Deadlines")
        loop = task.get_loop()
        self._waits[task] = loop.time() + seconds
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._resolution, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        now = loop.time()
        for task, deadline in self._waits.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if self._waits:
            self._sweeper = loop.call_later(self._resolution, self._sweep, loop)

    def _remove(self, task: asyncio.Task[object]) -> bool:
        """Forget ``task``'s wait; True if the sweeper cancelled it."""
        del self._waits[task]
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False


class _Guard:
    __slots__ = ("_deadlines", "_seconds", "_task")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline guard needs a running task")
        self._task: asyncio.Task[object] = task
        self._deadlines._add(task, self._seconds)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Only when the sweeper cancelled the task and nobody else did too: withdraw our
        # cancellation and say what happened.
        if (
            self._deadlines._remove(self._task)
            and exc_type is asyncio.CancelledError
            and self._task.uncancel() == 0
        ):
            raise TimeoutError from exc
