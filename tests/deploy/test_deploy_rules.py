"""The alert rules, evaluated: Prometheus' own ``promtool test rules`` on both copies.

The compose copy (deploy/prometheus/alerts.yml) and the Helm chart's PrometheusRule, rendered
with helm and its groups written out as a rules file, each go through the same unit tests in
deploy/prometheus/tests. Those tests name their rules file relatively (``../alerts.yml``), so
the rendered copy is written into the same layout in a temporary directory and the test files
are used unchanged. A failing test fails with promtool's own report.

Every rule must have a case where it fires and one where it stays silent, and a runbook
section that its ``runbook_url`` points at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import REPO_ROOT, find_tool, one, render_chart, run_tool

RULES = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "tests"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
RUNBOOK_LINK = "docs/runbook.md#"
# Each runbook section answers these, in this order.
RUNBOOK_PARTS = ("What it means", "How to check", "How to fix")
# 22 evaluations of hours of series per case: generous for a busy CI machine.
PROMTOOL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def promtool() -> Path:
    return find_tool("promtool")


def rule_test_files() -> list[Path]:
    files = sorted(RULE_TESTS.glob("*.yml"))
    assert files, f"no promtool tests in {RULE_TESTS}"
    return files


def rules_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def compose_rules() -> list[dict[str, Any]]:
    return rules_of(yaml.safe_load(RULES.read_text(encoding="utf-8")))


def helm_rules_file(helm: Path, directory: Path, values: dict[str, Any]) -> Path:
    """The chart's PrometheusRule groups as a plain rules file at ``directory``/alerts.yml."""
    manifests = render_chart(helm, {"metrics": {"prometheusRule": {"enabled": True, **values}}})
    spec = one(manifests, "PrometheusRule")["spec"]
    target = directory / "alerts.yml"
    target.write_text(yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False), "utf-8")
    return target


@pytest.fixture(scope="module")
def helm_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the Helm copy as alerts.yml and the unit tests under tests/."""
    directory = tmp_path_factory.mktemp("helm-rules")
    helm_rules_file(find_tool("helm"), directory, {})
    shutil.copytree(RULE_TESTS, directory / "tests")
    return directory


def run_promtool_tests(promtool: Path, rule_tests: Path) -> str:
    files = sorted(rule_tests.glob("*.yml"))
    return run_tool([promtool, "test", "rules", *files], timeout=PROMTOOL_TIMEOUT_S)


def test_compose_rules_pass_their_unit_tests(promtool: Path) -> None:
    run_tool([promtool, "check", "rules", RULES])
    output = run_promtool_tests(promtool, RULE_TESTS)
    assert output.count("SUCCESS") == len(rule_test_files()), output


def test_helm_rules_pass_the_same_unit_tests(promtool: Path, helm_copy: Path) -> None:
    run_tool([promtool, "check", "rules", helm_copy / "alerts.yml"])
    output = run_promtool_tests(promtool, helm_copy / "tests")
    assert output.count("SUCCESS") == len(rule_test_files()), output


def test_helm_thresholds_reach_the_rules(promtool: Path, tmp_path: Path) -> None:
    """Values change the rendered thresholds, and dropping the silence rule leaves valid rules."""
    rules_file = helm_rules_file(
        find_tool("helm"),
        tmp_path,
        {
            "deliveryErrorRatio": 0.2,
            "deliveryLatencyP99Seconds": 12,
            "certificateExpiryDays": 30,
            "noDeliveriesFor": "",
            "runbookUrl": "https://git.example.com/relay/-/blob/main/docs/runbook.md",
        },
    )
    run_tool([promtool, "check", "rules", rules_file])
    rules = {rule["alert"]: rule for rule in rules_of(yaml.safe_load(rules_file.read_text()))}
    assert "RelayNoDeliveries" not in rules
    assert rules["RelayDeliveriesFailing"]["expr"].endswith("> 0.2")
    assert rules["RelayDeliveryLatencyNearDeadline"]["expr"].endswith("> 12")
    assert "< 30 * 86400" in rules["RelayTlsCertificateExpiring"]["expr"]
    assert rules["RelayKafkaUnreachable"]["annotations"]["runbook_url"] == (
        "https://git.example.com/relay/-/blob/main/docs/runbook.md#relaykafkaunreachable"
    )


def alert_cases() -> Iterator[tuple[str, bool]]:
    """(alert name, whether it is expected to fire) for every alert_rule_test entry."""
    for path in rule_test_files():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert document["rule_files"] == ["../alerts.yml"], path
        for group in document["tests"]:
            for case in group.get("alert_rule_test", []):
                yield case["alertname"], bool(case.get("exp_alerts"))


def test_every_rule_has_a_firing_and_a_silent_case() -> None:
    cases = set(alert_cases())
    missing = [
        f"{rule['alert']}: no case where it {'fires' if fires else 'stays silent'}"
        for rule in compose_rules()
        for fires in (True, False)
        if (rule["alert"], fires) not in cases
    ]
    assert not missing, "\n".join(missing)
    unknown = {name for name, _ in cases} - {rule["alert"] for rule in compose_rules()}
    assert not unknown, f"tests for alerts that do not exist: {sorted(unknown)}"


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Anchor of every ``###`` heading in docs/runbook.md -> the text under it."""
    text = RUNBOOK.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[github_anchor(heading)] = body.split("\n## ")[0]
    return sections


def test_every_alert_links_its_runbook_section() -> None:
    sections = runbook_sections()
    problems = []
    for rule in compose_rules():
        link = rule["annotations"].get("runbook_url", "")
        if not link.startswith(RUNBOOK_LINK):
            problems.append(f"{rule['alert']}: runbook_url {link!r} is not {RUNBOOK_LINK}<anchor>")
            continue
        anchor = link.removeprefix(RUNBOOK_LINK)
        if anchor != github_anchor(rule["alert"]):
            problems.append(f"{rule['alert']}: runbook_url anchor {anchor!r} is not its name")
        body = sections.get(anchor)
        if body is None:
            problems.append(f"{rule['alert']}: docs/runbook.md has no '### {rule['alert']}'")
            continue
        positions = [body.find(f"**{part}.**") for part in RUNBOOK_PARTS]
        if -1 in positions or positions != sorted(positions):
            problems.append(f"{rule['alert']}: its section lacks {' / '.join(RUNBOOK_PARTS)}")
    assert not problems, "\n".join(problems)


def test_runbook_documents_no_alert_that_does_not_exist() -> None:
    alerts = {github_anchor(rule["alert"]) for rule in compose_rules()}
    extra = {anchor for anchor in runbook_sections() if anchor.startswith("relay")} - alerts
    assert not extra, f"runbook sections for alerts that do not exist: {sorted(extra)}"
