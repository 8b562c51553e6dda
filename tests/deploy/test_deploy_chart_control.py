"""relay webhooks apply and rotate-credentials as CronJobs, with least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.control.desired import load as load_webhooks
from tests.deploy.chart import NAME, VALUE_SETS, validate, workload
from tests.deploy.support import (
    CHART_DIR,
    KUBE_VERSIONS,
    Manifest,
    by_kind,
    helm_template,
    one,
    pod_spec,
    render_chart,
)

# relay webhooks apply / rotate-credentials as CronJobs.

CONTROL: dict[str, Any] = {
    "control": {"enabled": True},
    "ultracart": {"simpleKey": {"existingSecret": "ultracart-api"}},
    "ingress": {"enabled": True, "hosts": [{"host": "relay.example.com"}]},
}


def test_control_cronjobs_render_with_least_privilege(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    manifests = rendered["everything"]
    secret_name = VALUE_SETS["everything"]["auth"]["existingSecret"]
    jobs = {j["metadata"]["name"]: j for j in by_kind(manifests, "CronJob")}
    # The audit's CronJob has tests of its own (test_deploy_audit_chart.py).
    assert set(jobs) == {
        f"{NAME}-control-apply",
        f"{NAME}-control-rotate-credentials",
        f"{NAME}-control-audit",
    }
    for command, job in (
        ("apply", jobs[f"{NAME}-control-apply"]),
        ("rotate-credentials", jobs[f"{NAME}-control-rotate-credentials"]),
    ):
        assert job["spec"]["suspend"] is True and job["spec"]["concurrencyPolicy"] == "Forbid"
        (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        args = container["command"]
        assert args[:2] == ["python", "/etc/relay/control/kube-control.py"]
        assert args[args.index("--secret") + 1] == secret_name
        assert args[args.index("--") + 1 :] == [
            "relay",
            "webhooks",
            command,
            "--config",
            "/etc/relay/control/webhooks.toml",
        ]
        env = {v["name"]: v["valueFrom"]["secretKeyRef"]["name"] for v in container["env"]}
        assert env == {"ULTRACART_SIMPLE_KEY": "ultracart-api"}
    assert (
        jobs[f"{NAME}-control-rotate-credentials"]["spec"]["jobTemplate"]["spec"]["backoffLimit"]
        == 0
    )
    # The one Secret relay's pods mount, get and patch only.
    (rule,) = one(manifests, "Role")["rules"]
    assert rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": [secret_name],
        "verbs": ["get", "patch"],
    }
    binding = one(manifests, "RoleBinding")
    assert binding["subjects"][0]["name"] == f"{NAME}-control"
    basic = next(v for v in pod_spec(workload(manifests))["volumes"] if v["name"] == "basic-auth")
    assert basic["secret"]["secretName"] == secret_name

    # The ConfigMap carries the wrapper as written and a webhooks.toml relay accepts.
    config_map = one(manifests, "ConfigMap", f"{NAME}-control")
    wrapper = (CHART_DIR / "files" / "kube-control.py").read_text(encoding="utf-8")
    assert config_map["data"]["kube-control.py"].strip() == wrapper.strip()
    webhooks = tmp_path / "webhooks.toml"
    webhooks.write_text(config_map["data"]["webhooks.toml"], encoding="utf-8")
    basic_file = tmp_path / "ultracart-basic"
    basic_file.write_text("ultracart:pw\n", encoding="utf-8")
    env_map = {
        "ULTRACART_SIMPLE_KEY": "k",
        "WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE": str(basic_file),
    }
    loaded = load_webhooks(webhooks, env_map)
    assert loaded.webhook.url == "https://relay.example.com/webhooks/ultracart"  # from ingress
    assert loaded.control.relay_credentials_file == Path("/var/lib/relay-control/relay-credentials")
    assert loaded.control.state_file == Path("/var/lib/relay-control/state.json")
    # Above kubelet's sync period plus its cache delay (a minute each by default).
    assert loaded.control.reload_wait_seconds >= 120
    assert [e.name for e in loaded.webhook.events] == [
        "order_create",
        "order_update",
        "item_update",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {**CONTROL, "auth": {"credentials": "ultracart:pw"}},
            "control.enabled cannot be combined with auth.credentials",
        ),
        (
            {**CONTROL, "ultracart": {"simpleKey": {"existingSecret": ""}}},
            "control.enabled needs ultracart.simpleKey.existingSecret",
        ),
        ({**CONTROL, "ingress": {"enabled": False}}, "control.webhooks.webhook.url is required"),
    ],
)
def test_control_refuses_what_cannot_work(helm: Path, values: dict[str, Any], message: str) -> None:
    result = helm_template(helm, values)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_control_with_a_generated_secret_validates(helm: Path, kube_version: str) -> None:
    manifests = render_chart(helm, CONTROL, kube_version=kube_version)
    for manifest in manifests:
        validate(manifest, kube_version)
    (rule,) = one(manifests, "Role")["rules"]
    assert rule["resourceNames"] == [f"{NAME}-basic-auth"]
