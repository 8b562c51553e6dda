"""Fixtures of the fault-injection suite: a private broker it may kill, and the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.faults.ledger import FaultReport
from tests.faults.report import markdown, report_dir, write
from tests.support.broker import LocalBroker, broker_of_its_own

# A key, not state: the rows live in this session's config.stash.
_ROWS = pytest.StashKey[list[FaultReport]]()


@pytest.fixture(scope="module")
def module_broker(kafka_bootstrap: str) -> Iterator[LocalBroker]:
    """A broker of this module's own, on a free port, that scenarios kill and pause."""
    # kafka_bootstrap first: the shared broker's start resolves the Kafka jars for this one.
    with broker_of_its_own() as broker:
        yield broker


@pytest.fixture
def record_fault_report(request: pytest.FixtureRequest) -> Callable[[FaultReport], None]:
    """Adds a scenario's row to the report and rewrites the report files at once."""
    config = request.config

    def record(row: FaultReport) -> None:
        rows = config.stash.setdefault(_ROWS, [])
        rows.append(row)
        write(rows, report_dir())

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    terminalreporter.section("fault-injection report")
    terminalreporter.write(markdown(rows))
    terminalreporter.write_line(f"written to {report_dir()}/report.json and report.md")
