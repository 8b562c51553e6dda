"""Series read from a Prometheus text scrape (relay's admin port, ``/metrics``)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_sum(scrape: str, name: str, **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``; 0 if none."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def by_label(scrape: str, name: str, label: str) -> dict[str, float]:
    """Samples called ``name``, by the value of their ``label``."""
    return {
        sample.labels[label]: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == name
    }
