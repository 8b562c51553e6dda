"""Phase timings of the cluster test, printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.kube.cluster import NOTES, PHASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not PHASES:
        return
    terminalreporter.section("kube e2e phases")
    for name, seconds in PHASES:
        terminalreporter.write_line(f"{name:<40} {seconds:7.1f} s")
    terminalreporter.write_line(f"{'total':<40} {sum(s for _, s in PHASES):7.1f} s")
    for note in NOTES:
        terminalreporter.write_line(note)
