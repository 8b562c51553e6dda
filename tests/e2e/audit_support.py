"""What the audit tests share: an emulator delivering to relay, webhooks.toml, the audit CLI
run in-process, a proxy that answers 200 without forwarding, and Kafka read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay import cli
from relay.consumers.reading import ReadRecord, Start, TopicReader
from relay.settings import KafkaSettings
from tests.support.relay import CREDENTIALS
from tests.support.server_thread import ServerThread

SIMPLE_KEY = "audit-simple-key-0123456789"


def webhooks_toml(
    tmp_path: Path,
    api_url: str,
    relay_url: str,
    events: list[str],
    *,
    maximum_events: int = 5,
    compress: bool = False,
    retry_base: float = 0.2,
) -> Path:
    (tmp_path / "key").write_text(SIMPLE_KEY)
    (tmp_path / "basic").write_text(":".join(CREDENTIALS) + "\n")
    config = tmp_path / "webhooks.toml"
    subscriptions = "".join(f'\n[[webhook.events]]\nname = "{name}"\n' for name in events)
    config.write_text(
        f"""
[ultracart]
api_base_url = "{api_url}/rest/v2"
simple_key_file = "{tmp_path / "key"}"
timeout_seconds = 5
retry_base_delay_seconds = {retry_base}

[control]
state_file = "{tmp_path / "state.json"}"

[webhook]
url = "{relay_url}"
maximum_events = {maximum_events}
compress_events = {"true" if compress else "false"}

[webhook.basic]
credentials_file = "{tmp_path / "basic"}"
{subscriptions}"""
    )
    return config


@dataclass
class AuditRun:
    code: int
    document: dict[str, Any]
    err: str

    def with_outcome(self, outcome: str) -> list[dict[str, Any]]:
        return [e for e in self.document["detail"] if e["outcome"] == outcome]

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.document["counts"])


def run_audit(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> AuditRun:
    capsys.readouterr()  # what earlier commands printed
    code = cli.main(["webhooks", "audit", "--config", str(config), "--json", *extra])
    output = capsys.readouterr()
    return AuditRun(code, json.loads(output.out) if output.out.strip() else {}, output.err)


@dataclass
class Blackhole:
    """A proxy in front of relay that answers 200 and forwards nothing: what a misrouted
    load balancer or a stub left in place does. It keeps each body it swallowed."""

    bodies: list[bytes] = field(default_factory=list)

    def app(self) -> Starlette:
        async def swallow(request: Request) -> JSONResponse:
            self.bodies.append(await request.body())
            return JSONResponse({"status": "ok"})

        return Starlette(routes=[Route("/webhooks/ultracart", swallow, methods=["POST"])])

    @contextmanager
    def serving(self) -> Iterator[str]:
        with ServerThread(self.app()) as server:
            yield f"{server.url}/webhooks/ultracart"


def read_topics(bootstrap: str, topics: list[str]) -> list[ReadRecord]:
    reader = TopicReader(KafkaSettings(bootstrap_servers=bootstrap))
    try:
        present = reader.existing(topics)
        if not present:
            return []
        reader.assign(present, Start())
        return list(reader.records(follow=False))
    finally:
        reader.close()
