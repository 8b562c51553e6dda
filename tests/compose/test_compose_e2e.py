"""The real-engine deployment test (`make test-compose`, docs/deploy.md): dockerd, the
stand-in base images, relay's image from the Dockerfile and docker-compose.yml with its
demo profile, checked end to end. Not collected by `make test` (pyproject's addopts
ignore tests/compose): it needs root, apt and about ten minutes on a cold machine.

The tests run in file order against one stack; the last one takes it down.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.compose.stack import (
    NOTES,
    ONE_SHOTS,
    REPO_ROOT,
    SERVICES,
    Compose,
    compose_env,
    leftovers,
    phase,
    script,
)
from tests.support.commands import run

RELAY_IMAGE = "relay:compose-e2e"
UP_TIMEOUT_S = 300
# The demo traffic runs at 5 events/s; this many deliveries make the Kafka check meaningful.
MIN_DELIVERED = 30


def wait_for(what: str, probe: Any, timeout: float, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Compose]:
    with phase("engine (apt, dockerd)"):
        script("install-engine", timeout=600)
        script("dockerd", "start", timeout=120)
    compose: Compose | None = None
    try:
        with phase("compose plugin"):
            docker_config = script("compose-plugin", timeout=900)
        images = {"E2E_RELAY_IMAGE": RELAY_IMAGE}
        with phase("python base image"):
            script("python-image", timeout=600)
        with phase("kafka image"):
            images["E2E_KAFKA_IMAGE"] = script("kafka-image", timeout=900)
        with phase("prometheus image"):
            images["E2E_PROMETHEUS_IMAGE"] = script("prometheus-image", timeout=900)
        env = compose_env(docker_config, images)
        with phase("relay image"):
            # The Dockerfile as it is, on the stand-in base tagged as its default ARG.
            run(["docker", "build", "--tag", RELAY_IMAGE, "."], timeout=900, env=env)
        compose = Compose(f"relay-e2e-{uuid.uuid4().hex[:8]}", env)
        with phase("compose up"):
            compose("up", "--detach", "--no-build", *SERVICES, timeout=UP_TIMEOUT_S)
            wait_for("every service healthy", lambda: all_healthy(compose), UP_TIMEOUT_S)
        yield compose
    finally:
        if compose is not None:
            compose(
                "down", "--volumes", "--remove-orphans", "--timeout", "40", timeout=180, check=False
            )
        script("dockerd", "stop", timeout=120)


def all_healthy(compose: Compose) -> bool:
    rows = {row["Service"]: row for row in compose.containers()}
    for service in SERVICES:
        row = rows.get(service)
        if row is None:
            return False
        if service in ONE_SHOTS:
            if row["State"] != "exited":
                return False
            assert row["ExitCode"] == 0, f"{service} exited {row['ExitCode']}"
        elif row["State"] != "running" or row.get("Health") != "healthy":
            assert row["State"] in {"running", "created", "restarting"}, f"{service}: {row}"
            return False
    return True


def test_image_runs_relay_from_the_installed_package(stack: Compose) -> None:
    with phase("checks: image"):
        version = run(["docker", "run", "--rm", RELAY_IMAGE, "--version"], timeout=60)
        assert version.stdout.strip().startswith("relay ")
        NOTES.append(f"image: {version.stdout.strip()}")
        # From / in isolated mode: only the installed package can answer.
        code = "import relay, relay.cli; print(relay.__version__, relay.__file__)"
        found = run(
            [
                "docker",
                "run",
                "--rm",
                "--workdir",
                "/",
                "--entrypoint",
                "python",
                RELAY_IMAGE,
                "-I",
                "-c",
                code,
            ],
            timeout=60,
        ).stdout.split()
        assert found[1].startswith("/opt/relay/lib/python3.11/site-packages/relay/")


def test_relay_runs_hardened_as_compose_declares(stack: Compose) -> None:
    with phase("checks: hardening"):
        (container,) = stack("ps", "--quiet", "relay").split()
        inspected = json.loads(run(["docker", "inspect", container], timeout=30).stdout)[0]
        host = inspected["HostConfig"]
        assert inspected["Config"]["User"] == "10001:10001"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert inspected["State"]["Health"]["Status"] == "healthy"
        ids = stack("exec", "-T", "relay", "id", "-u").strip()
        assert ids == "10001"
        # Read-only even where the image gives relay a directory of its own.
        status = run(
            ["docker", "exec", container, "touch", "/var/lib/relay/.probe"], timeout=30, check=False
        )
        assert status.returncode != 0 and "Read-only file system" in status.stderr


def test_wrong_credential_gets_401(stack: Compose) -> None:
    with phase("checks: 401"):
        port = stack.host_port("relay", 8080)
        wrong = base64.b64encode(b"ultracart:not-the-password").decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/ultracart",
            data=b'{"events": []}',
            headers={"Authorization": f"Basic {wrong}", "Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        refused.value.close()  # it holds the response's socket
        assert refused.value.code == 401


def emulator_stats(stack: Compose) -> dict[str, Any]:
    code = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8090/_emulator/stats', timeout=5).read().decode())"
    )
    stats: dict[str, Any] = json.loads(stack.exec_python("emulator", code))
    return stats


def delivered(stats: dict[str, Any]) -> int:
    return sum(int(hook["delivered_events"]) for hook in stats["webhooks"].values())


def test_demo_deliveries_reach_kafka_with_key_and_ce_headers(stack: Compose) -> None:
    with phase("checks: deliveries in kafka"):
        wait_for(
            f"{MIN_DELIVERED} delivered events",
            lambda: delivered(emulator_stats(stack)) >= MIN_DELIVERED,
            120,
        )
        # Stop raising events, let the emulator drain its queue, then count once.
        stack("stop", "demo-traffic", timeout=60)

        def drained() -> dict[str, Any] | None:
            stats = emulator_stats(stack)
            pending = sum(int(hook["pending"]) for hook in stats["webhooks"].values())
            return stats if pending == 0 else None

        stats = wait_for("the emulator's queue to drain", drained, 60)
        (hook,) = stats["webhooks"].values()
        assert hook["url"] == "http://relay:8080/webhooks/ultracart"
        assert set(hook["statuses"]) == {"200"}, hook["statuses"]
        expected = delivered(stats)
        consumer = run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                f"{stack.project}_default",
                "--read-only",
                "--volume",
                f"{REPO_ROOT / 'tests/compose/consume_events.py'}:/consume.py:ro",
                "--entrypoint",
                "python",
                RELAY_IMAGE,
                "-I",
                "/consume.py",
                "kafka:29092",
                str(expected),
                "90",
            ],
            timeout=150,
        )
        summary = json.loads(consumer.stdout.strip().splitlines()[-1])
        NOTES.append(f"emulator delivered {expected} events; Kafka holds {summary}")
        assert summary["count"] == expected, (summary, stats)
        assert summary["without_key"] == 0
        assert set(summary["topics"]) <= {
            "ultracart.order_create",
            "ultracart.order_update",
            "ultracart.item_update",
        }, summary["topics"]
        for names in summary["ce_header_sets"]:
            assert {"ce_id", "ce_source", "ce_specversion", "ce_type", "ce_time"} <= set(
                names.split(",")
            ), names


def test_prometheus_scrapes_relay(stack: Compose) -> None:
    with phase("checks: prometheus target"):
        port = stack.host_port("prometheus", 9090)

        def relay_up() -> bool:
            url = f"http://127.0.0.1:{port}/api/v1/targets?state=active"
            with urllib.request.urlopen(url, timeout=5) as response:
                targets = json.load(response)["data"]["activeTargets"]
            relay = [t for t in targets if t["labels"].get("job") == "relay"]
            return bool(relay) and all(t["health"] == "up" for t in relay)

        # Scrapes every 15 s; the first may come before relay's DNS name resolves.
        wait_for("Prometheus to see relay's target up", relay_up, 90, interval=3)


def test_down_leaves_nothing(stack: Compose) -> None:
    with phase("compose down"):
        stack("down", "--volumes", "--remove-orphans", "--timeout", "40", timeout=180)
        assert leftovers(stack.project) == {"containers": [], "networks": [], "volumes": []}
