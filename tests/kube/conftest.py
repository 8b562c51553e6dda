"""The cluster the tests run against (built, started and stopped here unless it was already
running), and the phase timings printed at the end of the run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.support import find_tool
from tests.kube.cluster import (
    KUBE,
    MANIFESTS,
    NOTES,
    PHASES,
    Cluster,
    local_volume,
    phase,
)
from tests.kube.release import (
    DEPS,
    NODE,
    NS,
    RELAY_IMAGE,
    SIMPLE_KEY,
    STORAGE_CLASS,
    cleanup,
    images,
    namespace,
)
from tests.support.commands import report_phases, run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_phases(terminalreporter, "kube e2e phases", PHASES, NOTES, width=40)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    was_running = run([str(KUBE), "status"], timeout=60, check=False).returncode == 0
    try:
        # Inside the try: a start that fails half-way is stopped as well.
        with phase("cluster start (build if cold)"):
            kubeconfig = run([str(KUBE), "start"], timeout=5400).stdout.strip().splitlines()[-1]
        home = Path(kubeconfig).parent
        with phase("images"):
            images()
        kafka_image = NOTES[-1].split(", ")[-1]
        kube = Cluster(kubeconfig, str(find_tool("helm")), home)
        with phase("dependencies (kafka, emulator)"):
            cleanup(kube)
            kube.apply(namespace(NS))
            kube.apply(namespace(DEPS))
            kube.apply(
                json.dumps(
                    {
                        "apiVersion": "storage.k8s.io/v1",
                        "kind": "StorageClass",
                        "metadata": {"name": STORAGE_CLASS},
                        "provisioner": "kubernetes.io/no-provisioner",
                        "volumeBindingMode": "WaitForFirstConsumer",
                    }
                )
            )
            volumes = home / "volumes" / uuid.uuid4().hex[:8]
            for index in range(3):
                kube.apply(
                    local_volume(
                        f"relay-e2e-{index}", volumes / str(index), "5Gi", STORAGE_CLASS, NODE
                    )
                )
            deps = (MANIFESTS / "deps.yaml").read_text()
            for key, value in {
                "@NS@": DEPS,
                "@RELAY_IMAGE@": RELAY_IMAGE,
                "@KAFKA_IMAGE@": kafka_image,
                "@STORAGE_CLASS@": STORAGE_CLASS,
            }.items():
                deps = deps.replace(key, value)
            kube.apply(deps, DEPS)
            kube.kubectl(
                "-n",
                NS,
                "create",
                "secret",
                "generic",
                "ultracart-api",
                f"--from-literal=simple-key={SIMPLE_KEY}",
            )
            kube.kubectl("-n", DEPS, "rollout", "status", "statefulset/kafka", timeout=300)
            kube.kubectl("-n", DEPS, "rollout", "status", "deployment/emulator", timeout=300)
        yield kube
    finally:
        if not was_running:
            run([str(KUBE), "stop"], timeout=300, check=False)
