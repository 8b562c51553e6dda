"""The chart on a real one-node cluster (`make test-kube`, docs/deploy.md): deploy/local/kube's
API server, scheduler, kubelet, containerd and kube-proxy run what `helm install` creates,
in a namespace that enforces Pod Security "restricted", against Kafka and the UltraCart
emulator running in the cluster too. Not collected by `make test` (pyproject's addopts
ignore tests/kube): it needs root, and about half an hour on a cold machine.

The tests run in file order against one release; the last one uninstalls it. Deliveries
come from the host, which routes the cluster's Service and pod ranges into the node's
network namespace, so every request goes through kube-proxy's rules like any client's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import find_tool
from tests.faults.ledger import reconcile
from tests.faults.sender import UltraCartSender
from tests.kube.cluster import (
    CHART,
    DOCKER_SCRIPTS,
    KUBE,
    MANIFESTS,
    NOTES,
    Cluster,
    local_volume,
    phase,
    run,
    wait_for,
)
from tests.support.kafka import consume_all

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


def _set(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


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


def test_install_under_restricted_pod_security(cluster: Cluster) -> None:
    with phase("helm install"):
        labels = cluster.get("", "namespace", NS)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        result = cluster.helm(
            "install", RELEASE, str(CHART), "-n", NS, *_set(VALUES), "--wait", "--timeout", "6m"
        )
        # PSA's warn mode reports every violation on stderr; there must be none.
        assert "violate PodSecurity" not in result.stderr, result.stderr
        ready = cluster.ready_pods(NS, INTAKE_PODS)
        assert len(ready) == 2, [p["metadata"]["name"] for p in ready]


def test_create_topics_hook_created_every_topic(cluster: Cluster) -> None:
    from confluent_kafka.admin import AdminClient

    with phase("checks: create-topics hook"):
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap(cluster)})
        topics = set(admin.list_topics(timeout=30).topics)
        assert set(TOPICS) <= topics, topics
        # The hook Job is deleted once it succeeded (hook-delete-policy: hook-succeeded).
        jobs = cluster.get(NS, "jobs")["items"]
        assert not [j for j in jobs if j["metadata"]["name"].endswith("create-topics")]


def test_delivery_through_the_service_reaches_kafka(cluster: Cluster) -> None:
    with phase("checks: delivery"):
        key = f"kube-e2e-{uuid.uuid4().hex[:12]}"
        body = json.dumps({"events": [{"order_create": {"order_id": key}}]}).encode()
        status = post(relay_url(cluster), body, webhook_pair(cluster))
        assert status == 200
        wrong = post(relay_url(cluster), body, ("ultracart", "not-the-password"))
        assert wrong == 401
        records = consume_all(
            kafka_bootstrap(cluster), ["ultracart.order_create"], timeout=60, idle=2.0
        )
        mine = [r for r in records if r.key == key.encode()]
        assert len(mine) == 1, [r.key for r in records]
        assert mine[0].headers["ce_type"] == b"com.ultracart.webhook.order_create"


def test_upgrade_keeps_the_generated_pair(cluster: Cluster) -> None:
    with phase("helm upgrade (changed value)"):
        before = cluster.get(NS, "secret", f"{RELEASE}-basic-auth")["data"]
        cluster.helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            *_set(VALUES),
            "--set",
            "config.server.log_level=debug",
            "--wait",
            "--timeout",
            "6m",
        )
        after = cluster.get(NS, "secret", f"{RELEASE}-basic-auth")["data"]
        assert after == before
        config = cluster.get(NS, "configmap", RELEASE)["data"]["relay.toml"]
        assert 'log_level = "debug"' in config
        status = post(relay_url(cluster), b'{"events": []}', webhook_pair(cluster))
        assert status == 200


def test_missing_named_secret_fails_the_install(cluster: Cluster) -> None:
    with phase("checks: missing existing Secret"):
        result = cluster.helm(
            "install",
            "relay-missing",
            str(CHART),
            "-n",
            NS,
            *_set(VALUES),
            "--set",
            "auth.existingSecret=no-such-secret",
            "--set",
            "control.enabled=false",
            check=False,
            timeout=120,
        )
        assert result.returncode != 0
        assert "no-such-secret" in result.stderr and "kubectl" in result.stderr, result.stderr
        releases = cluster.helm("list", "-n", NS, "-q", "-a").stdout.split()
        assert "relay-missing" not in releases


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


def test_apply_job_configures_the_emulators_webhook(cluster: Cluster) -> None:
    with phase("checks: apply job"):
        run_control_job(cluster, "apply", 180)
        stats = emulator(cluster, "/_emulator/stats")
        (hook,) = stats["webhooks"].values()
        assert hook["url"] == WEBHOOK_URL
        emulator(cluster, "/_emulator/events", {"event_name": "order_create", "count": 3})

        def delivered() -> dict[str, Any] | None:
            (h,) = emulator(cluster, "/_emulator/stats")["webhooks"].values()
            return h if h["delivered_events"] >= 3 and h["pending"] == 0 else None

        hook = wait_for("the emulator's deliveries", delivered, 90)
        assert set(hook["statuses"]) == {"200"}, hook


def test_rotation_under_deliveries_refuses_none(cluster: Cluster) -> None:
    with phase("rotation job under deliveries"):
        old = cluster.secret_value(NS, f"{RELEASE}-basic-auth", "webhook")
        stop = threading.Event()

        def raise_events() -> None:
            while not stop.is_set():
                # The emulator's Service is the cluster's: a dropped request is retried.
                with contextlib.suppress(OSError):
                    emulator(
                        cluster, "/_emulator/events", {"event_name": "order_update", "count": 1}
                    )
                stop.wait(0.2)

        raiser = threading.Thread(target=raise_events, daemon=True)
        raiser.start()
        try:
            logs = run_control_job(cluster, "rotate-credentials", 400)
        finally:
            stop.set()
            raiser.join(10)
        new = cluster.secret_value(NS, f"{RELEASE}-basic-auth", "webhook")
        assert new != old
        credentials = cluster.secret_value(NS, f"{RELEASE}-basic-auth", "credentials")
        pairs = [line for line in credentials.splitlines() if line and not line.startswith("#")]
        assert pairs == [new.strip()], "the old pair must be dropped"

        def drained() -> dict[str, Any] | None:
            (h,) = emulator(cluster, "/_emulator/stats")["webhooks"].values()
            return h if h["pending"] == 0 else None

        hook = wait_for("the emulator's queue to drain", drained, 120)
        NOTES.append(
            f"rotation: emulator statuses {hook['statuses']}; job log tail {logs[-300:]!r}"
        )
        assert set(hook["statuses"]) == {"200"}, hook


def test_rolling_update_under_load_loses_nothing(cluster: Cluster) -> None:
    with phase("rolling update under load"):
        tag = f"r{uuid.uuid4().hex[:6]}-"
        sender = UltraCartSender(
            relay_url(cluster), webhook_pair(cluster), tag, senders=4, rate=RATE
        )
        started = time.monotonic()

        def upgrade() -> None:
            cluster.helm(
                "upgrade",
                RELEASE,
                str(CHART),
                "-n",
                NS,
                *_set(VALUES),
                "--set",
                "image.tag=kube-e2e-next",
                "--wait",
                "--timeout",
                "6m",
            )

        settled = sender.around(upgrade, before=10, after=10, settle=120)
        # The old pods may still be in their grace period: only the live ones count (and
        # relay's own: the control Jobs' pods carry the release's labels too).
        pods = cluster.pods(NS, INTAKE_PODS)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        images = {c["image"] for p in live for c in p["spec"]["containers"]}
        assert images == {RELAY_IMAGE_NEXT}, images
        records = consume_all(kafka_bootstrap(cluster), TOPICS, idle=3.0, timeout=120)
        report = reconcile(
            "rolling update",
            False,
            time.monotonic() - started,
            sender.deliveries,
            [r for r in records if r.key is None or r.key.startswith(tag.encode())],
            "ultracart.dead_letter",
        )
        statuses = {a.status for d in sender.deliveries for a in d.attempts}
        NOTES.append(f"rolling update: {report.as_dict()}; statuses {statuses}")
        assert settled
        assert statuses <= {200, 503}, statuses
        assert report.lost == 0
        assert report.unacknowledged == 0
        assert report.deliveries_sent > 100


def test_helm_test_passes(cluster: Cluster) -> None:
    with phase("helm test"):
        # No --logs: the pod deletes itself once it succeeded (hook-delete-policy), so that
        # helm uninstall leaves no test pod behind.
        result = cluster.helm("test", RELEASE, "-n", NS, "--timeout", "3m")
        assert "relay-test-connection" in result.stdout, result.stdout
        assert "Phase:          Succeeded" in result.stdout, result.stdout


def test_spool_statefulset_keeps_every_event_through_a_kafka_outage(cluster: Cluster) -> None:
    with phase("spool: install"):
        values = [
            v
            for v in VALUES
            if not v.startswith(("control.", "createTopics", "replicaCount", "ultracart"))
        ]
        cluster.helm(
            "install",
            SPOOL_RELEASE,
            str(CHART),
            "-n",
            NS,
            *_set(values),
            "--set",
            "replicaCount=1",
            "--set",
            "spool.enabled=true",
            "--set",
            f"spool.persistence.storageClassName={STORAGE_CLASS}",
            "--set",
            "spool.persistence.size=1Gi",
            "--set",
            "podDisruptionBudget.enabled=false",
            "--wait",
            "--timeout",
            "6m",
        )
    url = relay_url(cluster, SPOOL_RELEASE)
    auth = webhook_pair(cluster, SPOOL_RELEASE)
    tag = f"s{uuid.uuid4().hex[:6]}-"
    sender = UltraCartSender(url, auth, tag, senders=2, rate=10)
    started = time.monotonic()
    pod = f"{SPOOL_RELEASE}-0"
    with phase("spool: kafka down, pod deleted, kafka back"):
        sender.start()
        try:
            time.sleep(5)
            cluster.kubectl("-n", DEPS, "scale", "statefulset/kafka", "--replicas=0")
            wait_for("Kafka gone", lambda: not cluster.pods(DEPS, "app=kafka"), 120)
            down = sender.now()
            wait_for(
                "200s from the spool while Kafka is down",
                lambda: (
                    len(
                        [
                            a
                            for d in sender.deliveries
                            for a in d.attempts
                            if a.ok and a.started > down + 2
                        ]
                    )
                    >= 20
                ),
                120,
            )
            uid = cluster.get(NS, "pod", pod)["metadata"]["uid"]
            cluster.kubectl("-n", NS, "delete", "pod", pod, "--wait", timeout=120)
            wait_for(
                "the relay pod back",
                lambda: [
                    p
                    for p in cluster.ready_pods(
                        NS,
                        f"app.kubernetes.io/instance={SPOOL_RELEASE},app.kubernetes.io/component=intake",
                    )
                    if p["metadata"]["uid"] != uid
                ],
                240,
            )
            back = sender.now()
            wait_for(
                "200s from the new pod",
                lambda: any(
                    a.ok and a.started > back for d in sender.deliveries for a in d.attempts
                ),
                120,
            )
            cluster.kubectl("-n", DEPS, "scale", "statefulset/kafka", "--replicas=1")
            kafka_bootstrap(cluster)
            time.sleep(10)
        finally:
            settled = sender.finish(120)
    with phase("spool: reconcile"):
        bootstrap = kafka_bootstrap(cluster)
        expected = sum(len(d.events) for d in sender.deliveries if d.acknowledged)

        def all_there() -> list[Any] | None:
            records = consume_all(bootstrap, TOPICS, idle=3.0, timeout=60)
            mine = [r for r in records if r.key is not None and r.key.startswith(tag.encode())]
            return records if len({r.key for r in mine}) >= expected else None

        try:
            records = wait_for("every acknowledged event in Kafka", all_there, 240, interval=5)
        except AssertionError:
            records = consume_all(bootstrap, TOPICS, idle=3.0, timeout=60)
        report = reconcile(
            "spool: kafka stop, pod deleted",
            True,
            time.monotonic() - started,
            sender.deliveries,
            [r for r in records if r.key is None or r.key.startswith(tag.encode())],
            "ultracart.dead_letter",
        )
        NOTES.append(f"spool: {report.as_dict()}")
        assert settled
        assert report.lost == 0, report
        assert report.unacknowledged == 0
        assert report.acknowledged > 20
    with phase("spool: uninstall"):
        cluster.helm("uninstall", SPOOL_RELEASE, "-n", NS, "--wait", "--timeout", "3m")
        # The claim stays (whenDeleted: Retain): the spool's records would wait on it.
        claims = [c["metadata"]["name"] for c in cluster.get(NS, "pvc")["items"]]
        assert claims == [f"spool-{SPOOL_RELEASE}-0"] or any(SPOOL_RELEASE in c for c in claims), (
            claims
        )


def test_uninstall_leaves_only_what_the_keep_policy_keeps(cluster: Cluster) -> None:
    with phase("helm uninstall"):
        cluster.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "3m")
        # helm waits for its own objects; the pods go after their grace period (35 s).
        wait_for(
            "relay's pods gone", lambda: not cluster.pods(NS, "app.kubernetes.io/name=relay"), 120
        )
        left = cluster.kubectl(
            "-n",
            NS,
            "get",
            "all,configmap,secret,serviceaccount,role,rolebinding,networkpolicy,pdb,cronjob,job",
            "-o",
            "name",
        ).stdout.split()
        expected = {
            # helm.sh/resource-policy: keep, for both releases
            f"secret/{RELEASE}-basic-auth",
            f"secret/{SPOOL_RELEASE}-basic-auth",
            "secret/ultracart-api",  # the test's own
            "configmap/kube-root-ca.crt",  # Kubernetes publishes it into every namespace
            "serviceaccount/default",
        }
        assert set(left) == expected, left
