"""What the Helm chart tests share: the value sets they render, and helpers to read and
validate what helm renders (the fixtures are in conftest.py)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate.utils as kubernetes_schemas  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.support import Manifest, find_file, one, pod_spec

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
