"""UltraCart's view of the webhook as relay metrics, polled over real HTTP."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from relay.control.client import RetryPolicy
from relay.control.models import Webhook
from relay.control.status_poller import StatusPoller, WebhookStatusGauges
from relay.serving.app import create_app
from relay.settings import ConfigError as SettingsError
from relay.settings import Settings, StatusPollSettings
from tests.control.conftest import SIMPLE_KEY, Emulator
from tests.control.test_client import make_client
from tests.support.fake_sink import FakeSink
from tests.support.server_thread import ServerThread
from tests.support.settings import CREDENTIAL_ENV, settings_with
from tests.support.waiting import wait_until

URL = "https://relay.example.com/webhooks/ultracart"


def sample(registry: CollectorRegistry, name: str, oid: int) -> float | None:
    return registry.get_sample_value(name, {"webhook_oid": str(oid)})


def test_poll_sets_gauges_and_logs_when_ultracart_disables_the_webhook(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # As start_status_poller builds it: one attempt per poll, the next poll is the retry.
    client = make_client(emulator, retry=RetryPolicy(max_attempts=1))
    oid = client.insert_webhook(Webhook(webhook_url=URL))["webhook_oid"]
    registry = CollectorRegistry()
    poller = StatusPoller(client, WebhookStatusGauges(registry), webhook_url=URL, interval=60)

    assert poller.poll_once() is not None
    assert sample(registry, "relay_ultracart_webhook_pending", oid) == 0
    assert sample(registry, "relay_ultracart_webhook_disabled", oid) == 0

    emulator.admin(
        "POST", f"/_emulator/webhooks/{oid}/state", {"disabled": True, "consecutive_failures": 7}
    )
    with caplog.at_level(logging.ERROR, logger="relay.control.status_poller"):
        poller.poll_once()
        poller.poll_once()  # still disabled: said once, not on every poll
    assert sample(registry, "relay_ultracart_webhook_disabled", oid) == 1
    assert sample(registry, "relay_ultracart_webhook_consecutive_failures", oid) == 7
    disabled_lines = [r for r in caplog.records if "has disabled webhook" in r.getMessage()]
    assert len(disabled_lines) == 1

    emulator.admin("POST", "/_emulator/faults", {"statuses": [429]})
    assert poller.poll_once() is None
    assert emulator.exchanges[-1].status == 429  # and no burst of retries after it
    assert (
        registry.get_sample_value(
            "relay_ultracart_status_poll_errors_total", {"reason": "rate_limited"}
        )
        == 1
    )


def test_relay_exports_the_gauges_when_enabled(emulator: Emulator, tmp_path: Path) -> None:
    oid = make_client(emulator).insert_webhook(Webhook(webhook_url=URL))["webhook_oid"]
    key = tmp_path / "key"
    key.write_text(SIMPLE_KEY)
    settings = settings_with(
        ultracart={
            "enabled": True,
            "api_base_url": emulator.base_url,
            "simple_key_file": str(key),
            "webhook_url": URL,
            "poll_interval_seconds": 1,
        },
    )
    with ServerThread(create_app(settings, sink=FakeSink())) as server:

        def scrape_with_gauges() -> str:
            with urllib.request.urlopen(server.url + "/metrics", timeout=5) as answer:
                text: str = answer.read().decode()
            polled = f'relay_ultracart_webhook_pending{{webhook_oid="{oid}"}}' in text
            return text if polled else ""

        text = wait_until(scrape_with_gauges, interval=0.1, message="no gauges were exported")
    assert f'relay_ultracart_webhook_disabled{{webhook_oid="{oid}"}} 0.0' in text


def test_settings_are_off_by_default_and_checked_when_on() -> None:
    def poller(**env: str) -> StatusPollSettings:
        loaded = Settings.load(env={**CREDENTIAL_ENV, "ULTRACART_SIMPLE_KEY": "k", **env})
        assert isinstance(loaded.ultracart, StatusPollSettings)
        return loaded.ultracart

    assert poller().enabled is False
    default = settings_with()
    assert default.ultracart.enabled is False
    with pytest.raises(SettingsError, match="webhook_oid or webhook_url"):
        poller(RELAY_ULTRACART__ENABLED="true")
    with pytest.raises(SettingsError, match="at least 1"):
        settings_with(
            env={"ULTRACART_SIMPLE_KEY": "k"},
            ultracart={"enabled": True, "webhook_oid": 5, "poll_interval_seconds": 0.1},
        )
    parsed = poller(  # environment text, read by each field's type
        RELAY_ULTRACART__ENABLED="true",
        RELAY_ULTRACART__WEBHOOK_OID="5",
        RELAY_ULTRACART__POLL_INTERVAL_SECONDS="30",
    )
    assert (parsed.webhook_oid, parsed.poll_interval_seconds) == (5, 30.0)
    assert parsed.api is not None and parsed.api.simple_key is not None
    assert parsed.api.simple_key.reveal() == "k"
