"""Run ``relay serve`` as a real subprocess for integration and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx2

REPO_ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = ("ultracart", "test-secret-7d1f")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def topic_env(prefix: str) -> dict[str, str]:
    """Point every topic relay writes at ``prefix`` so a test sees only its own records."""
    return {
        "RELAY_TOPICS__TEMPLATE": prefix + "{event}",
        "RELAY_TOPICS__UNKNOWN_EVENT_TOPIC": prefix + "unknown",
        "RELAY_TOPICS__DEAD_LETTER_TOPIC": prefix + "dead_letter",
    }


@dataclass
class RelayProcess:
    bootstrap: str
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/ultracart"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
            "RELAY_SERVER__HOST": "127.0.0.1",
            "RELAY_SERVER__PORT": str(self.port),
            "RELAY_SERVER__ADMIN_HOST": "127.0.0.1",
            "RELAY_SERVER__ADMIN_PORT": str(self.admin_port),
            "RELAY_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "RELAY_AUTH__BASIC_CREDENTIALS": ":".join(CREDENTIALS),
            **self.env_overrides,
        }
        if self.log_path is not None and self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        log = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "serve"],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            if wait_ready:
                self.wait_ready(timeout)
            else:
                self.wait_listening(timeout)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                httpx2.get(self.admin_url + "/healthz", timeout=1.0)
                return
            except httpx2.TransportError:
                time.sleep(0.1)
        raise TimeoutError("relay did not start listening")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx2.get(self.admin_url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("relay did not become ready")

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"relay exited with {self.process.returncode}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal relay and wait for it; return its exit code. Closes the log when done."""
        code = 0
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def metrics(self) -> str:
        return httpx2.get(self.admin_url + "/metrics", timeout=5.0).text
