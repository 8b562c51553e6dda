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

import contextlib
import json
import threading
import time
import uuid
from typing import Any

from tests.faults.ledger import reconcile
from tests.faults.sender import UltraCartSender
from tests.kube.cluster import (
    CHART,
    NOTES,
    Cluster,
    phase,
    wait_for,
)
from tests.kube.release import (
    DEPS,
    INTAKE_PODS,
    NS,
    RATE,
    RELAY_IMAGE_NEXT,
    RELEASE,
    SPOOL_RELEASE,
    STORAGE_CLASS,
    TOPICS,
    VALUES,
    WEBHOOK_URL,
    emulator,
    helm_release,
    kafka_bootstrap,
    post,
    relay_url,
    run_control_job,
    set_values,
    webhook_pair,
)
from tests.support.kafka import consume_all


def test_install_under_restricted_pod_security(cluster: Cluster) -> None:
    with phase("helm install"):
        labels = cluster.get("", "namespace", NS)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        result = helm_release(cluster, "install")
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
        helm_release(cluster, "upgrade", "config.server.log_level=debug")
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
            *set_values(VALUES),
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
            helm_release(cluster, "upgrade", "image.tag=kube-e2e-next")

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
            *set_values(values),
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
