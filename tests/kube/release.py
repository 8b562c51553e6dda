"""What the cluster tests share: the release's names and values, the images, and the small
HTTP and kubectl helpers the tests drive it with (tests/kube/test_kube_chart.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from tests.kube.cluster import (
    CHART,
    DOCKER_SCRIPTS,
    KUBE,
    NOTES,
    Cluster,
    wait_for,
)
from tests.support.commands import run

NS = "relay-e2e"
DEPS = "relay-e2e-deps"
NODE = "relay-kube"
STORAGE_CLASS = "relay-e2e-local"
RELEASE = "relay"
SPOOL_RELEASE = "relay-spool"
RELAY_IMAGE = "relay:kube-e2e"
# The same image under a second tag: a rolling update changes the pods' image reference.
RELAY_IMAGE_NEXT = "relay:kube-e2e-next"
SIMPLE_KEY = "kube-e2e-simple-key"
KAFKA_SERVICE = f"kafka.{DEPS}.svc.cluster.local:9092"
EMULATOR_API = f"http://emulator.{DEPS}.svc.cluster.local:8090/rest/v2"
WEBHOOK_URL = f"http://{RELEASE}.{NS}.svc.cluster.local:8080/webhooks/ultracart"
TOPICS = [
    "ultracart.order_create",
    "ultracart.order_update",
    "ultracart.item_update",
    "ultracart.unknown",
    "ultracart.dead_letter",
]
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}
# What the release is installed with; later tests add to it with --set.
VALUES = [
    "image.repository=relay",
    "image.tag=kube-e2e",
    "image.pullPolicy=Never",
    "autoscaling.enabled=false",
    "replicaCount=2",
    f"config.kafka.bootstrap_servers={KAFKA_SERVICE}",
    "createTopics.enabled=true",
    "control.enabled=true",
    "ultracart.simpleKey.existingSecret=ultracart-api",
    f"control.webhooks.ultracart.api_base_url={EMULATOR_API}",
    f"control.webhooks.webhook.url={WEBHOOK_URL}",
    # The node's kubelet syncs every 10 s (deploy/local/kube), not every minute.
    "control.reloadWaitSeconds=30",
    "control.drainSeconds=10",
]
RATE = 20.0
INTAKE_PODS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=intake"


def set_values(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def helm_release(cluster: Cluster, verb: str, *values: str) -> subprocess.CompletedProcess[str]:
    """``helm install`` or ``upgrade`` of the test's release with VALUES and ``values`` on
    top, waiting (six minutes at most) for its pods to be Ready."""
    return cluster.helm(
        verb,
        RELEASE,
        str(CHART),
        "-n",
        NS,
        *set_values([*VALUES, *values]),
        "--wait",
        "--timeout",
        "6m",
    )


def namespace(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": RESTRICTED},
        }
    )


def images() -> None:
    """relay's image from the Dockerfile and the Kafka stand-in make test-compose builds,
    on the Docker engine, then copied into the node's containerd."""
    run([str(DOCKER_SCRIPTS / "install-engine")], timeout=600)
    run([str(DOCKER_SCRIPTS / "dockerd"), "start"], timeout=120)
    try:
        run([str(DOCKER_SCRIPTS / "python-image")], timeout=900)
        kafka = run([str(DOCKER_SCRIPTS / "kafka-image")], timeout=900).stdout.split()[-1]
        env = {"DOCKER_BUILDKIT": "0"}
        run(
            ["docker", "build", "--quiet", "--tag", RELAY_IMAGE, "."],
            timeout=900,
            env=dict(os.environ, **env),
        )
        run(["docker", "tag", RELAY_IMAGE, RELAY_IMAGE_NEXT], timeout=60)
        run([str(KUBE), "load", RELAY_IMAGE, RELAY_IMAGE_NEXT, kafka], timeout=600)
        NOTES.append(f"images: {RELAY_IMAGE}, {RELAY_IMAGE_NEXT}, {kafka}")
    finally:
        run([str(DOCKER_SCRIPTS / "dockerd"), "stop"], timeout=120)


def cleanup(kube: Cluster) -> None:
    """What an earlier, interrupted run left: namespaces and the test's volumes."""
    for ns in (NS, DEPS):
        kube.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait", timeout=300)
    kube.kubectl("delete", "pv", "-l", "relay-e2e=yes", "--ignore-not-found", timeout=120)


def kafka_bootstrap(kube: Cluster) -> str:
    """Kafka's EXTERNAL listener on its pod's address, which the host routes to."""

    def address() -> str | None:
        pods = kube.ready_pods(DEPS, "app=kafka")
        return f"{pods[0]['status']['podIP']}:9094" if pods else None

    return wait_for("a Ready Kafka pod", address, 180)


def relay_url(kube: Cluster, release: str = RELEASE) -> str:
    return f"http://{kube.service_ip(NS, release)}:8080/webhooks/ultracart"


def webhook_pair(kube: Cluster, release: str = RELEASE) -> tuple[str, str]:
    # The rotation Job writes the key as a file's contents, with a final newline.
    pair = kube.secret_value(NS, f"{release}-basic-auth", "webhook").strip()
    user, _, password = pair.partition(":")
    return user, password


def post(url: str, body: bytes, auth: tuple[str, str]) -> int:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def emulator(kube: Cluster, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://{kube.service_ip(DEPS, 'emulator')}:8090{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if data is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def rollout(kube: Cluster, kind: str, name: str, timeout: float = 300) -> None:
    kube.kubectl(
        "-n",
        NS,
        "rollout",
        "status",
        f"{kind}/{name}",
        f"--timeout={timeout:.0f}s",
        timeout=timeout + 10,
    )


def run_control_job(cluster: Cluster, command: str, timeout: float) -> str:
    job = f"{command}-{int(time.time())}"
    cluster.kubectl("-n", NS, "create", "job", f"--from=cronjob/{RELEASE}-control-{command}", job)

    def finished() -> str | None:
        status = cluster.get(NS, "job", job).get("status", {})
        if status.get("succeeded"):
            return "ok"
        if status.get("failed"):
            return "failed"
        return None

    outcome = wait_for(f"job {job}", finished, timeout, interval=2)
    logs = cluster.kubectl("-n", NS, "logs", f"job/{job}", check=False).stdout
    assert outcome == "ok", logs
    return logs
