"""The chart's pods and what surrounds them: hardening, probes, the config relay reads,
services, scaling, the spool's StatefulSet, network policy, monitoring, refused values."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.kafka.client_config import producer_config
from relay.settings import Settings
from tests.deploy.chart import NAME, VALUE_SETS, relay_container, relay_toml, workload
from tests.deploy.support import (
    CHART_DIR,
    KUBE_VERSIONS,
    REPO_ROOT,
    Manifest,
    by_kind,
    helm_template,
    one,
    pod_spec,
    render_chart,
    write_self_signed_pair,
)


def _pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield where, pod_spec(manifest)
        elif manifest["kind"] == "Pod":
            yield where, manifest["spec"]
        elif manifest["kind"] == "CronJob":
            yield where, manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_run_hardened(rendered: dict[str, list[Manifest]], value_set: str) -> None:
    pods = list(_pod_specs(rendered[value_set]))
    assert pods
    relay_account = pod_spec(workload(rendered[value_set]))["serviceAccountName"]
    for where, spec in pods:
        if where.startswith("CronJob/"):
            # The control Jobs alone get a token, for their own account (a Role on one Secret).
            assert spec["automountServiceAccountToken"] is True, where
            assert spec["serviceAccountName"] == f"{NAME}-control" != relay_account, where
        else:
            assert spec["automountServiceAccountToken"] is False, where
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["runAsUser"] != 0, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["privileged"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"]["memory"], where
            for variable in container.get("env", []):
                # Secret material arrives only through secretKeyRef, never as a literal.
                if variable["name"].endswith("_FILE"):
                    # A path to a mounted Secret (the TLS key, say), not the secret itself.
                    assert variable["value"].startswith("/etc/relay/"), variable["name"]
                elif any(word in variable["name"] for word in ("PASSWORD", "SECRET", "KEY")):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes_use_the_admin_port(rendered: dict[str, list[Manifest]], value_set: str) -> None:
    manifests = rendered[value_set]
    container = relay_container(manifests)
    settings = tomllib.loads(relay_toml(manifests))["server"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings["port"], "admin": settings["admin_port"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["args"] == ["serve", "--config", "/etc/relay/relay.toml"]


@pytest.mark.parametrize(
    ("values", "grace"),
    [
        ({}, 25 + 5 + 5),
        ({"config": {"server": {"shutdown_grace_seconds": 40}}}, 40 + 5 + 5),
        ({"config": {"server": {"shutdown_grace_seconds": 20.5}}}, 21 + 5 + 5),
        ({"termination": {"preStopSleepSeconds": 10, "marginSeconds": 2}}, 25 + 10 + 2),
    ],
)
def test_termination_grace_covers_the_drain(helm: Path, values: dict[str, Any], grace: int) -> None:
    """Kubernetes waits for the preStop sleep plus relay's whole drain, with a margin."""
    manifests = render_chart(helm, values)
    spec = pod_spec(workload(manifests))
    shutdown = tomllib.loads(relay_toml(manifests))["server"]["shutdown_grace_seconds"]
    sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] == grace
    assert spec["terminationGracePeriodSeconds"] >= math.ceil(shutdown) + sleep + 1


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_relay_accepts_the_rendered_config(
    rendered: dict[str, list[Manifest]],
    value_set: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """relay's own loader reads the ConfigMap's relay.toml with the pod's environment."""
    manifests = rendered[value_set]
    config_file = tmp_path / "relay.toml"
    config_file.write_text(relay_toml(manifests), encoding="utf-8")
    env = {}
    for variable in relay_container(manifests).get("env", []):
        # Secrets are stand-ins here; what matters is that each lands on a real setting.
        env[variable["name"]] = variable.get("value", f"secret-{variable['name'].lower()}")
    if "RELAY_SERVER__TLS_CERT_FILE" in env:
        # relay loads the pair when it reads its settings: a real one, where the pod has it.
        cert, key = write_self_signed_pair(tmp_path)
        assert (env["RELAY_SERVER__TLS_CERT_FILE"], env["RELAY_SERVER__TLS_KEY_FILE"]) == (
            "/etc/relay/tls/tls.crt",
            "/etc/relay/tls/tls.key",
        )
        env["RELAY_SERVER__TLS_CERT_FILE"], env["RELAY_SERVER__TLS_KEY_FILE"] = cert, key
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the [ultracart] poller reads its key from os.environ
    settings = Settings.load(config_file, env=env)
    producer_config(settings.kafka, settings.intake)

    mounts = {m["name"]: m["mountPath"] for m in relay_container(manifests)["volumeMounts"]}
    assert settings.auth.basic_credentials_file == mounts["basic-auth"] + "/credentials"
    values = VALUE_SETS[value_set]
    assert settings.server.workers == values.get("config", {}).get("server", {}).get("workers", 1)
    if values.get("kafka", {}).get("sasl", {}).get("enabled"):
        options = settings.kafka.librdkafka
        assert options["security.protocol"] == "SASL_SSL"
        assert options["sasl.mechanism"] == "SCRAM-SHA-512"
        assert options["sasl.username"] == "secret-relay_kafka__librdkafka__sasl_username"
        assert options["ssl.ca.location"] == mounts["kafka-ca"] + "/ca.crt"
        assert options["ssl.certificate.location"] == mounts["kafka-client"] + "/tls.crt"
        assert settings.auth.signature.enabled
        assert settings.ultracart.enabled
    if values.get("spool", {}).get("enabled"):
        assert settings.spool.enabled
        assert settings.spool.directory == mounts["spool"]


def test_config_values_render_as_typed_toml(rendered: dict[str, list[Manifest]]) -> None:
    """Whole numbers stay integers (helm's toToml would write 8080.0), strings are quoted,
    dotted librdkafka keys, arrays and arrays of tables survive."""
    config = tomllib.loads(relay_toml(rendered["everything"]))
    assert config["server"]["port"] == 8080 and isinstance(config["server"]["port"], int)
    assert config["server"]["shutdown_grace_seconds"] == 20.5
    assert config["spool"]["max_bytes"] == 10 * 1024**3
    assert config["topics"]["patterns"] == [{"match": "item_*", "topic": "shop.items"}]
    assert config["topics"]["events"] == {"order_create": "shop.orders.created"}
    assert config["keys"] == {"order_*": ["order_id"]}
    assert config["kafka"]["librdkafka"]["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["kafka"]["bootstrap_servers"] == "b-1.msk.example:9096,b-2.msk.example:9096"


def test_services_split_intake_from_metrics(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["defaults"]
    pod_labels = workload(manifests)["spec"]["template"]["metadata"]["labels"]
    intake = one(manifests, "Service", NAME)
    metrics = one(manifests, "Service", f"{NAME}-metrics")
    for service in (intake, metrics):
        assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["targetPort"] for p in intake["spec"]["ports"]] == ["http"]
    assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["admin"]
    assert metrics["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("value_set", ["defaults", "spool", "autoscaling-off"])
def test_autoscaler_owns_the_replica_count(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    manifests = rendered[value_set]
    target = workload(manifests)
    autoscalers = by_kind(manifests, "HorizontalPodAutoscaler")
    if VALUE_SETS[value_set].get("autoscaling", {}).get("enabled", True):
        (autoscaler,) = autoscalers
        assert "replicas" not in target["spec"]
        assert autoscaler["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": target["kind"],
            "name": target["metadata"]["name"],
        }
    else:
        assert not autoscalers
        assert target["spec"]["replicas"] == VALUE_SETS[value_set]["replicaCount"]
    budget = one(manifests, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == target["spec"]["selector"]["matchLabels"]


def test_spool_variant_is_a_statefulset_with_a_claim(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["spool"]
    assert not by_kind(manifests, "Deployment")
    statefulset = one(manifests, "StatefulSet")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    mounts = {m["name"]: m["mountPath"] for m in relay_container(manifests)["volumeMounts"]}
    directory = tomllib.loads(relay_toml(manifests))["spool"]["directory"]
    assert mounts["spool"] == directory == "/var/lib/relay/spool"
    headless = one(manifests, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    # Scaling down keeps a pod's unsent records on its volume.
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"


def test_network_policy_allows_only_what_relay_uses(rendered: dict[str, list[Manifest]]) -> None:
    def egress_ports(manifests: list[Manifest]) -> set[int]:
        policy = one(manifests, "NetworkPolicy")
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}

    policy = one(rendered["defaults"], "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingress = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress == {"http", "admin"}
    admin_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "admin")
    assert admin_rule["from"], "the admin port must not be open to everyone by default"
    assert egress_ports(rendered["defaults"]) == {53, 9092, 9093, 9094, 9096}
    # The status poller's HTTPS only when it is on.
    assert egress_ports(rendered["sasl-and-secrets"]) == {53, 443, 9092, 9093, 9094, 9096}


def test_service_monitor_scrapes_the_metrics_service(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["monitoring"]
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = by_kind(manifests, "Service")
    matching = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in matching] == [f"{NAME}-metrics"]
    ports = {p["name"] for p in matching[0]["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in ports
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_prometheus_rule_matches_the_compose_alerts(rendered: dict[str, list[Manifest]]) -> None:
    rule = one(rendered["monitoring"], "PrometheusRule")
    compose = yaml.safe_load((REPO_ROOT / "deploy/prometheus/alerts.yml").read_text("utf-8"))
    assert rule["spec"] == compose


def test_grafana_dashboard_config_map_is_the_compose_dashboard(
    rendered: dict[str, list[Manifest]],
) -> None:
    config_map = one(rendered["monitoring"], "ConfigMap", f"{NAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "relay.json"
    assert json.loads(config_map["data"]["relay.json"]) == json.loads(
        dashboard.read_text(encoding="utf-8")
    )
    assert not [m for m in rendered["defaults"] if m["metadata"]["name"] == f"{NAME}-dashboard"]


def test_tls_without_sasl(helm: Path, tmp_path: Path) -> None:
    manifests = render_chart(helm, {"kafka": {"tls": {"enabled": True, "caSecret": "ca"}}})
    config_file = tmp_path / "relay.toml"
    config_file.write_text(relay_toml(manifests), encoding="utf-8")
    options = Settings.load(config_file, env={}).kafka.librdkafka
    assert options["security.protocol"] == "SSL"
    assert options["ssl.ca.location"] == "/etc/relay/secrets/kafka-ca/ca.crt"
    assert "sasl.mechanism" not in options


def test_values_schema_rejects_unknown_keys(helm: Path) -> None:
    result = helm_template(helm, {"replicaCont": 3})
    assert result.returncode != 0
    assert "replicaCont" in result.stderr


def test_sasl_without_a_secret_is_refused(helm: Path) -> None:
    result = helm_template(helm, {"kafka": {"sasl": {"enabled": True}}})
    assert result.returncode != 0
    assert "kafka.sasl.existingSecret is required" in result.stderr


def test_spool_with_several_workers_is_refused(helm: Path) -> None:
    """relay would refuse it at start-up (one writer per spool directory); helm says so first."""
    result = helm_template(helm, {"spool": {"enabled": True}, "config": {"server": {"workers": 2}}})
    assert result.returncode != 0
    assert "spool.enabled needs config.server.workers = 1" in result.stderr


def test_chart_claims_the_kubernetes_versions_it_is_tested_on() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == f">={KUBE_VERSIONS[0]}-0"
