"""The chart's audit CronJob (`relay webhooks audit`, docs/audit.md): a command relay accepts,
relay's own settings and the webhook's connection mounted, and off with control or itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.cli import build_parser
from relay.settings import Settings
from tests.deploy.support import by_kind, find_tool, one, render_chart

NAME = "relay"
CONTROL: dict[str, Any] = {
    "control": {"enabled": True},
    "ultracart": {"simpleKey": {"existingSecret": "ultracart-api"}},
    "ingress": {"enabled": True, "hosts": [{"host": "relay.example.com"}]},
    "kafka": {
        "sasl": {"enabled": True, "mechanism": "SCRAM-SHA-512", "existingSecret": "kafka-creds"}
    },
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_tool("helm")


def _audit(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return one(manifests, "CronJob", f"{NAME}-control-audit")


def test_the_audit_cronjob_runs_an_audit_relay_accepts_with_relays_settings(
    helm: Path, tmp_path: Path
) -> None:
    manifests = render_chart(helm, CONTROL)
    job = _audit(manifests)
    assert job["spec"]["concurrencyPolicy"] == "Forbid" and job["spec"]["suspend"] is False
    spec = job["spec"]["jobTemplate"]["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["python", "/etc/relay/control/kube-control.py"]
    argv = command[command.index("--") + 2 :]  # after `relay`
    args = build_parser().parse_args(argv)
    assert args.webhooks_command == "audit" and args.repair and args.since == "3h"
    assert args.max_api_calls == 600 and args.every is None
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[args.relay_config]["readOnly"] and mounts["/etc/relay/secrets/basic"]
    assert str(Path(args.config).parent) in mounts
    env = {v["name"] for v in container["env"]}
    assert {"ULTRACART_SIMPLE_KEY", "RELAY_KAFKA__LIBRDKAFKA__SASL_PASSWORD"} <= env
    # The relay.toml it mounts is relay's own ConfigMap, which relay's settings accept.
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = one(
        manifests, "ConfigMap", volumes[mounts[args.relay_config]["name"]]["configMap"]["name"]
    )
    relay_toml = tmp_path / "relay.toml"
    relay_toml.write_text(config_map["data"]["relay.toml"], encoding="utf-8")
    settings = Settings.load(relay_toml, env={"RELAY_AUTH__BASIC_CREDENTIALS": "u:p"})
    assert settings.topics.template


@pytest.mark.parametrize(
    "values",
    [
        {**CONTROL, "control": {"enabled": True, "audit": {"enabled": False}}},
        {**CONTROL, "control": {"enabled": False}},
    ],
)
def test_the_audit_cronjob_is_off_with_control_or_itself(
    helm: Path, values: dict[str, Any]
) -> None:
    names = {j["metadata"]["name"] for j in by_kind(render_chart(helm, values), "CronJob")}
    assert f"{NAME}-control-audit" not in names


def test_the_audit_window_is_a_span(helm: Path) -> None:
    from tests.deploy.support import helm_template

    bad = {**CONTROL, "control": {"enabled": True, "audit": {"since": "yesterday"}}}
    result = helm_template(helm, bad)
    assert result.returncode != 0 and "since" in result.stderr
