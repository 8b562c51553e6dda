"""The emulator delivers like UltraCart, into relay's real intake (Kafka replaced by a fake)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.emulator.options import BODY_SHAPES, BodyShape
from tests.control.conftest import CliResult, Emulator, write_config
from tests.control.intake import Intake
from tests.support.waiting import wait_until

RunCli = Callable[..., CliResult]
PAIR = "ultracart:first-password-123"


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[Intake]:
    accepted = tmp_path / "relay-credentials"
    accepted.write_text(PAIR + "\n")
    accepted.chmod(0o600)
    running = Intake(accepted).start()
    yield running
    running.stop()


def configure(tmp_path: Path, emulator: Emulator, intake: Intake, extra: str = "") -> str:
    secret = tmp_path / "ultracart-basic"
    secret.write_text(PAIR + "\n")
    return str(
        write_config(
            tmp_path / "webhooks.toml",
            emulator,
            url=intake.url,
            basic_file=secret,
            extra_webhook=extra,
            events='[[webhook.events]]\nname = "item_update"\n',
        )
    )


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", BODY_SHAPES)
def test_events_arrive_in_batches_of_maximum_events(
    start_emulator: Callable[..., Emulator],
    intake: Intake,
    run_cli: RunCli,
    tmp_path: Path,
    compress: bool,
    shape: BodyShape,
) -> None:
    emulator = start_emulator(body_shape=shape)
    extra = "compress_events = true" if compress else ""
    config = configure(tmp_path, emulator, intake, extra)
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    emulator.admin("POST", "/_emulator/events", {"event_name": "item_update", "count": 25})
    wait_until(lambda: len(intake.sink.records) == 25)
    assert [len(batch) for batch in intake.sink.published] == [10, 10, 5]
    assert {r.topic for r in intake.sink.records} == {"ultracart.item_update"}
    [webhook] = emulator.state.webhooks.values()
    wait_until(lambda: webhook.statuses[200] == 3 and not webhook.queue)
    assert dict(webhook.statuses) == {200: 3}
    logged = next(iter(webhook.logs.newest_first())).log.get("request", "")
    if compress:
        # base64 of gzip: in "events", or the whole body (a JSON string) for the array shape.
        body = json.loads(logged)
        assert isinstance(body if shape == "array" else body["events"], str)
    else:
        # The log keeps the first 100,000 characters only: look at how the body starts.
        assert logged.startswith("[{" if shape == "array" else '{"events":[{')


def test_refused_deliveries_are_retried_then_logged_and_visible_in_status(
    emulator: Emulator, intake: Intake, run_cli: RunCli, tmp_path: Path
) -> None:
    config = configure(tmp_path, emulator, intake)
    (tmp_path / "ultracart-basic").write_text("ultracart:not-the-password\n")
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    emulator.admin("POST", "/_emulator/events", {"event_name": "item_update", "count": 3})
    [webhook] = emulator.state.webhooks.values()
    wait_until(lambda: webhook.consecutive_failures >= 3)
    assert intake.sink.records == []
    status = run_cli("webhooks", "status", "--config", config, "--json")
    shown = json.loads(status.out)
    assert shown["pending"] == 3 and shown["consecutive_failures"] >= 3
    assert shown["next_retry_after"]
    failed = run_cli("webhooks", "logs", "--failed", "--config", config)
    assert "FAILED" in failed.out
    request_id = failed.out.splitlines()[1].split()[-1]
    one = run_cli("webhooks", "log", request_id, "--config", config)
    assert "status          401 (FAILED)" in one.out
    assert "Authorization: ********" in one.out
    assert "not-the-password" not in one.out
    as_json = run_cli("webhooks", "logs", "--failed", "--json", "--config", config)
    summaries = json.loads(as_json.out)
    assert request_id in [s["request_id"] for s in summaries]
    assert not any(s["success"] for s in summaries)
    delivery = json.loads(run_cli("webhooks", "log", request_id, "--json", "--config", config).out)
    assert delivery["status_code"] == 401 and delivery["request_id"] == request_id
    assert {"name": "Authorization", "value": "********"} in delivery["request_headers"]
    assert "not-the-password" not in json.dumps(delivery)

    # Put the right pair back: the queued events go through on the next retry.
    (tmp_path / "ultracart-basic").write_text(PAIR + "\n")
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    wait_until(lambda: len(intake.sink.records) == 3)
    wait_until(lambda: webhook.consecutive_failures == 0)
    assert (
        run_cli("webhooks", "logs", "--failed", "--since", "1h", "--config", config).out.count(
            "FAILED"
        )
        >= 3
    )


def test_reflow_resends_every_item(
    emulator: Emulator, intake: Intake, run_cli: RunCli, tmp_path: Path
) -> None:
    config = configure(tmp_path, emulator, intake)
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    result = run_cli("webhooks", "reflow", "item_update", "--config", config)
    assert result.code == 0, result.err
    wait_until(lambda: len(intake.sink.records) == len(emulator.state.items))
    keys = {r.key for r in intake.sink.records}
    assert keys == {str(item["merchant_item_oid"]).encode() for item in emulator.state.items}
    refused = run_cli("webhooks", "reflow", "customer_update", "--config", config)
    assert refused.code == 1
    assert "reflows only item_update, order_create" in refused.err


def test_webhook_disabled_after_repeated_failures(
    start_emulator: Callable[..., Emulator], intake: Intake, run_cli: RunCli, tmp_path: Path
) -> None:
    emulator = start_emulator(disable_after_failures=3)
    config = configure(tmp_path, emulator, intake)
    (tmp_path / "ultracart-basic").write_text("ultracart:wrong-password-1\n")
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    emulator.admin("POST", "/_emulator/events", {"event_name": "item_update", "count": 1})
    [webhook] = emulator.state.webhooks.values()
    wait_until(lambda: webhook.disabled)
    status = run_cli("webhooks", "status", "--config", config)
    assert "YES: UltraCart stopped delivering" in status.out
    # apply re-enables it once the credentials are right again.
    (tmp_path / "ultracart-basic").write_text(PAIR + "\n")
    plan = run_cli("webhooks", "plan", "--config", config)
    assert "~ disabled: true -> false" in plan.out
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    wait_until(lambda: len(intake.sink.records) == 1)
