"""Waiting for a state, never for a guessed amount of time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.05


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str = "condition not met",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy; return it.

    Raises ``TimeoutError(message)`` after ``timeout`` seconds. Exceptions of the types in
    ``ignore`` count as "not yet" (a server that does not accept connections yet); any other
    propagates at once, so a condition can give up early (a process that died).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ignore:
            pass
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)


async def await_until(
    condition: Callable[[], T | None],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.01,
    message: str = "condition not met",
) -> T:
    """``wait_until`` for async tests: the event loop keeps running between checks."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} (waited {timeout:g} s)")
        await anyio.sleep(interval)
    return value
