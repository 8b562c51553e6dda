"""plan / apply / delete through the CLI, against the emulator over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.control.conftest import CliResult, Emulator, write_config

RunCli = Callable[..., CliResult]
URL = "https://relay.example.com/webhooks/ultracart"


def _writes(emulator: Emulator) -> list[str]:
    return [op for op in emulator.operations() if op != "getWebhooks"]


def test_plan_then_apply_creates_and_second_apply_changes_nothing(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    config = str(write_config(tmp_path / "webhooks.toml", emulator))

    plan = run_cli("webhooks", "plan", "--config", config, "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert "will be created" in plan.out
    # Without --detailed-exitcode drift is not a failure: 0, and 2 stays argparse's.
    assert run_cli("webhooks", "plan", "--config", config).code == 0
    assert "+ subscribe order_create (expansion: billing,item,summary" in plan.out

    first = run_cli("webhooks", "apply", "--config", config)
    assert first.code == 0, first.err
    assert "Created webhook 1001." in first.out
    [webhook] = emulator.state.webhooks.values()
    assert sorted(webhook.subscriptions) == ["item_update", "order_create"]
    assert webhook.subscriptions["order_create"].expansion == "billing,item,summary"
    assert webhook.settings["maximum_events"] == 10

    as_json = json.loads(run_cli("webhooks", "plan", "--config", config, "--json").out)
    assert as_json["action"] == "noop" and as_json["differs"] is False
    assert as_json["webhook_oid"] == 1001 and as_json["changes"] == []

    before = len(emulator.exchanges)
    second = run_cli("webhooks", "apply", "--config", config)
    assert second.code == 0, second.err
    assert "No changes" in second.out
    # Idempotent: the second apply only read.
    assert {e.method for e in emulator.exchanges[before:]} == {"GET"}
    assert run_cli("webhooks", "plan", "--config", config, "--detailed-exitcode").code == 0
    assert _writes(emulator) == ["insertWebhook"]
    assert len(emulator.state.webhooks) == 1


def test_apply_updates_what_changed_in_the_config(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "webhooks.toml"
    assert run_cli("webhooks", "apply", "--config", str(write_config(path, emulator))).code == 0
    write_config(
        path,
        emulator,
        extra_webhook="compress_events = true",
        events='[[webhook.events]]\nname = "item_update"\nexpansion = "pricing"\n'
        'event_ruler = \'{"merchant_item_id": [{"prefix": "SKU-"}]}\'\n',
    )
    plan = run_cli("webhooks", "plan", "--config", str(path), "--detailed-exitcode")
    assert plan.code == 2
    assert "~ compress_events: false -> true" in plan.out
    assert "~ item_update expansion: none -> pricing" in plan.out
    assert "- unsubscribe order_create" in plan.out  # relay created it: full convergence
    planned = json.loads(run_cli("webhooks", "plan", "--config", str(path), "--json").out)
    assert planned["action"] == "update" and planned["differs"] is True
    assert {"kind": "unsubscribe", "subject": "order_create", "before": "", "after": ""} in (
        planned["changes"]
    )
    applied = run_cli("webhooks", "apply", "--config", str(path), "--json")
    assert applied.code == 0, applied.err
    result = json.loads(applied.out)  # one document: nothing else on stdout
    assert result["result"] == "updated" and result["webhook_oid"] == planned["webhook_oid"]
    assert result["plan"]["changes"] == planned["changes"]
    assert "basic_password" not in applied.out
    [webhook] = emulator.state.webhooks.values()
    assert list(webhook.subscriptions) == ["item_update"]
    assert webhook.subscriptions["item_update"].event_ruler is not None
    assert webhook.settings["compress_events"] is True
    assert run_cli("webhooks", "plan", "--config", str(path), "--detailed-exitcode").code == 0


def test_apply_adopts_an_existing_webhook_with_the_same_url(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    # Someone made the webhook by hand in the back office, with an extra subscription
    # and a trailing slash on the URL.
    other = emulator.state.add_webhook(
        {"webhook_url": "https://other.example.com/hook", "api_version": "2017-03-01"}
    )
    manual = emulator.state.add_webhook(
        {"webhook_url": URL + "/", "api_version": "2017-03-01", "authentication_type": "none"}
    )
    from relay.emulator.store import Subscription

    manual.subscriptions = {"customer_update": Subscription(), "item_update": Subscription()}
    config = str(write_config(tmp_path / "webhooks.toml", emulator))

    plan = run_cli("webhooks", "plan", "--config", config, "--detailed-exitcode")
    assert plan.code == 2
    assert f"oid {manual.webhook_oid}, adopted" in plan.out
    assert "= keep customer_update" in plan.out

    result = run_cli("webhooks", "apply", "--config", config)
    assert result.code == 0, result.err
    assert f"Updated webhook {manual.webhook_oid}." in result.out
    assert len(emulator.state.webhooks) == 2  # no second webhook for the same URL
    assert sorted(manual.subscriptions) == ["customer_update", "item_update", "order_create"]
    assert other.subscriptions == {}
    assert "insertWebhook" not in _writes(emulator)
    # Adopted, so the extra subscription stays and a second apply has nothing to do.
    assert run_cli("webhooks", "plan", "--config", config).code == 0

    # --prune is the explicit ask to remove what relay did not create.
    pruned = run_cli("webhooks", "apply", "--prune", "--config", config)
    assert "- unsubscribe customer_update" in pruned.out
    assert sorted(manual.subscriptions) == ["item_update", "order_create"]

    # Nor will relay delete a webhook it adopted, unless forced.
    refused = run_cli("webhooks", "delete", "--config", config)
    assert refused.code == 1
    assert "not created by relay" in refused.err
    assert manual.webhook_oid in emulator.state.webhooks
    forced = run_cli("webhooks", "delete", "--force", "--config", config)
    assert forced.code == 0
    assert manual.webhook_oid not in emulator.state.webhooks
    assert other.webhook_oid in emulator.state.webhooks


def test_delete_removes_a_webhook_relay_created(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    config = str(write_config(tmp_path / "webhooks.toml", emulator))
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    result = run_cli("webhooks", "delete", "--config", config)
    assert result.code == 0, result.err
    assert emulator.state.webhooks == {}
    assert "deleteWebhook" in _writes(emulator)
    assert run_cli("webhooks", "delete", "--config", config).code == 0  # already gone


def test_list_and_status(emulator: Emulator, run_cli: RunCli, tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "webhooks.toml", emulator))
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    listing = run_cli("webhooks", "list", "--config", config)
    assert listing.code == 0
    assert URL in listing.out
    assert "1 webhook(s)" in listing.out
    status = run_cli("webhooks", "status", "--config", config)
    assert status.code == 0
    for field in ("pending", "consecutive_failures", "next_retry_after", "disabled"):
        assert field in status.out
