"""OAuth: `relay auth login` end to end, owner-only token file, refresh before expiry."""

from __future__ import annotations

import re
import stat
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.control.client import UltraCartClient
from relay.control.credentials import OAuthBearer
from relay.control.oauth import OAuthApp, TokenEndpoint, TokenStore
from relay.control.transport import UrllibTransport
from tests.control.conftest import FAST, CliResult, Emulator, write_config
from tests.support.waiting import wait_until

RunCli = Callable[..., CliResult]
WEBHOOK_URL = "https://relay.example.com/webhooks/ultracart"  # write_config's default


def oauth_config(tmp_path: Path, emulator: Emulator) -> tuple[Path, Path]:
    token_file = tmp_path / "tokens" / "ultracart.json"
    config = write_config(
        tmp_path / "webhooks.toml",
        emulator,
        ultracart=(
            'auth = "oauth"\n\n[ultracart.oauth]\nclient_id = "emulator-client"\n'
            f'token_file = "{token_file}"\nredirect_port = 0\n'
        ),
    )
    return config, token_file


def login(run_cli: RunCli, capsys: pytest.CaptureFixture[str], config: Path) -> CliResult:
    """Run `relay auth login` and play the browser: open the printed URL."""
    results: list[CliResult] = []
    thread = threading.Thread(
        target=lambda: results.append(
            run_cli("auth", "login", "--config", str(config), "--timeout", "10")
        )
    )
    thread.start()
    printed: list[str] = []

    def authorize_url() -> re.Match[str] | None:
        printed.append(capsys.readouterr().err)
        return re.search(r"(http://\S+/oauth/authorize\?\S+)", "".join(printed))

    url = wait_until(authorize_url, message="relay auth login printed no URL")
    # The emulator approves at once and redirects to relay's local callback.
    with urllib.request.urlopen(url.group(1), timeout=10) as answer:
        assert answer.status == 200
        assert b"logged in" in answer.read()
    thread.join(10)
    return results[0]


class Clock:
    """The client's wall clock, moved on by the test instead of waited out."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_login_stores_a_private_token_and_refreshes_it_before_expiry(
    emulator: Emulator, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, token_file = oauth_config(tmp_path, emulator)
    assert run_cli("auth", "status", "--config", str(config)).code == 1  # not logged in

    result = login(run_cli, capsys, config)
    assert result.code == 0, result.err
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert emulator.state.oauth.token_grants == 1
    first_token = token_file.read_text()

    applied = run_cli("webhooks", "apply", "--config", str(config))
    assert applied.code == 0, applied.err
    assert emulator.exchanges[-1].request_headers["authorization"].startswith("Bearer emu-at-")

    # The token's lifetime on, for the client and for UltraCart alike.
    clock = Clock()
    clock.offset = FAST.token_ttl_seconds
    grants = emulator.state.oauth
    grants.access = dict.fromkeys(grants.access, time.time() - 1)
    endpoint = TokenEndpoint(emulator.base_url, OAuthApp("emulator-client"), UrllibTransport(), 5)
    client = UltraCartClient(
        emulator.base_url, OAuthBearer(TokenStore(token_file), endpoint, clock=clock), timeout=5
    )
    # Past expiry: the next call refreshes first, and never sees a 401.
    assert [w["webhook_url"] for w in client.list_webhooks()] == [WEBHOOK_URL]
    assert grants.refresh_grants == 1
    assert all(e.status == 200 for e in emulator.exchanges)
    assert token_file.read_text() != first_token  # new tokens written back at once
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # The CLI goes on with the refreshed token from the file, without another refresh.
    listed = run_cli("webhooks", "list", "--config", str(config))
    assert listed.code == 0, listed.err
    assert grants.refresh_grants == 1
    assert all(e.status == 200 for e in emulator.exchanges)
    # Secrets stay out of what the CLI prints.
    assert "emu-at-" not in listed.out + listed.err + applied.out + applied.err


def test_a_revoked_token_is_refreshed_once_on_401(
    emulator: Emulator, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, _token_file = oauth_config(tmp_path, emulator)
    assert login(run_cli, capsys, config).code == 0
    emulator.state.oauth.access.clear()  # UltraCart forgot every access token
    result = run_cli("webhooks", "list", "--config", str(config))
    assert result.code == 0, result.err
    assert [e.status for e in emulator.exchanges] == [401, 200]
    assert emulator.state.oauth.refresh_grants == 1


def test_a_token_file_readable_by_others_is_refused(
    emulator: Emulator, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, token_file = oauth_config(tmp_path, emulator)
    assert login(run_cli, capsys, config).code == 0
    token_file.chmod(0o644)
    result = run_cli("webhooks", "list", "--config", str(config))
    assert result.code == 1
    assert "readable by others" in result.err
    assert emulator.exchanges == []
