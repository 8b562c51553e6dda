"""The atheris fuzzer over the same targets, with a fixed budget so CI stays bounded.

`make fuzz` runs it for minutes with a kept corpus; this is the smoke run that keeps the
harness working and catches what a short coverage-guided search finds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Whichever comes first; the time cap keeps a busy CI machine from stretching the run.
RUNS = 50_000
SECONDS = 30


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris has wheels for Linux x86_64 only"
)
def test_atheris_finds_no_crash_within_the_ci_budget(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.hostile.fuzz_intake",
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done " in result.stderr
