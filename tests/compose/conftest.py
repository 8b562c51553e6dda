"""Phase timings of the real-engine test, printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.compose.stack import NOTES, PHASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not PHASES:
        return
    terminalreporter.section("compose e2e phases")
    for name, seconds in PHASES:
        terminalreporter.write_line(f"{name:<28} {seconds:7.1f} s")
    terminalreporter.write_line(f"{'total':<28} {sum(s for _, s in PHASES):7.1f} s")
    for note in NOTES:
        terminalreporter.write_line(note)
