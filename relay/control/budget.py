"""A run's share of UltraCart's API budget: paced calls and a ceiling on how many.

UltraCart allows 1,000 calls an hour per application and IP, as a leaky bucket whose size
is not documented (WEBHOOKS.md 4.4). Calls spaced evenly at the hourly rate never overflow
a leaky bucket draining at that rate, whatever its size, so a budget of N an hour is kept
by leaving 3600/N seconds between the starts of two calls. Retries are calls too: each
attempt is paced and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from relay.control.errors import ControlError

DEFAULT_CALLS_PER_HOUR = 1000


class BudgetSpent(ControlError):
    """The run has made as many calls as it was allowed (``--max-api-calls``)."""


class CallBudget:
    def __init__(
        self,
        calls_per_hour: float = DEFAULT_CALLS_PER_HOUR,
        max_calls: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls_per_hour <= 0:
            raise ValueError("calls_per_hour must be positive")
        self.interval = 3600.0 / calls_per_hour
        self.max_calls = max_calls
        self.spent = 0
        self.waited = 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    @property
    def left(self) -> int | None:
        return None if self.max_calls is None else max(0, self.max_calls - self.spent)

    def next_in(self) -> float:
        """Seconds until the next call may start."""
        return 0.0 if self._next is None else max(0.0, self._next - self._clock())

    def spend(self) -> None:
        """Wait for the next call's turn and count it; refuse once ``max_calls`` are spent."""
        if self.max_calls is not None and self.spent >= self.max_calls:
            raise BudgetSpent(f"the run's API budget of {self.max_calls} call(s) is spent")
        wait = self.next_in()
        if wait > 0:
            self._sleep(wait)
            self.waited += wait
        self._next = self._clock() + self.interval
        self.spent += 1
