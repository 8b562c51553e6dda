"""Who calls ``producer.poll``, and so on which thread librdkafka's callbacks run.

librdkafka queues delivery reports (and statistics and errors) until someone polls; the
callback of each runs on the polling thread. Two ways to serve that queue:

``ThreadPoller`` (the default, ``kafka.delivery_reports = "thread"``): a dedicated thread
blocks in ``poll(0.05)``; the deliveries completed during one ``poll`` call are handed to
the loop together, with one ``call_soon_threadsafe`` (one wake-up of the loop) for all of
them. It keeps callbacks flowing while the loop is stalled by something else.

``LoopPoller`` (``"loop"``) polls from the event loop with ``poll(0)``, which never blocks:
on every loop iteration while records are in flight, then once a millisecond if nothing
came back for a while, and every 100 ms when nothing is in flight (statistics, errors). A
delivery report then completes its delivery's future directly, on the loop's own thread: no
second thread holding the GIL, no self-pipe write per delivery. The price is the spinning:
with few deliveries in flight the loop polls again and again for each one.

docs/performance.md compares the two at 4, 32 and 128 connections: the thread served more
deliveries and used less CPU per delivery at all three (at 4 connections about half the
loop's), so it is the default again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import Producer

# With records in flight: poll on every loop iteration until nothing has come back for
# this long, then once per timer tick. Spinning catches a burst of acknowledgements at once;
# the tick bounds what light load costs (one poll a millisecond instead of a busy loop that
# would take the CPU the broker needs on a small machine).
_SPIN_SECONDS = 0.0005
_TICK_SECONDS = 0.001
# Nothing in flight: statistics (each second) and client errors only.
_IDLE_SECONDS = 0.1


class LoopPoller:
    """Polls the producer from the event loop while ``busy()`` says records are in flight."""

    def __init__(self, producer: Producer, busy: Callable[[], bool]) -> None:
        self._producer = producer
        self._busy = busy
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.Handle | None = None
        self._spinning = False
        self._last_served = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle = loop.call_later(_IDLE_SECONDS, self._run)

    async def stop(self) -> None:
        """Stop polling. On the loop's own thread, as everything else here: a handle may
        only be cancelled there."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None

    def kick(self) -> None:
        """Records were just produced: poll on every iteration from now on."""
        self._last_served = time.monotonic()
        if self._spinning or self._loop is None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._spinning = True
        self._handle = self._loop.call_soon(self._run)

    def _run(self) -> None:
        loop = self._loop
        if loop is None:
            return
        # Delivery callbacks run inside this call, on the loop's thread.
        if self._producer.poll(0):
            self._last_served = time.monotonic()
        if not self._busy():
            self._spinning = False
            self._handle = loop.call_later(_IDLE_SECONDS, self._run)
        elif time.monotonic() - self._last_served < _SPIN_SECONDS:
            self._spinning = True
            self._handle = loop.call_soon(self._run)
        else:
            # Ticking; the next kick() goes back to spinning.
            self._spinning = False
            self._handle = loop.call_later(_TICK_SECONDS, self._run)


class ThreadPoller:
    """A thread blocked in ``poll``; callbacks run on it, not on the loop."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Callbacks for the loop, queued by hand_over on the polling thread (deque appends
        # and pops are atomic), run together after each poll.
        self._handed: deque[Callable[[], None]] = deque()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._poll_forever, name="kafka-poll", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread and wait for it, off the loop (the join may take a poll's 50 ms)."""
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        # Whatever a last poll (or flush()) handed over after the thread's last wake-up.
        self._run_handed()

    def kick(self) -> None:
        """The thread is always polling; nothing to do."""

    def hand_over(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop, after the current ``poll`` returns.

        From any thread but the loop's. The poll thread wakes the loop once per poll call
        for everything handed over during it; a callback handed over by another thread
        (``flush`` at shutdown) waits for the poll thread's next wake-up (within a poll's
        50 ms), or for ``stop``.
        """
        self._handed.append(callback)

    def _poll_forever(self) -> None:
        loop = self._loop
        assert loop is not None
        handed = self._handed
        # poll() releases the GIL while it waits; delivery callbacks run inside it.
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            if handed:
                try:
                    loop.call_soon_threadsafe(self._run_handed)
                except RuntimeError:
                    return  # the loop is closed: nobody is waiting any more

    def _run_handed(self) -> None:
        handed = self._handed
        while handed:
            handed.popleft()()
