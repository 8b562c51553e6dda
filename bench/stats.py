"""Latency summaries: percentiles by rank over every sample (no histogram rounding)."""

from __future__ import annotations

from collections.abc import Sequence

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p99_9": 0.999}


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Milliseconds: count, mean, max and the nearest-rank percentiles of ``seconds``."""
    if not seconds:
        return {"count": 0}
    ordered = sorted(seconds)
    n = len(ordered)
    summary: dict[str, float] = {
        "count": n,
        "mean": sum(ordered) / n * 1000,
        "max": ordered[-1] * 1000,
    }
    for name, q in PERCENTILES.items():
        rank = max(0, min(n - 1, int(q * n + 0.999999) - 1))
        summary[name] = ordered[rank] * 1000
    return summary
