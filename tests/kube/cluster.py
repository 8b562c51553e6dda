"""Driving the local cluster (deploy/local/kube) for tests/kube: kubectl and helm with
deadlines, the images, the volumes the chart's claims bind to, and phase timings."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.support.commands import run, timed

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE = REPO_ROOT / "deploy" / "local" / "kube"
DOCKER_SCRIPTS = REPO_ROOT / "deploy" / "docker"
MANIFESTS = Path(__file__).resolve().parent / "manifests"
CHART = REPO_ROOT / "deploy" / "helm" / "relay"

PHASES: list[tuple[str, float]] = []
NOTES: list[str] = []

T = TypeVar("T")


def phase(name: str) -> AbstractContextManager[None]:
    return timed(name, PHASES)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last answer."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    helm_bin: str
    home: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        # helm keeps its cache and config away from ~ (and from other clusters' state).
        env.setdefault("HELM_CACHE_HOME", str(self.home / "helm" / "cache"))
        env.setdefault("HELM_CONFIG_HOME", str(self.home / "helm" / "config"))
        env.setdefault("HELM_DATA_HOME", str(self.home / "helm" / "data"))
        return env

    def kubectl(
        self, *args: str, timeout: float = 60, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [str(KUBE), "kubectl", *args], timeout=timeout, env=self.env, check=check, input=input
        )

    def helm(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([self.helm_bin, *args], timeout=timeout, env=self.env, check=check)

    def get(self, namespace: str, *what: str) -> Any:
        out = self.kubectl("-n", namespace, "get", *what, "-o", "json").stdout
        return json.loads(out)

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        self.kubectl(*ns, "apply", "-f", "-", input=manifest, timeout=120)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        import base64

        data = self.get(namespace, "secret", name)["data"]
        return base64.b64decode(data[key]).decode()

    def service_ip(self, namespace: str, name: str) -> str:
        ip: str = self.get(namespace, "service", name)["spec"]["clusterIP"]
        return ip

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(namespace, "pods", "-l", selector)["items"]
        return items

    def ready_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(namespace, selector) if pod_ready(p)]


def pod_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def local_volume(name: str, path: Path, size: str, storage_class: str, node: str) -> str:
    """A ``local`` PersistentVolume on the node: unlike hostPath, the kubelet applies the
    pod's fsGroup to it, as a provisioner's volume would get."""
    path.mkdir(parents=True, exist_ok=True)
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"relay-e2e": "yes"}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": storage_class,
                "local": {"path": str(path)},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [node],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }
    )
