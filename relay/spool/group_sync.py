"""One fsync for many concurrent appends (group commit).

Each caller needs an fsync that *started* after its own write. Deliveries arriving while
an fsync runs share the next one instead of queueing one each, so the cost of durability
stays near one fsync per disk round trip whatever the request rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class GroupSync:
    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._requested = 0
        self._completed = 0
        self._task: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        """Return once an fsync begun after this call's start has completed."""
        self._requested += 1
        target = self._requested
        while self._completed < target:
            task = self._task
            if task is None or task.done():
                task = self._task = asyncio.create_task(self._run(self._requested))
                # Mark the outcome as seen even if every waiter was cancelled meanwhile.
                task.add_done_callback(_retrieve)
            # shield: one caller giving up (its request cancelled) must not cancel the
            # fsync others are waiting on. A failed fsync raises in every waiter.
            await asyncio.shield(task)

    async def _run(self, covers: int) -> None:
        await asyncio.to_thread(self._sync)
        self._completed = max(self._completed, covers)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
