"""The chart's intake credentials Secret: generated once and kept, from values, or an
existing one checked against the cluster (a fake API server) at install."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.chart import NAME, workload
from tests.deploy.fake_kube import FakeKube, fake_kube
from tests.deploy.support import (
    CHART_DIR,
    Manifest,
    by_kind,
    helm_template,
    one,
    pod_spec,
    render_chart,
)

# The intake credentials Secret.


def _data(secret: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_chart_creates_the_basic_secret_and_keeps_it(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["defaults"]
    secret = one(manifests, "Secret", f"{NAME}-basic-auth")
    # An uninstall leaves it: UltraCart is configured with what it holds.
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    data = _data(secret)
    assert re.fullmatch(r"ultracart:[A-Za-z0-9]{48}", data["credentials"])
    assert data["webhook"] == data["credentials"]  # the pair UltraCart is to send
    volume = next(v for v in pod_spec(workload(manifests))["volumes"] if v["name"] == "basic-auth")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "credentials", "path": "credentials"}]


def test_basic_secret_from_values(helm: Path) -> None:
    pairs = "ultracart:one-password\nultracart-next:two-password\n"
    manifests = render_chart(helm, {"auth": {"credentials": pairs}})
    assert _data(one(manifests, "Secret", f"{NAME}-basic-auth")) == {"credentials": pairs}


def test_basic_secret_from_values_or_existing_not_both(helm: Path) -> None:
    result = helm_template(
        helm, {"auth": {"credentials": "ultracart:pw", "existingSecret": "mine"}}
    )
    assert result.returncode != 0
    assert "auth.credentials and auth.existingSecret exclude each other" in result.stderr


def _install_dry_run(
    helm: Path, kube: FakeKube, directory: Path, values: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """``helm install --dry-run=server`` against the fake API: lookup answers from it."""
    values_file = directory / "values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    return subprocess.run(
        [
            str(helm),
            "install",
            NAME,
            str(CHART_DIR),
            "--namespace",
            "relay",
            "--kubeconfig",
            str(kube.kubeconfig(directory)),
            "--dry-run=server",
            "--disable-openapi-validation",
            "--output",
            "json",
            "--values",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _in_cluster(kube: FakeKube) -> None:
    # What every namespace of a real cluster holds; the chart's "is there a cluster" test.
    kube.put(
        "relay",
        "configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt"},
            "data": {},
        },
    )


def _secret(name: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, **metadata},
        "data": encoded,
    }


def test_a_missing_existing_secret_fails_the_install(helm: Path, tmp_path: Path) -> None:
    with fake_kube() as kube:
        _in_cluster(kube)
        missing = _install_dry_run(helm, kube, tmp_path, {"auth": {"existingSecret": "mine"}})
        kube.put("relay", "secrets", _secret("mine", {"other": "x"}))
        wrong_key = _install_dry_run(helm, kube, tmp_path, {"auth": {"existingSecret": "mine"}})
        kube.put("relay", "secrets", _secret("mine", {"credentials": "ultracart:pw\n"}))
        present = _install_dry_run(helm, kube, tmp_path, {"auth": {"existingSecret": "mine"}})
    assert missing.returncode != 0
    assert 'auth.existingSecret: Secret "mine" not found in namespace "relay"' in missing.stderr
    assert "kubectl -n relay create secret generic mine --from-literal=credentials=" in (
        missing.stderr
    )
    assert wrong_key.returncode != 0
    assert 'Secret "mine" has no key "credentials"' in wrong_key.stderr
    assert present.returncode == 0, present.stderr
    manifests = [m for m in yaml.safe_load_all(json.loads(present.stdout)["manifest"]) if m]
    assert not by_kind(manifests, "Secret")  # named, so not created
    assert pod_spec(workload(manifests))["volumes"][1]["secret"]["secretName"] == "mine"


def test_without_a_cluster_the_existing_secret_cannot_be_checked(helm: Path) -> None:
    """helm template has no cluster to ask: it renders, and docs/deploy.md says so."""
    manifests = render_chart(helm, {"auth": {"existingSecret": "mine"}})
    assert not by_kind(manifests, "Secret")


def test_an_upgrade_keeps_the_live_generated_secret(helm: Path, tmp_path: Path) -> None:
    """What lookup finds is rendered back as it is (including what rotation wrote), and a
    Secret left behind by `helm uninstall` (resource-policy keep) is taken over again."""
    live = {
        "credentials": "ultracart:kept-one\nrelay-1a2b:rotated\n",
        "webhook": "relay-1a2b:rotated\n",
        "control-state": '{"webhooks": {}}',
    }
    with fake_kube() as kube:
        _in_cluster(kube)
        kube.put(
            "relay",
            "secrets",
            _secret(
                f"{NAME}-basic-auth",
                live,
                labels={"app.kubernetes.io/managed-by": "Helm"},
                annotations={
                    "meta.helm.sh/release-name": NAME,
                    "meta.helm.sh/release-namespace": "relay",
                    "helm.sh/resource-policy": "keep",
                },
            ),
        )
        result = _install_dry_run(helm, kube, tmp_path, {})
    assert result.returncode == 0, result.stderr
    manifests = [m for m in yaml.safe_load_all(json.loads(result.stdout)["manifest"]) if m]
    assert _data(one(manifests, "Secret", f"{NAME}-basic-auth")) == live


# Autoscaling and the spool.


def test_autoscaling_with_the_spool_is_refused(helm: Path) -> None:
    result = helm_template(helm, {"spool": {"enabled": True}})  # autoscaling is on by default
    assert result.returncode != 0
    assert "autoscaling.enabled and spool.enabled exclude each other" in result.stderr
    assert "retained volumes" in result.stderr
