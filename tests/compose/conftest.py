"""Phase timings of the real-engine test, printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.compose.stack import NOTES, PHASES
from tests.support.commands import report_phases


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_phases(terminalreporter, "compose e2e phases", PHASES, NOTES, width=28)
