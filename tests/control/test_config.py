"""The desired-state file: the shipped example loads, mistakes are named, secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.control.desired import load
from relay.settings import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "webhooks.toml"


def test_shipped_example_loads_with_env_overrides(tmp_path: Path) -> None:
    basic = tmp_path / "basic"
    basic.write_text("# the pair UltraCart sends\nultracart:p4ss-w0rd\n")
    config = load(
        SHIPPED,
        env={
            "ULTRACART_SIMPLE_KEY": "key-from-env",
            "WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE": str(basic),
            "WEBHOOKS_WEBHOOK__URL": "https://relay.test/webhooks/ultracart",
            "WEBHOOKS_ULTRACART__TIMEOUT_SECONDS": "7",
            "RELAY_KAFKA__BOOTSTRAP_SERVERS": "ignored:9092",  # relay's, not ours
        },
    )
    assert config.webhook.url == "https://relay.test/webhooks/ultracart"
    assert config.api.timeout_seconds == 7
    assert config.api.simple_key is not None and config.api.simple_key.reveal() == "key-from-env"
    assert [e.name for e in config.webhook.events] == [
        "order_create",
        "order_update",
        "item_update",
    ]
    assert config.webhook.events[0].expansion_csv == "billing,coupon,item,payment,shipping,summary"
    assert config.webhook.basic is not None
    assert config.webhook.basic.username == "ultracart"
    assert config.webhook.basic.file == basic
    assert "p4ss-w0rd" not in repr(config)
    assert "key-from-env" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[webhook]\nurl = "https://x"\n[[webhook.events]]\nname = "item_updated"\n',
            "unknown event name 'item_updated'",
        ),
        (
            '[webhook]\nurl = "https://x"\nmaximum_event = 5\n',
            "unknown setting webhook.maximum_event",
        ),
        ('[webhook]\nurl = "ftp://x"\n', "url must be the http(s) URL"),
        ('[webhook]\nurl = "https://x"\n', "at least one [[webhook.events]]"),
        (
            '[ultracart]\nauth = "oauth"\n[webhook]\nurl = "https://x"\n'
            '[[webhook.events]]\nname = "item_update"\n',
            "client_id is required",
        ),
        (
            '[webhook]\nurl = "https://x"\n[webhook.basic]\ncredentials_env = "NOPE"\n'
            '[[webhook.events]]\nname = "item_update"\n',
            "set credentials_env",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "webhooks.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert message in str(caught.value)


def test_a_malformed_secret_is_reported_without_its_content(tmp_path: Path) -> None:
    secret = tmp_path / "basic"
    secret.write_text("no-colon-here-SECRETVALUE\n")
    path = tmp_path / "webhooks.toml"
    path.write_text(
        f'[webhook]\nurl = "https://x"\n[webhook.basic]\ncredentials_file = "{secret}"\n'
        '[[webhook.events]]\nname = "item_update"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert "user:password" in str(caught.value)
    assert "SECRETVALUE" not in str(caught.value)
