"""The chart's control CronJobs, run for real outside a cluster.

Each test takes the command a rendered CronJob would run (files/kube-control.py wrapping
``relay webhooks ...``) and runs it here, with the Kubernetes API played by
tests/deploy/fake_kube.py and UltraCart by ``relay emulator``. Paths inside the pod are
mapped to a temporary directory and the waits are shortened; everything else is what the
chart renders.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.fake_kube import FakeKube, fake_kube
from tests.deploy.support import Manifest, find_tool, one, render_chart

NAME = "relay"
SIMPLE_KEY = "kube-control-test-key"
OLD = "ultracart:old-password-0123456789"
URL = "https://relay.example.com/webhooks/ultracart"
VALUES: dict[str, Any] = {
    "control": {"enabled": True, "webhooks": {"webhook": {"url": URL}}},
    "ultracart": {"simpleKey": {"existingSecret": "ultracart-api"}},
}
RELAY = Path(sys.executable).with_name("relay")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return render_chart(find_tool("helm"), VALUES)


@pytest.fixture
def emulator() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            str(RELAY),
            "emulator",
            "--port",
            str(port),
            "--simple-key",
            SIMPLE_KEY,
            "--loopback-only",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/rest/v2"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "relay emulator exited"
                assert time.monotonic() < deadline, "relay emulator did not start"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with fake_kube() as kube:
        yield kube


def _secret_data(kube: FakeKube) -> dict[str, str]:
    obj = kube.objects[("relay", "secrets", f"{NAME}-basic-auth")]
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def _pairs(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _webhooks(base: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{base}/webhook/webhooks?_placeholders=false",
        headers={
            "x-ultracart-simple-key": SIMPLE_KEY,
            "X-UltraCart-Api-Version": "2017-03-01",
            "Accept": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        found: list[dict[str, Any]] = json.load(response)["webhooks"]
        return found


def _start_cronjob(
    manifests: list[Manifest],
    command: str,
    kube: FakeKube,
    emulator: str,
    work: Path,
    *,
    reload_wait: float = 0.5,
) -> subprocess.Popen[str]:
    """Start the rendered CronJob's command with pod paths mapped into ``work``."""
    job = one(manifests, "CronJob", f"{NAME}-control-{command}")
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    config_map = one(manifests, "ConfigMap", f"{NAME}-control")
    mounted = work / "control"
    mounted.mkdir(parents=True, exist_ok=True)
    for key, text in config_map["data"].items():
        (mounted / key).write_text(text, encoding="utf-8")
    state = work / "state"
    state.mkdir(exist_ok=True, mode=0o700)
    account = work / "serviceaccount"
    account.mkdir(exist_ok=True)
    (account / "token").write_text("fake-token", encoding="utf-8")
    (account / "namespace").write_text("relay", encoding="utf-8")

    argv = [
        str(RELAY)
        if arg == "relay"
        else sys.executable
        if arg == "python"
        else arg.replace("/etc/relay/control", str(mounted)).replace(
            "/var/lib/relay-control", str(state)
        )
        for arg in container["command"]
    ]
    split = argv.index("--")
    argv[split:split] = [
        "--api",
        kube.url,
        "--service-account-dir",
        str(account),
        "--interval",
        "0.1",
    ]
    env = {
        **os.environ,
        "ULTRACART_SIMPLE_KEY": SIMPLE_KEY,
        # What differs from the pod: UltraCart is the emulator, the paths are here, and
        # the waits are short (the chart's 150 s covers kubelet's propagation delay).
        "WEBHOOKS_ULTRACART__API_BASE_URL": emulator,
        "WEBHOOKS_ULTRACART__RETRY_BASE_DELAY_SECONDS": "0.05",
        "WEBHOOKS_CONTROL__STATE_FILE": str(state / "state.json"),
        "WEBHOOKS_CONTROL__RELAY_CREDENTIALS_FILE": str(state / "relay-credentials"),
        "WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE": str(state / "ultracart-basic"),
        "WEBHOOKS_CONTROL__RELOAD_WAIT_SECONDS": str(reload_wait),
        "WEBHOOKS_CONTROL__DRAIN_SECONDS": "0.5",
    }
    return subprocess.Popen(
        argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _run_cronjob(
    manifests: list[Manifest], command: str, kube: FakeKube, emulator: str, work: Path
) -> subprocess.CompletedProcess[str]:
    process = _start_cronjob(manifests, command, kube, emulator, work)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_apply_then_rotate_keeps_the_secret_in_step(
    manifests: list[Manifest], kube: FakeKube, emulator: str, tmp_path: Path
) -> None:
    # A Secret made by hand holding one pair and no "webhook" key: that pair is the one.
    kube.put(
        "relay",
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{NAME}-basic-auth"},
            "data": {"credentials": base64.b64encode(f"{OLD}\n".encode()).decode()},
        },
    )

    apply = _run_cronjob(manifests, "apply", kube, emulator, tmp_path / "apply")
    assert apply.returncode == 0, apply.stderr
    (webhook,) = _webhooks(emulator)
    assert webhook["basic_username"] == "ultracart"
    after_apply = _secret_data(kube)
    assert _pairs(after_apply["webhook"]) == [OLD]
    state = json.loads(after_apply["control-state"])["webhooks"]
    assert [entry["created_by_relay"] for entry in state.values()] == [True]

    # A fresh pod: nothing carried over but what the Secret holds.
    rotate = _run_cronjob(manifests, "rotate-credentials", kube, emulator, tmp_path / "rotate")
    assert rotate.returncode == 0, rotate.stderr
    data = _secret_data(kube)
    (new,) = _pairs(data["webhook"])
    assert new != OLD
    assert _pairs(data["credentials"]) == [new]  # the old pair is gone
    (webhook,) = _webhooks(emulator)
    assert webhook["basic_username"] == new.split(":")[0]

    # The order relay's pods saw it in: both pairs accepted before UltraCart switched.
    seen = [
        {k: base64.b64decode(v).decode() for k, v in patch["data"].items()}
        for patch in kube.patches
    ]
    accepted = [set(_pairs(p.get("credentials", ""))) for p in seen]
    both = accepted.index({OLD, new})
    switched = next(i for i, p in enumerate(seen) if _pairs(p.get("webhook", "")) == [new])
    dropped = accepted.index({new})
    assert both < switched < dropped
    assert new.split(":", 1)[1] not in rotate.stdout + rotate.stderr


def test_a_concurrent_change_stops_rotation_before_ultracart_switches(
    manifests: list[Manifest], kube: FakeKube, emulator: str, tmp_path: Path
) -> None:
    kube.put(
        "relay",
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{NAME}-basic-auth"},
            "data": {
                k: base64.b64encode(f"{OLD}\n".encode()).decode()
                for k in ("credentials", "webhook")
            },
        },
    )
    assert _run_cronjob(manifests, "apply", kube, emulator, tmp_path / "apply").returncode == 0
    secret = kube.objects[("relay", "secrets", f"{NAME}-basic-auth")]
    patches_before = len(kube.patches)

    # Someone else writes the Secret after the wrapper read it (a second rotation, an
    # upgrade): the wrapper's PATCH carries a stale resourceVersion and is refused. relay
    # takes well over the 10 ms polling step here to start and write its first file.
    read = ("GET", f"/api/v1/namespaces/relay/secrets/{NAME}-basic-auth")
    reads_before = kube.requests.count(read)
    rotate = _start_cronjob(
        manifests, "rotate-credentials", kube, emulator, tmp_path / "rotate", reload_wait=5
    )
    deadline = time.monotonic() + 10
    while kube.requests.count(read) == reads_before:
        assert time.monotonic() < deadline, "the wrapper never read the Secret"
        time.sleep(0.01)
    with kube.lock:
        secret["metadata"]["resourceVersion"] = "1000"
    _, stderr = rotate.communicate(timeout=60)
    assert rotate.returncode == 1
    assert "HTTP 409" in stderr and "webhooks rotate-credentials" in stderr.split("stopped")[-1]
    assert len(kube.patches) == patches_before
    (webhook,) = _webhooks(emulator)
    assert webhook["basic_username"] == "ultracart"  # UltraCart still sends the old pair
