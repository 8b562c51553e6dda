"""The emulator logs deliveries as UltraCart does: the body cut at 100,000 characters, the
request and response headers, status, success and duration; summaries with event_names and
order_ids; the log API pages and honours ``_since``. Checked through relay's client, and
every exchange against the contract (the extract plus the SDK's summary fields)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from relay.control.client import UltraCartClient
from relay.control.credentials import SimpleKey
from relay.secrets import Secret
from tests.control.conftest import SIMPLE_KEY, CliResult, Emulator, write_config
from tests.control.intake import Intake
from tests.support.waiting import wait_until


def test_the_log_keeps_what_ultracart_keeps(
    start_emulator: Callable[..., Emulator],
    tmp_path: Path,
    run_cli: Callable[..., CliResult],
) -> None:
    accepted = tmp_path / "relay-credentials"
    accepted.write_text("ultracart:first-password-123\n")
    accepted.chmod(0o600)
    intake = Intake(accepted).start()
    try:
        emulator = start_emulator()
        secret = tmp_path / "ultracart-basic"
        secret.write_text("ultracart:first-password-123\n")
        config = write_config(
            tmp_path / "webhooks.toml",
            emulator,
            url=intake.url,
            basic_file=secret,
            maximum_events=2,
        )
        assert run_cli("webhooks", "apply", "--config", str(config)).code == 0
        big = {"merchant_id": "DEMO", "order_id": "BIG-1", "notes": "x" * 150_000}
        emulator.admin("POST", "/_emulator/events", {"event_name": "item_update", "count": 5})
        [webhook] = emulator.state.webhooks.values()
        wait_until(lambda: webhook.delivered_events == 5)
        middle = datetime.now(UTC)
        time.sleep(0.05)
        emulator.admin("POST", "/_emulator/events", {"event_name": "item_update", "count": 1})
        wait_until(lambda: webhook.delivered_events == 6)
        # An order larger than the log keeps of a body.
        emulator.admin(
            "POST", "/_emulator/events", {"event_name": "order_create", "objects": [big]}
        )
        wait_until(lambda: len(webhook.logs) >= 5)
    finally:
        intake.stop()

    client = UltraCartClient(emulator.base_url, SimpleKey(Secret(SIMPLE_KEY)), page_size=2)
    oid = webhook.webhook_oid
    summaries = list(client.log_summaries(oid))  # three pages of two, and one
    assert len(summaries) == len(webhook.logs) >= 5
    items = [s for s in summaries if s.get("event_names") == ["item_update"]]
    assert len(items) == 4  # 2 + 2 + 1, then 1
    for summary in items:
        assert summary["success"] is True and summary["status_code"] == 200
        assert summary["order_ids"] == [] and summary["duration"] >= 0
    [order] = [s for s in summaries if s.get("event_names") == ["order_create"]]
    assert order["order_ids"] == ["BIG-1"]
    since = list(client.log_summaries(oid, since=middle.isoformat()))
    assert 1 <= len(since) < len(summaries)
    assert all(
        datetime.fromisoformat(str(s["delivery_dts"])) >= middle - timedelta(0) for s in since
    )
    log = client.log(oid, str(order["request_id"]))
    assert len(log["request"]) == 100_000  # the first 100,000 characters only
    assert log["request"].startswith('{"events":[{"order_create":')
    names = {h["name"].lower(): h["value"] for h in log["request_headers"]}
    assert names["authorization"] == "Basic ********"  # credentials masked
    assert names["content-type"] == "application/json"
    assert log["response_headers"] and isinstance(log["status_code"], int)
    assert isinstance(log["duration"], int) and isinstance(log["success"], bool)
