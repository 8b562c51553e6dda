"""End to end: `relay webhooks apply`, then `reflow item_update --wait`, with everything real.

The emulator (in this process) plays UltraCart; relay runs as `relay serve` on the real local
Kafka; the CLI creates the webhook, asks for a reflow and watches the topic. Every item the
emulator holds must then be on the topic, once, keyed by its id. Every API exchange is also
checked against the OpenAPI extract.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay import cli
from relay.emulator.app import create_emulator_app
from relay.emulator.options import BODY_SHAPES, BodyShape, EmulatorOptions
from relay.emulator.recording import Exchange
from tests.control.contract import Contract
from tests.support.kafka import consume_all
from tests.support.relay import CREDENTIALS, RelayProcess
from tests.support.server_thread import ServerThread

ITEMS = 30
SIMPLE_KEY = "e2e-simple-key-0123456789"


@pytest.mark.slow
@pytest.mark.parametrize("shape", BODY_SHAPES)
def test_apply_then_reflow_puts_every_item_on_kafka(
    relay: RelayProcess,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shape: BodyShape,
) -> None:
    exchanges: list[Exchange] = []
    options = EmulatorOptions(
        body_shape=shape,
        simple_keys=(SIMPLE_KEY,),
        items=ITEMS,
        orders=3,
        retry_base_seconds=0.2,
        delivery_tick_seconds=0.02,
        loopback_only=True,
    )
    app = create_emulator_app(options, observer=exchanges.append)
    items = app.state.emulator.items
    topic = topic_prefix + "item_update"
    (tmp_path / "key").write_text(SIMPLE_KEY)
    (tmp_path / "basic").write_text(":".join(CREDENTIALS) + "\n")

    with ServerThread(app) as emulator:
        config = tmp_path / "webhooks.toml"
        config.write_text(
            f"""
[ultracart]
api_base_url = "{emulator.url}/rest/v2"
simple_key_file = "{tmp_path / "key"}"
timeout_seconds = 5

[control]
state_file = "{tmp_path / "state.json"}"

[webhook]
url = "{relay.url}"
maximum_events = 10
compress_events = true

[webhook.basic]
credentials_file = "{tmp_path / "basic"}"

[[webhook.events]]
name = "item_update"
"""
        )
        assert cli.main(["webhooks", "apply", "--config", str(config)]) == 0
        code = cli.main(
            [
                "webhooks",
                "reflow",
                "item_update",
                "--wait",
                "--config",
                str(config),
                "--bootstrap",
                kafka_bootstrap,
                "--topic",
                topic,
                "--timeout",
                "90",
                "--idle",
                "2",
                "--status-every",
                "1",
            ]
        )
        output = capsys.readouterr()
        assert code == 0, output.err
        assert f"{ITEMS} record(s) reached {topic} ({ITEMS} distinct key(s)); complete." in (
            output.out
        )
        assert "UltraCart pending:" in output.err  # progress was shown while waiting

    records = consume_all(kafka_bootstrap, [topic], expected_count=ITEMS, timeout=30)
    assert len(records) == ITEMS
    assert {r.key for r in records} == {str(i["merchant_item_oid"]).encode() for i in items}
    for record in records:
        assert record.value is not None
        item = json.loads(record.value)
        assert item["merchant_item_id"].startswith("SKU-EMU-")
        assert record.headers["ce_type"].endswith(b"item_update")
    # The emulator saw every delivery accepted (compressed, batched by 10).
    [webhook] = app.state.emulator.webhooks.values()
    assert dict(webhook.statuses) == {200: ITEMS // 10}

    contract = Contract()
    assert [contract.check(e) for e in exchanges]  # raises on any off-contract exchange
