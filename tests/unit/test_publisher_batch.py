"""A delivery's acknowledgement count: completes once, releases exactly what it holds."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

from confluent_kafka import KafkaError, Message

from relay.kafka.publisher import _Batch


def ack(batch: _Batch, error: KafkaError | None = None) -> None:
    """What librdkafka's delivery report does; the message itself is not looked at."""
    batch.on_delivery(error, cast(Message, None))


def test_the_last_acknowledgement_from_the_poll_thread_completes_the_batch() -> None:
    async def scenario() -> list[int]:
        released: list[int] = []
        batch = _Batch(500, asyncio.get_running_loop(), released.append)

        def poll() -> None:
            for _ in range(500):
                ack(batch)

        poll_thread = threading.Thread(target=poll)
        poll_thread.start()
        await asyncio.wait_for(batch.waiter, 5)
        poll_thread.join()
        await asyncio.sleep(0)
        return released

    assert asyncio.run(scenario()) == [500]


def test_errors_are_collected_and_still_complete_the_batch() -> None:
    async def scenario() -> int:
        batch = _Batch(2, asyncio.get_running_loop(), lambda _n: None)
        ack(batch)
        ack(batch, KafkaError(KafkaError._MSG_TIMED_OUT))
        await asyncio.wait_for(batch.waiter, 5)
        return len(batch.errors)

    assert asyncio.run(scenario()) == 1


def test_producing_stopped_short_completes_on_what_was_sent() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
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
        await asyncio.sleep(0)
        return early, late

    assert asyncio.run(scenario()) == ([2], [2])


def test_nothing_produced_completes_at_once() -> None:
    async def scenario() -> list[int]:
        released: list[int] = []
        batch = _Batch(3, asyncio.get_running_loop(), released.append)
        batch.abandon(0)
        assert batch.waiter.done()
        return released

    assert asyncio.run(scenario()) == [0]
