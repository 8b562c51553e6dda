"""The Kafka a bench tool measures against: the one given, or a private broker for the run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.broker import LocalBroker


@contextmanager
def bench_broker(bootstrap: str | None, port: int) -> Iterator[tuple[str, int | None]]:
    """Yield the bootstrap address and the broker's pid. A given cluster has no pid: its CPU
    is not on this machine to count. A private broker starts fresh (old topics would slow
    every start) and is stopped afterwards, however the run ends."""
    if bootstrap:
        yield bootstrap, None
        return
    broker = LocalBroker(port)
    address = broker.start(fresh=True)
    try:
        yield address, broker.pid()
    finally:
        broker.stop()
