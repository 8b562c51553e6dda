"""Maximum sustainable rate: step the offered rate up until errors or latency blow up.

The same rule judges relay, the bare app and the raw producer, so their maxima compare:
a step passes when every request due in its window was answered 200 (no errors, no
timeouts, nothing left unanswered) and the p99 latency, measured from the intended send
time, stays under ``p99_limit_ms``. Past capacity an open-loop queue grows for the whole
step, so p99 jumps by far more than the limit; just below it, p99 stays near the service
time. The rate doubles until a step fails, then bisects between the last pass and the
first failure.

On a machine shared with other work a step can fail because something else took the CPU
for a moment; a failed step is therefore run once more, and fails only if both runs do
(``Timing.retries``). The same second chance applies to every party.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Step = dict[str, Any]


@dataclass(frozen=True)
class Criteria:
    p99_limit_ms: float = 100.0


@dataclass(frozen=True)
class Timing:
    warmup: float = 1.0
    duration: float = 4.0
    drain: float = 10.0
    doublings: int = 10
    refinements: int = 4
    retries: int = 1


@dataclass
class SearchResult:
    max_rate: float = 0.0
    best: Step | None = None
    steps: list[Step] = field(default_factory=list)


def error_count(step: Step) -> int:
    """Requests due in the window that did not get a 200: error answers, failures, silence."""
    return int(step["requests"]) - int(step["status"].get("200", 0))


def verdict(step: Step, criteria: Criteria) -> str:
    """ "pass", or why the step failed."""
    errors = error_count(step)
    if errors:
        return f"{errors} errors"
    p99 = step["latency"].get("p99", float("inf"))
    if p99 > criteria.p99_limit_ms:
        return f"p99 {p99:.1f} ms > {criteria.p99_limit_ms:g} ms"
    return "pass"


def search(
    run_step: Callable[[float], Step],
    start_rate: float,
    criteria: Criteria,
    timing: Timing,
    ceiling: float | None = None,
) -> SearchResult:
    """Highest passing offered rate; ``ceiling`` (if known) caps the doubling."""
    result = SearchResult()

    def attempt(rate: float) -> bool:
        for _ in range(timing.retries + 1):
            step = run_step(rate)
            step["verdict"] = verdict(step, criteria)
            result.steps.append(step)
            if step["verdict"] == "pass":
                if rate > result.max_rate:
                    result.max_rate = rate
                    result.best = step
                return True
        return False

    low, high = 0.0, 0.0
    rate = start_rate
    for _ in range(timing.doublings + 1):
        if ceiling is not None and rate >= ceiling:
            rate = ceiling
        if attempt(rate):
            low = rate
            if ceiling is not None and rate >= ceiling:
                return result
            rate *= 2
        else:
            high = rate
            break
    if not high:
        return result
    for _ in range(timing.refinements):
        middle = round((low + high) / 2, 1)
        if attempt(middle):
            low = middle
        else:
            high = middle
    return result
