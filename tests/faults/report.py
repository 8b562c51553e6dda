"""The fault report: one row per scenario, as JSON and as a Markdown table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from tests.faults.ledger import FaultReport

REPO_ROOT = Path(__file__).resolve().parents[2]

_COLUMNS = (
    ("scenario", "scenario"),
    ("spool", "spool"),
    ("deliveries_sent", "sent"),
    ("attempts", "attempts"),
    ("failed_attempts", "non-2xx"),
    ("unavailable", "503"),
    ("retried_deliveries", "retried"),
    ("acknowledged", "acknowledged"),
    ("events_expected", "events acked"),
    ("found", "found"),
    ("duplicates_from_retries", "dup (retries)"),
    ("duplicates_from_relay", "dup (relay)"),
    ("longest_gap_seconds", "longest 2xx gap (s)"),
    ("lost", "lost"),
    ("seconds", "seconds"),
)


def report_dir() -> Path:
    configured = os.environ.get("RELAY_FAULT_REPORT_DIR")
    return Path(configured) if configured else REPO_ROOT / "build" / "fault-report"


def markdown(rows: Sequence[FaultReport]) -> str:
    """One table per cluster size: the single broker's, then the replicated cluster's."""
    sizes = sorted({row.brokers for row in rows})
    if len(sizes) <= 1:
        return _table(rows)
    return "\n".join(
        f"{_TITLES.get(n, f'{n} brokers')}:\n\n" + _table([r for r in rows if r.brokers == n])
        for n in sizes
    )


_TITLES = {
    1: "Single broker",
    3: "3-broker KRaft cluster (RF 3, min.insync.replicas 2; seconds include set-up and checks)",
}


def _table(rows: Sequence[FaultReport]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in _COLUMNS) + " |",
        "|" + "|".join("---" for _ in _COLUMNS) + "|",
    ]
    for row in rows:
        values = row.as_dict()
        cells = []
        for key, _ in _COLUMNS:
            value = values[key]
            cells.append(("yes" if value else "no") if isinstance(value, bool) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(rows: Sequence[FaultReport], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_bytes(
        orjson.dumps([r.as_dict() for r in rows], option=orjson.OPT_INDENT_2)
    )
    (directory / "report.md").write_text(
        "# Fault-injection report\n\nCounts are deliveries unless they say events; "
        "`found` and `lost` are events of acknowledged deliveries.\n\n" + markdown(rows)
    )
