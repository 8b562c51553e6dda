"""The servers under test: ``relay serve`` and the bare app, each a subprocess on loopback."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.child import REPO_ROOT, ChildProcess

CREDENTIALS = ("ultracart", "bench-secret-5b2e")
TOPIC_PREFIX = "bench."


@dataclass(frozen=True)
class ServerSpec:
    """What both servers share: config file, ports, workers, Kafka, credentials, topics."""

    bootstrap: str
    port: int
    admin_port: int
    workers: int
    topic_prefix: str = TOPIC_PREFIX
    # Extra RELAY_* settings (bench --set), for tuning experiments; they reach relay, the
    # bare app and the raw producers alike.
    overrides: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        """relay's settings for the run: the shipped config/relay.toml plus loopback overrides."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        return {
            **inherited,
            "RELAY_CONFIG": str(REPO_ROOT / "config" / "relay.toml"),
            "RELAY_SERVER__HOST": "127.0.0.1",
            "RELAY_SERVER__PORT": str(self.port),
            "RELAY_SERVER__ADMIN_HOST": "127.0.0.1",
            "RELAY_SERVER__ADMIN_PORT": str(self.admin_port),
            "RELAY_SERVER__WORKERS": str(self.workers),
            "RELAY_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "RELAY_AUTH__BASIC_CREDENTIALS": ":".join(CREDENTIALS),
            "RELAY_TOPICS__TEMPLATE": self.topic_prefix + "{event}",
            "RELAY_TOPICS__UNKNOWN_EVENT_TOPIC": self.topic_prefix + "unknown",
            "RELAY_TOPICS__DEAD_LETTER_TOPIC": self.topic_prefix + "dead_letter",
            **dict(self.overrides),
        }


class Server(ChildProcess):
    def __init__(
        self, kind: str, spec: ServerSpec, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        module = {
            "relay": ["relay", "serve"],
            "bare": ["bench.bare_server"],
            "bridge": ["bench.bare_server", "bridge"],
        }[kind]
        env = {**spec.env(), **(extra_env or {})}
        super().__init__([sys.executable, "-m", *module], env, log_path)
        self.kind = kind
        self.spec = spec

    def wait_ready(self, timeout: float = 60.0) -> None:
        url = f"http://127.0.0.1:{self.spec.admin_port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.kind} server not ready within {timeout:g} s")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.spec.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as response:
            text: str = response.read().decode()
            return text
