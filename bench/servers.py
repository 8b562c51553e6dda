"""The servers under test: ``relay serve``, the bare app, the bridge floor and Benthos, each a
subprocess on loopback."""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import benthos
from bench.child import REPO_ROOT, ChildProcess
from tests.support.relay import serve_env, topic_env
from tests.support.waiting import wait_until

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
        return {
            **serve_env(
                bootstrap=self.bootstrap,
                port=self.port,
                admin_port=self.admin_port,
                credentials=CREDENTIALS,
            ),
            **topic_env(self.topic_prefix),
            "RELAY_CONFIG": str(REPO_ROOT / "config" / "relay.toml"),
            "RELAY_SERVER__WORKERS": str(self.workers),
            **dict(self.overrides),
        }


class Server(ChildProcess):
    def __init__(
        self,
        kind: str,
        spec: ServerSpec,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        *,
        root: Path = REPO_ROOT,
    ) -> None:
        """``root``: where ``python -m`` finds relay (another checkout, for before/after)."""
        env = {**spec.env(), **(extra_env or {})}
        if kind == "benthos":
            document = benthos.config(
                port=spec.port,
                admin_port=spec.admin_port,
                path="/webhooks/ultracart",
                bootstrap=spec.bootstrap,
                topic_prefix=spec.topic_prefix,
                credentials=CREDENTIALS,
            )
            config = benthos.write_config(log_path.with_suffix(".yaml"), document)
            args = [str(benthos.binary()), "-c", str(config)]
        else:
            module = {
                "relay": ["relay", "serve"],
                "bare": ["bench.bare_server"],
                "bridge": ["bench.bare_server", "bridge"],
            }[kind]
            args = [sys.executable, "-m", *module]
        super().__init__(args, env, log_path, cwd=root)
        self.kind = kind
        self.spec = spec

    def wait_ready(self, timeout: float = 60.0) -> None:
        probe = "/ready" if self.kind == "benthos" else "/readyz"
        url = f"http://127.0.0.1:{self.spec.admin_port}{probe}"

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}")
            with urllib.request.urlopen(url, timeout=1.0) as response:
                status: int = response.status
                return status == 200

        # A 503 raises HTTPError, an OSError like a refused connection: not ready yet.
        wait_until(
            ready, timeout, interval=0.1, message=f"{self.kind} server not ready", ignore=(OSError,)
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.spec.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as response:
            text: str = response.read().decode()
            return text
