"""The installed `relay` command: `relay emulator` in one process, `relay webhooks` in another."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.net import free_port
from tests.support.waiting import wait_until

RELAY = [sys.executable, "-m", "relay"]


def test_emulator_and_webhooks_commands_as_processes(tmp_path: Path) -> None:
    port = free_port()
    emulator = subprocess.Popen(
        [
            *RELAY,
            "emulator",
            "--port",
            str(port),
            "--simple-key",
            "console-key",
            "--items",
            "3",
            "--loopback-only",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )

    def stats() -> bytes:
        if emulator.poll() is not None:
            raise RuntimeError(f"relay emulator exited with {emulator.returncode}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=1) as a:
            body: bytes = a.read()
            return body

    try:
        answer = wait_until(stats, 20, interval=0.1, message="no emulator", ignore=(OSError,))
        assert b'"items":3' in answer
        (tmp_path / "basic").write_text("ultracart:console-pass\n")
        env = {
            **os.environ,
            "ULTRACART_SIMPLE_KEY": "console-key",
            "WEBHOOKS_ULTRACART__API_BASE_URL": f"http://127.0.0.1:{port}/rest/v2",
            "WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE": str(tmp_path / "basic"),
            "WEBHOOKS_CONTROL__STATE_FILE": str(tmp_path / "state.json"),
        }
        config = str(Path(__file__).resolve().parents[2] / "config" / "webhooks.toml")

        def relay(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*RELAY, "webhooks", *args, "--config", config],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )

        assert relay("plan", "--detailed-exitcode").returncode == 2
        applied = relay("apply")
        assert applied.returncode == 0, applied.stderr
        assert "Created webhook" in applied.stdout
        assert relay("plan").returncode == 0
        listed = relay("list")
        assert "https://relay.example.com/webhooks/ultracart" in listed.stdout
    finally:
        emulator.terminate()
        emulator.wait(10)
        assert emulator.stderr is not None
        emulator.stderr.close()
