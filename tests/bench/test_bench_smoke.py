"""The benchmark's smoke mode, end to end, so the harness cannot rot unnoticed.

It runs ``python -m bench --smoke`` against the session's broker and checks that the report
holds sane figures, not fast ones: timings belong to the benchmark, never to a test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.__main__ import SMOKE_SCENARIOS

pytestmark = pytest.mark.kafka

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


@pytest.fixture(scope="module")
def smoke_report(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--bootstrap",
            kafka_bootstrap,
            "--workers",
            str(WORKERS),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (out / "smoke.md").read_text().startswith("# relay benchmark (smoke)")
    report: dict[str, Any] = orjson.loads((out / "smoke.json").read_bytes())
    return report


def _check_latency(latency: dict[str, float]) -> None:
    assert latency["count"] > 0
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99_9"] <= latency["max"]


def test_report_describes_the_machine_and_settings(smoke_report: dict[str, Any]) -> None:
    machine = smoke_report["machine"]
    assert machine["nproc"] >= 1 and machine["memory_gib"] > 0
    assert machine["versions"]["librdkafka"]
    assert smoke_report["settings"]["workers"] == WORKERS
    assert [s["name"] for s in smoke_report["scenarios"]] == list(SMOKE_SCENARIOS)


@pytest.mark.parametrize("index", range(len(SMOKE_SCENARIOS)))
def test_every_party_passed_a_step(smoke_report: dict[str, Any], index: int) -> None:
    scenario = smoke_report["scenarios"][index]
    for party in ("bare", "relay", "bridge", "benthos", "producer"):
        section = scenario[party]
        assert section["max_rate"] > 0, (party, section["steps"])
        assert section["at_max"]["verdict"] == "pass"
        _check_latency(section["at_max"]["latency"])
    for party in ("relay", "bridge", "benthos", "producer"):
        half = scenario[party]["half_rate"]
        assert half["offered_rate"] == scenario["relay"]["max_rate"] / 2
        _check_latency(half["latency"])
    for party in ("relay", "benthos"):
        quarter = scenario[party]["quarter_rate"]
        assert quarter["offered_rate"] == scenario["relay"]["max_rate"] / 4
        _check_latency(quarter["latency"])


@pytest.mark.parametrize("index", range(len(SMOKE_SCENARIOS)))
def test_relay_ran_its_workers_and_counted_every_delivery(
    smoke_report: dict[str, Any], index: int
) -> None:
    relay = smoke_report["scenarios"][index]["relay"]
    assert relay["exit_code"] == 0
    assert relay["processes"]["worker"]["count"] == WORKERS
    assert 0 < relay["processes"]["worker"]["peak_rss_mb"] < 1024
    check = relay["metrics_check"]
    # Scraped once from the supervisor, the counters cover every worker: each 200 the
    # generator saw was counted (relay may count a few more that the generator gave up on).
    assert 0 < check["generator_ok"] <= check["relay_deliveries_ok"]


def test_ratios_and_targets_are_reported(smoke_report: dict[str, Any]) -> None:
    for scenario in smoke_report["scenarios"]:
        analysis = scenario["analysis"]
        assert analysis["relay_vs_bare"] > 0
        assert analysis["relay_vs_producer"] > 0
        assert analysis["relay_cpu_us_per_delivery"] > 0
        assert analysis["relay_vs_benthos"] > 0
        assert analysis["benthos_cpu_us_per_delivery"] > 0
    assert smoke_report["targets"]
    assert all(isinstance(t["met"], bool) for t in smoke_report["targets"])
