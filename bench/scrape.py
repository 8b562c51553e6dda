"""Reading relay's /metrics: the benchmark checks relay's counters against what it sent."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def ok_deliveries(exposition: str) -> int:
    """``relay_deliveries_total{outcome="ok"}`` summed over whatever other labels it has."""
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != "relay_deliveries":
            continue
        for sample in family.samples:
            if sample.name == "relay_deliveries_total" and sample.labels.get("outcome") == "ok":
                total += sample.value
    return int(total)
