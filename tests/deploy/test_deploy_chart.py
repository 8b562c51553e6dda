"""The Helm chart, rendered with helm itself under several value sets.

Every rendered manifest is validated against the Kubernetes OpenAPI schemas bundled with
kubernetes-validate, in their strict form (unknown fields rejected), for the oldest and
newest Kubernetes the chart claims. ServiceMonitor and PrometheusRule are CRDs with no
bundled schema: they are validated against the prometheus-operator CRDs' own
openAPIV3Schema (fetched by deploy/tools/install), made strict the same way, so a
misspelt field fails here instead of being pruned silently by the API server.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kubernetes_schemas  # type: ignore[import-untyped]
import msgspec.inspect as mi
import pytest
import yaml

from relay.control.desired import load as load_webhooks
from relay.kafka.client_config import producer_config
from relay.settings import ConfigError, Settings
from relay.settings.coerce import unwrap
from tests.deploy.fake_kube import FakeKube, fake_kube
from tests.deploy.support import (
    CHART_DIR,
    KUBE_VERSIONS,
    REPO_ROOT,
    Manifest,
    by_kind,
    find_file,
    find_tool,
    helm_template,
    one,
    pod_spec,
    render_chart,
    run_tool,
    write_self_signed_pair,
)

NAME = "relay"  # release "relay" of chart "relay": every object is called "relay..."
SASL: dict[str, Any] = {
    "kafka": {
        "sasl": {
            "enabled": True,
            "mechanism": "SCRAM-SHA-512",
            "existingSecret": "kafka-credentials",
        },
        "tls": {"caSecret": "kafka-ca", "clientCertSecret": "kafka-client"},
    },
    "auth": {
        "existingSecret": "ultracart-basic",
        "signature": {"existingSecret": "webhook-signing"},
    },
    "ultracart": {"simpleKey": {"existingSecret": "ultracart-api"}},
    "config": {
        "kafka": {"bootstrap_servers": "b-1.msk.example:9096,b-2.msk.example:9096"},
        "ultracart": {
            "enabled": True,
            "webhook_url": "https://relay.example.com/webhooks/ultracart",
        },
    },
}
MONITORING: dict[str, Any] = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}
EVERYTHING: dict[str, Any] = {
    **copy.deepcopy(SASL),
    **MONITORING,
    "spool": {"enabled": True, "persistence": {"storageClassName": "gp3", "size": "20Gi"}},
    # The chart refuses the autoscaler with the spool (scaling down strands spooled records).
    "autoscaling": {"enabled": False},
    "replicaCount": 3,
    "tls": {"enabled": True, "secretName": "relay-tls"},
    "control": {"enabled": True},
    "createTopics": {"enabled": True},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "hosts": [{"host": "relay.example.com"}],
        "tls": [{"secretName": "relay-tls", "hosts": ["relay.example.com"]}],
    },
    "extraEnv": [{"name": "RELAY_INTAKE__ACK_DEADLINE_SECONDS", "value": "8"}],
}
EVERYTHING["config"] = {
    **copy.deepcopy(SASL["config"]),
    "server": {"shutdown_grace_seconds": 20.5, "log_level": "debug"},
    "spool": {"max_bytes": 10 * 1024**3, "fsync": "always"},
    "topics": {
        "events": {"order_create": "shop.orders.created"},
        "patterns": [{"match": "item_*", "topic": "shop.items"}],
    },
    "keys": {"order_*": ["order_id"]},
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "spool": {"spool": {"enabled": True}, "autoscaling": {"enabled": False}, "replicaCount": 2},
    "sasl-and-secrets": SASL,
    "autoscaling-off": {
        "autoscaling": {"enabled": False},
        "replicaCount": 3,
        "config": {"server": {"workers": 2}},
    },
    "monitoring": MONITORING,
    "everything": EVERYTHING,
}
CRD_FILES = {
    "ServiceMonitor": "crds/monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "crds/monitoring.coreos.com_prometheusrules.yaml",
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_tool("helm")


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    """Each value set rendered once, for the newest Kubernetes version."""
    return {name: render_chart(helm, values) for name, values in VALUE_SETS.items()}


def workload(manifests: list[Manifest]) -> Manifest:
    found = [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")]
    assert len(found) == 1, [m["kind"] for m in found]
    return found[0]


def relay_container(manifests: list[Manifest]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(workload(manifests))["containers"]
    return next(c for c in containers if c["name"] == "relay")


def relay_toml(manifests: list[Manifest]) -> str:
    text: str = one(manifests, "ConfigMap", NAME)["data"]["relay.toml"]
    return text


def strict(schema: Any) -> Any:
    """The schema with unknown properties rejected wherever it lists the known ones."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schema(kind: str, api_version: str) -> dict[str, Any]:
    crd = yaml.safe_load(find_file(CRD_FILES[kind]).read_text(encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == kind
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group
    served = {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}
    assert version in served, f"{api_version} is not served by the {kind} CRD"
    schema: dict[str, Any] = strict(served[version]["schema"]["openAPIV3Schema"])
    # Like the API server: metadata is ObjectMeta, not the CRD's business.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def validate(manifest: Manifest, kube_version: str) -> None:
    kind = manifest["kind"]
    where = f"{kind}/{manifest['metadata']['name']}"
    if kind in CRD_FILES:
        try:
            jsonschema.Draft7Validator(crd_schema(kind, manifest["apiVersion"])).validate(manifest)
        except jsonschema.ValidationError as error:
            pytest.fail(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
        return
    try:
        kubernetes_schemas.validate(manifest, kube_version, strict=True)
    except kubernetes_schemas.ValidationError as error:
        pytest.fail(
            f"{where} (Kubernetes {kube_version}): {'.'.join(map(str, error.path))}: "
            f"{error.message}"
        )
    except kubernetes_schemas.SchemaNotFoundError as error:
        pytest.fail(f"{where}: {error.message}")


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_manifests_match_the_schemas(helm: Path, value_set: str, kube_version: str) -> None:
    manifests = render_chart(helm, VALUE_SETS[value_set], kube_version=kube_version)
    assert manifests
    for manifest in manifests:
        validate(manifest, kube_version)


def test_schema_validation_catches_mistakes(rendered: dict[str, list[Manifest]]) -> None:
    """The validation above is strict: a misspelt field fails, in core kinds and CRDs."""
    deployment = copy.deepcopy(workload(rendered["defaults"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(deployment, KUBE_VERSIONS[-1], strict=True)
    monitor = copy.deepcopy(one(rendered["monitoring"], "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(crd_schema("ServiceMonitor", monitor["apiVersion"])).validate(
            monitor
        )
    rule = copy.deepcopy(one(rendered["monitoring"], "PrometheusRule"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(crd_schema("PrometheusRule", rule["apiVersion"])).validate(rule)


def test_helm_lint_passes(helm: Path) -> None:
    run_tool([helm, "lint", "--strict", CHART_DIR])
    # helm lint reports a template's fail() only as INFO, so lint the spool variant as it
    # can be installed: without the autoscaler.
    run_tool(
        [
            helm,
            "lint",
            "--strict",
            CHART_DIR,
            "--set",
            "spool.enabled=true",
            "--set",
            "autoscaling.enabled=false",
        ]
    )
    run_tool(
        [
            helm,
            "lint",
            "--strict",
            CHART_DIR,
            "--set",
            "control.enabled=true",
            "--set",
            "ultracart.simpleKey.existingSecret=ultracart-api",
            "--set",
            "control.webhooks.webhook.url=https://relay.example.com/webhooks/ultracart",
            "--set",
            "tls.enabled=true",
            "--set",
            "tls.secretName=relay-tls",
        ]
    )


@pytest.mark.parametrize(
    ("value_set", "expected"),
    [
        (
            "defaults",
            {
                "ConfigMap",
                "Pod",  # helm test (templates/tests)
                "Deployment",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Secret",
                "Service",
                "ServiceAccount",
            },
        ),
        (
            "spool",
            {
                "ConfigMap",
                "Pod",  # helm test (templates/tests)
                "StatefulSet",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Secret",
                "Service",
                "ServiceAccount",
            },
        ),
        (
            "autoscaling-off",
            {
                "ConfigMap",
                "Pod",  # helm test (templates/tests)
                "Deployment",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Secret",
                "Service",
                "ServiceAccount",
            },
        ),
        (
            "everything",
            {
                "ConfigMap",
                "Pod",  # helm test (templates/tests)
                "StatefulSet",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
                "PrometheusRule",
                "Ingress",
                "Job",
                "CronJob",
                "Role",
                "RoleBinding",
            },
        ),
    ],
)
def test_each_value_set_renders_its_kinds(
    rendered: dict[str, list[Manifest]], value_set: str, expected: set[str]
) -> None:
    manifests = rendered[value_set]
    assert {m["kind"] for m in manifests} == expected
    # The only Secret the chart may create is the intake credentials, and only when no
    # existing one is named; every other secret is referenced.
    created = [m["metadata"]["name"] for m in by_kind(manifests, "Secret")]
    expected_secrets = (
        [] if "existingSecret" in VALUE_SETS[value_set].get("auth", {}) else [f"{NAME}-basic-auth"]
    )
    assert created == expected_secrets


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


# values.schema.json and relay's own settings.

# Keys relay has that the chart sets itself, so values.schema.json leaves them out of
# config: secrets come from Secrets, the spool's switch and path from spool.*.
CHART_OWNED_KEYS = {
    "auth.basic_credentials",
    "auth.basic_credentials_file",
    "auth.signature.secrets",
    "spool.enabled",
    "spool.directory",
}
# Tables whose keys are the user's (names of events, librdkafka options), not relay's.
OPEN_TABLES = {"kafka.librdkafka", "topics.events", "keys"}


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    assert node.get("additionalProperties") is False, f"config{prefix or ''} is open"
    for name, child in node["properties"].items():
        path = f"{prefix}.{name}".lstrip(".")
        keys.add(path)
        if child.get("type") == "object" and path not in OPEN_TABLES:
            keys |= _schema_keys(child, f".{path}")
    return keys


def _relay_keys() -> set[str]:
    """Every key relay's settings loader reads, from its schema."""
    keys: set[str] = set()

    def walk(node: mi.Type, prefix: str) -> None:
        node = unwrap(node)
        if not isinstance(node, mi.StructType):
            return
        for field in node.fields:
            path = f"{prefix}.{field.encode_name}".lstrip(".")
            keys.add(path)
            if path not in OPEN_TABLES:
                walk(field.type, path)

    walk(mi.type_info(Settings), "")
    return keys


def _unknown_to_relay(key: str) -> bool:
    """Does relay's loader call ``key`` unknown? Other complaints (types) do not count."""
    *tables, leaf = key.split(".")
    raw: dict[str, Any] = {leaf: {} if key in OPEN_TABLES else "x"}
    for table in reversed(tables):
        raw = {table: raw}
    if tables[:1] == ["ultracart"]:
        raw["ultracart"]["enabled"] = True  # relay checks [ultracart] keys only when on
    try:
        Settings.from_mapping(raw)
    except ConfigError as error:
        return "unknown" in str(error)
    return False


def test_the_values_schema_lists_exactly_relays_config_keys() -> None:
    """values.schema.json closes config with relay's own keys; this fails when relay gains,
    loses or renames a setting and the schema does not follow (or the other way round)."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    in_schema = _schema_keys(schema["properties"]["config"])
    in_relay = _relay_keys()
    example = tomllib.loads((REPO_ROOT / "config" / "relay.toml").read_text(encoding="utf-8"))

    def flatten(table: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for name, value in table.items():
            path = f"{prefix}{name}"
            found.add(path)
            if isinstance(value, dict) and path not in OPEN_TABLES:
                found |= flatten(value, f"{path}.")
        return found

    # The settings types and the documented example agree, and relay's loader takes them.
    assert flatten(example) <= in_relay, flatten(example) - in_relay
    assert CHART_OWNED_KEYS.issubset(in_relay)
    assert in_schema == in_relay - CHART_OWNED_KEYS, {
        "in the schema, not in relay": sorted(in_schema - in_relay),
        "in relay, not in the schema": sorted(in_relay - CHART_OWNED_KEYS - in_schema),
    }
    assert [k for k in sorted(in_schema) if _unknown_to_relay(k)] == []
    assert _unknown_to_relay("server.prot") and _unknown_to_relay("ultracart.oauth.client")


@pytest.mark.parametrize(
    "config",
    [
        {"server": {"prot": 8080}},
        {"kafka": {"bootstrap_server": "kafka:9092"}},
        {"spool": {"fsynk": "always"}},
        {"auth": {"signature": {"tolerance": 300}}},
        {"ultracart": {"oauth": {"client": "x"}}},
        {"topics": {"patterns": [{"match": "order_*", "topik": "orders"}]}},
        {"metrics": {}},
    ],
)
def test_a_misspelt_config_key_fails_helm(helm: Path, config: dict[str, Any]) -> None:
    result = helm_template(helm, {"config": config})
    assert result.returncode != 0
    assert "additional properties" in result.stderr and "not allowed" in result.stderr


# HTTPS from a kubernetes.io/tls Secret.


def test_tls_secret_is_mounted_and_named_to_relay(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["everything"]
    container = relay_container(manifests)
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["RELAY_SERVER__TLS_CERT_FILE"] == "/etc/relay/tls/tls.crt"
    assert env["RELAY_SERVER__TLS_KEY_FILE"] == "/etc/relay/tls/tls.key"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount == {"name": "tls", "mountPath": "/etc/relay/tls", "readOnly": True}  # no subPath
    volume = next(v for v in pod_spec(workload(manifests))["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "relay-tls"
    assert {i["key"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key"}
    # Same ports as plain HTTP; the probes stay on the plain-HTTP admin port.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "admin": 9090}
    assert container["readinessProbe"]["httpGet"]["port"] == "admin"
    assert not [
        m for m in relay_container(rendered["defaults"])["volumeMounts"] if m["name"] == "tls"
    ]


def test_tls_needs_a_secret_name(helm: Path) -> None:
    result = helm_template(helm, {"tls": {"enabled": True}})
    assert result.returncode != 0
    assert "tls.secretName is required when tls.enabled" in result.stderr


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
    assert set(jobs) == {f"{NAME}-control-apply", f"{NAME}-control-rotate-credentials"}
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
