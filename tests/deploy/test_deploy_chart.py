"""The Helm chart, rendered with helm itself under several value sets.

Every rendered manifest is validated against the Kubernetes OpenAPI schemas bundled with
kubernetes-validate, in their strict form (unknown fields rejected), for the oldest and
newest Kubernetes the chart claims. ServiceMonitor and PrometheusRule are CRDs with no
bundled schema: they are validated against the prometheus-operator CRDs' own
openAPIV3Schema (fetched by deploy/tools/install), made strict the same way, so a
misspelt field fails here instead of being pruned silently by the API server.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate.utils as kubernetes_schemas  # type: ignore[import-untyped]
import pytest

from tests.deploy.chart import NAME, VALUE_SETS, crd_schema, validate, workload
from tests.deploy.support import (
    CHART_DIR,
    KUBE_VERSIONS,
    Manifest,
    by_kind,
    one,
    render_chart,
    run_tool,
)


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
