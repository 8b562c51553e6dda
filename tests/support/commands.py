"""Running the repository's own scripts from tests: a deadline on every command, its output
in the failure, and phase timings the suites print at the end (tests/compose, tests/kube)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(
    args: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository's root with a deadline; on failure the error
    carries the end of its output, since these scripts say why they failed there."""
    result = subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


@contextmanager
def timed(name: str, phases: list[tuple[str, float]]) -> Iterator[None]:
    """Append how long the block took to ``phases``, even when it fails."""
    started = time.monotonic()
    try:
        yield
    finally:
        phases.append((name, time.monotonic() - started))


def report_phases(
    terminal: pytest.TerminalReporter,
    title: str,
    phases: list[tuple[str, float]],
    notes: list[str],
    width: int = 40,
) -> None:
    """The suite's phase timings and notes in pytest's summary, when it ran any phase."""
    if not phases:
        return
    terminal.section(title)
    for name, seconds in phases:
        terminal.write_line(f"{name:<{width}} {seconds:7.1f} s")
    terminal.write_line(f"{'total':<{width}} {sum(s for _, s in phases):7.1f} s")
    for note in notes:
        terminal.write_line(note)
