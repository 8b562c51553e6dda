"""A delivery's acknowledgement count: completes once, releases exactly what it holds."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, Message

from relay.kafka.publisher import _Batch

pytestmark = pytest.mark.anyio


def ack(batch: _Batch, error: KafkaError | None = None) -> None:
    """What librdkafka's delivery report does; the message itself is not looked at."""
    batch.on_delivery(error, cast(Message, None))


async def scheduled_callbacks_ran() -> None:
    """Return once every callback scheduled on this loop so far has run (they run in order),
    so a second completion, had one been scheduled, would already show."""
    marker = asyncio.Event()
    asyncio.get_running_loop().call_soon_threadsafe(marker.set)
    await marker.wait()


async def test_the_last_acknowledgement_from_the_poll_thread_completes_the_batch() -> None:
    released: list[int] = []
    batch = _Batch(500, asyncio.get_running_loop(), released.append)

    def poll() -> None:
        for _ in range(500):
            ack(batch)

    poll_thread = threading.Thread(target=poll)
    poll_thread.start()
    await asyncio.wait_for(batch.waiter, 5)
    poll_thread.join()
    await scheduled_callbacks_ran()
    assert released == [500]


async def test_errors_are_collected_and_still_complete_the_batch() -> None:
    batch = _Batch(2, asyncio.get_running_loop(), lambda _n: None)
    ack(batch)
    ack(batch, KafkaError(KafkaError._MSG_TIMED_OUT))
    await asyncio.wait_for(batch.waiter, 5)
    assert len(batch.errors) == 1


async def test_producing_stopped_short_completes_on_what_was_sent() -> None:
    loop = asyncio.get_running_loop()
    # Two of five produced, both already acknowledged when producing fails.
    early: list[int] = []
    batch = _Batch(5, loop, early.append)
    ack(batch)
    ack(batch)
    batch.abandon(2)
    await asyncio.wait_for(batch.waiter, 5)
    # Two of five produced, acknowledged after the failure.
    late: list[int] = []
    batch = _Batch(5, loop, late.append)
    batch.abandon(2)
    assert not batch.waiter.done()
    ack(batch)
    ack(batch)
    await asyncio.wait_for(batch.waiter, 5)
    await scheduled_callbacks_ran()
    assert (early, late) == ([2], [2])


async def test_nothing_produced_completes_at_once() -> None:
    released: list[int] = []
    batch = _Batch(3, asyncio.get_running_loop(), released.append)
    batch.abandon(0)
    assert batch.waiter.done()
    assert released == [0]


async def test_completions_from_one_poll_reach_the_loop_in_one_wake_up() -> None:
    from relay.kafka.delivery_reports import ThreadPoller

    loop = asyncio.get_running_loop()
    poller = ThreadPoller(cast(Any, None))
    poller._loop = loop  # as start() sets it, without a thread or a producer
    wakeups: list[int] = []
    real_run = poller._run_handed

    def counted_run() -> None:
        wakeups.append(len(poller._handed))
        real_run()

    released: list[int] = []
    batches = [_Batch(1, loop, released.append, hand_over=poller.hand_over) for _ in range(3)]

    def one_poll() -> None:
        for batch in batches:
            ack(batch)  # the delivery reports of one poll() call
        # What _poll_forever does after poll() returns.
        loop.call_soon_threadsafe(counted_run)

    thread = threading.Thread(target=one_poll)
    thread.start()
    thread.join()
    await asyncio.wait_for(asyncio.gather(*(b.waiter for b in batches)), 5)
    assert wakeups == [3]
    assert released == [1, 1, 1]


async def test_stop_runs_what_was_handed_over_after_the_last_wake_up() -> None:
    from relay.kafka.delivery_reports import ThreadPoller

    loop = asyncio.get_running_loop()
    poller = ThreadPoller(cast(Any, None))
    poller._loop = loop
    batch = _Batch(1, loop, lambda _n: None, hand_over=poller.hand_over)
    # flush() at shutdown calls back on its own thread, after the poll thread's last poll.
    thread = threading.Thread(target=ack, args=(batch,))
    thread.start()
    thread.join()
    assert not batch.waiter.done()
    await poller.stop()
    assert batch.waiter.done()
