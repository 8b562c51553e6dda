"""A Kubernetes API server just large enough for helm and the chart's control wrapper.

The chart reads the cluster with ``lookup`` (the intake Secret: is it there, what does it
hold), which ``helm template`` cannot exercise: lookup answers only when helm talks to a
cluster. This server answers what ``helm install --dry-run=server`` asks on the way
(version, discovery, release history, one GET per object) from an in-memory object table,
and records every request; ``files/kube-control.py`` GETs and PATCHes a Secret on it.

Plain HTTP on 127.0.0.1, no authentication checks: it stands in for the API, not for RBAC.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# group/version -> (kind, plural, namespaced) for every kind the chart renders.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("Secret", "secrets", True),
        ("ConfigMap", "configmaps", True),
        ("Service", "services", True),
        ("ServiceAccount", "serviceaccounts", True),
        ("Namespace", "namespaces", False),
    ],
    "apps/v1": [("Deployment", "deployments", True), ("StatefulSet", "statefulsets", True)],
    "autoscaling/v2": [("HorizontalPodAutoscaler", "horizontalpodautoscalers", True)],
    "policy/v1": [("PodDisruptionBudget", "poddisruptionbudgets", True)],
    "networking.k8s.io/v1": [
        ("NetworkPolicy", "networkpolicies", True),
        ("Ingress", "ingresses", True),
    ],
    "batch/v1": [("Job", "jobs", True), ("CronJob", "cronjobs", True)],
    "rbac.authorization.k8s.io/v1": [
        ("Role", "roles", True),
        ("RoleBinding", "rolebindings", True),
    ],
}


@dataclass
class FakeKube:
    """Objects by (namespace, plural, name); every (method, path) seen and every PATCH body
    applied are recorded."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, namespace: str, plural: str, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        meta.setdefault("resourceVersion", "1")
        self.objects[(namespace, plural, meta["name"])] = obj

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        path.chmod(0o600)
        return path


def _discovery(path: str) -> dict[str, Any] | None:
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        groups = []
        for group_version in RESOURCES:
            if "/" in group_version:
                group, version = group_version.split("/")
                entry = {"groupVersion": group_version, "version": version}
                groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    for group_version, kinds in RESOURCES.items():
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        if path == prefix:
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": [
                    {
                        "name": plural,
                        "singularName": kind.lower(),
                        "namespaced": namespaced,
                        "kind": kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    }
                    for kind, plural, namespaced in kinds
                ],
            }
    return None


def _object_path(path: str) -> tuple[str, str, str | None] | None:
    """(namespace, plural, name or None for a list) of a namespaced object URL."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        parts = parts[2:]
    elif parts[0] == "apis":
        parts = parts[3:]
    else:
        return None
    if len(parts) in (3, 4) and parts[0] == "namespaces":
        return parts[1], parts[2], parts[3] if len(parts) == 4 else None
    return None


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._send(
                code,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": message,
                    "reason": reason,
                    "code": code,
                },
            )

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with kube.lock:
                kube.requests.append(("GET", path))
                found = _discovery(path)
                if found is not None:
                    self._send(200, found)
                    return
                where = _object_path(path)
                if where is None:
                    self._status(404, "NotFound", f"{path} not found")
                    return
                namespace, plural, name = where
                if name is None:
                    # helm's release history: no earlier release of this name.
                    self._send(
                        200,
                        {
                            "kind": "List",
                            "apiVersion": "v1",
                            "items": [],
                            "metadata": {"resourceVersion": "1"},
                        },
                    )
                    return
                obj = kube.objects.get((namespace, plural, name))
                if obj is None:
                    self._status(404, "NotFound", f'{plural} "{name}" not found')
                    return
                self._send(200, obj)

        def do_PATCH(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length", "0"))
            patch = json.loads(self.rfile.read(length))
            with kube.lock:
                kube.requests.append(("PATCH", path))
                where = _object_path(path)
                obj = None
                if where is not None and where[2] is not None:
                    obj = kube.objects.get((where[0], where[1], where[2]))
                if obj is None:
                    self._status(404, "NotFound", "not found")
                    return
                meta = obj["metadata"]
                wanted = patch.get("metadata", {}).get("resourceVersion")
                if wanted and wanted != meta["resourceVersion"]:
                    self._status(409, "Conflict", "the object has been modified")
                    return
                kube.patches.append(patch)
                obj.setdefault("data", {}).update(patch.get("data", {}))
                meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
                self._send(200, obj)

    return Handler


@contextmanager
def fake_kube() -> Iterator[FakeKube]:
    kube = FakeKube()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(kube))
    kube.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kube
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
