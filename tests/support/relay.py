"""``relay serve`` as a real subprocess, for integration, fault and end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx2
import orjson

from tests.support.net import free_port
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = ("ultracart", "test-secret-7d1f")


def topic_env(prefix: str) -> dict[str, str]:
    """Point every topic relay writes at ``prefix`` so a test sees only its own records."""
    return {
        "RELAY_TOPICS__TEMPLATE": prefix + "{event}",
        "RELAY_TOPICS__UNKNOWN_EVENT_TOPIC": prefix + "unknown",
        "RELAY_TOPICS__DEAD_LETTER_TOPIC": prefix + "dead_letter",
    }


def serve_env(
    *, bootstrap: str, port: int, admin_port: int, credentials: tuple[str, str]
) -> dict[str, str]:
    """The environment of a ``relay serve`` on loopback: this process's own, less any RELAY_*
    setting (a developer's shell must not change what a test or benchmark runs)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
        "RELAY_SERVER__HOST": "127.0.0.1",
        "RELAY_SERVER__PORT": str(port),
        "RELAY_SERVER__ADMIN_HOST": "127.0.0.1",
        "RELAY_SERVER__ADMIN_PORT": str(admin_port),
        "RELAY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "RELAY_AUTH__BASIC_CREDENTIALS": ":".join(credentials),
    }


def order_delivery(*order_ids: str) -> bytes:
    """A delivery of one ``order_create`` event per id (the id is the record key)."""
    return orjson.dumps({"events": [{"order_create": {"order_id": i}} for i in order_ids]})


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
            **serve_env(
                bootstrap=self.bootstrap,
                port=self.port,
                admin_port=self.admin_port,
                credentials=CREDENTIALS,
            ),
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

    def _admin_status(self, path: str) -> int:
        """The admin port's status for ``path``; raises if relay has exited meanwhile."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"relay exited with {self.process.returncode}")
        return httpx2.get(self.admin_url + path, timeout=1.0).status_code

    def wait_listening(self, timeout: float) -> None:
        wait_until(
            lambda: self._admin_status("/healthz"),
            timeout,
            interval=0.1,
            message="relay did not start listening",
            ignore=(httpx2.TransportError,),
        )

    def wait_ready(self, timeout: float) -> None:
        wait_until(
            lambda: self._admin_status("/readyz") == 200,
            timeout,
            interval=0.1,
            message="relay did not become ready",
            ignore=(httpx2.TransportError,),
        )

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

    def readiness(self) -> httpx2.Response:
        return httpx2.get(self.admin_url + "/readyz", timeout=5.0)

    def post(
        self,
        body: bytes,
        auth: tuple[str, str] | None = CREDENTIALS,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """One delivery, as UltraCart sends it (JSON, Basic auth), on a connection of its own."""
        all_headers = {"content-type": "application/json", **(headers or {})}
        if auth is None:
            return httpx2.post(self.url, content=body, headers=all_headers, timeout=30)
        return httpx2.post(self.url, content=body, headers=all_headers, auth=auth, timeout=30)


@contextmanager
def running_relay(bootstrap: str, env: Mapping[str, str], log_path: Path) -> Iterator[RelayProcess]:
    """A ready relay for the block's length; it must then stop cleanly (exit code 0)."""
    process = RelayProcess(bootstrap, env, log_path=log_path)
    process.start()
    try:
        yield process
    finally:
        assert process.stop() == 0
