"""Fixtures for control-plane tests: an emulator on a real port, checked against the contract.

Every API exchange with an emulator is recorded and, when the test ends, validated against
the OpenAPI extract; a test that made a single off-contract request or got a single
off-contract response fails.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.emulator.app import create_emulator_app
from relay.emulator.options import EmulatorOptions
from relay.emulator.recording import Exchange
from relay.emulator.store import EmulatorState
from tests.control.contract import Contract
from tests.support.server_thread import ServerThread

SIMPLE_KEY = "test-simple-key-0123456789"

# Fast timings: deliveries retried within tenths of a second, quick delivery loop.
FAST = EmulatorOptions(
    simple_keys=(SIMPLE_KEY,),
    items=12,
    orders=5,
    retry_base_seconds=0.05,
    retry_max_seconds=0.5,
    delivery_tick_seconds=0.02,
    loopback_only=True,
)


@dataclass
class Emulator:
    server: ServerThread
    state: EmulatorState
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.url + "/rest/v2"

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.root + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def operations(self) -> list[str]:
        contract = Contract()
        return [contract.operation_for(e.method, e.path)[1]["operationId"] for e in self.exchanges]


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract()


@pytest.fixture
def start_emulator(contract: Contract) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(**overrides: Any) -> Emulator:
        exchanges: list[Exchange] = []
        app = create_emulator_app(replace(FAST, **overrides), observer=exchanges.append)
        server = ServerThread(app).start()
        emulator = Emulator(server, app.state.emulator, exchanges)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.server.stop()
    problems = []
    for emulator in started:
        for exchange in emulator.exchanges:
            try:
                contract.check(exchange)
            except AssertionError as error:
                problems.append(str(error))
    assert not problems, "off-contract exchanges:\n" + "\n".join(problems)


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator]) -> Emulator:
    return start_emulator()


def write_config(
    path: Path,
    emulator: Emulator,
    *,
    url: str = "https://relay.example.com/webhooks/ultracart",
    events: str = "",
    extra_webhook: str = "",
    ultracart: str = "",
    control: str = "",
    basic_file: Path | None = None,
    maximum_events: int = 10,
) -> Path:
    events = events or (
        '[[webhook.events]]\nname = "item_update"\n\n'
        '[[webhook.events]]\nname = "order_create"\nexpansion = ["billing", "item", "summary"]\n'
    )
    key_file = path.parent / "simple-key"
    key_file.write_text(SIMPLE_KEY + "\n")
    basic = ""
    if basic_file is not None:
        basic = f'[webhook.basic]\ncredentials_file = "{basic_file}"\n'
    text = f"""
[ultracart]
api_base_url = "{emulator.base_url}"
simple_key_file = "{key_file}"
timeout_seconds = 5
retry_base_delay_seconds = 0.05
{ultracart}

[control]
state_file = "{path.parent / "state.json"}"
{control}

[webhook]
url = "{url}"
maximum_events = {maximum_events}
{extra_webhook}

{basic}

{events}
"""
    path.write_text(text)
    return path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
