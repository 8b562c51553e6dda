from __future__ import annotations

from pathlib import Path

import pytest

from relay.secrets import Secret
from relay.settings import ConfigError, Settings

REPO = Path(__file__).resolve().parents[2]
MINIMAL_ENV = {"RELAY_AUTH__BASIC_CREDENTIALS": "uc:pw"}


def test_example_config_file_loads_with_a_credential_from_env() -> None:
    settings = Settings.load(REPO / "config" / "relay.toml", env=MINIMAL_ENV)
    assert settings.server.port == 8080
    assert settings.server.admin_port == 9090
    assert settings.topics.template == "ultracart.{event}"
    assert settings.auth.basic_credentials == (Secret("uc:pw"),)


def test_environment_overrides_file_values_with_typed_parsing(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('[server]\nport = 8000\n[kafka]\nbootstrap_servers = "file:9092"\n')
    env = {
        **MINIMAL_ENV,
        "RELAY_SERVER__PORT": "8181",
        "RELAY_SERVER__ACCESS_LOG": "yes",
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "2.5",
        "RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM": "PLAIN",
        "RELAY_TOPICS__EVENTS__ORDER_CREATE": "orders",
    }
    settings = Settings.load(config, env=env)
    assert settings.server.port == 8181
    assert settings.server.access_log is True
    assert settings.intake.ack_deadline_seconds == 2.5
    assert settings.kafka.bootstrap_servers == "file:9092"
    assert settings.kafka.librdkafka == {"sasl.mechanism": "PLAIN"}
    assert settings.topics.events == {"order_create": "orders"}


def test_relay_config_env_var_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('[auth]\nbasic_credentials = ["a:b"]\n[server]\nport = 7000\n')
    assert Settings.load(env={"RELAY_CONFIG": str(config)}).server.port == 7000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"server": {"prot": 1}}, "unknown setting server.prot"),
        ({"nonsense": {}}, "unknown setting nonsense"),
        ({"server": {"port": "80"}}, "server.port must be an integer"),
        ({"server": {"port": 9090}}, "admin_port must differ"),
        ({"intake": {"ack_deadline_seconds": 30}}, "below UltraCart's 30 s"),
        ({"intake": {"max_inflight_bytes": 0}}, "intake.max_inflight_bytes must be at least 1"),
        ({"topics": {"template": "fixed"}}, "must contain '{event}'"),
        ({"topics": {"patterns": [{"match": "order_*"}]}}, "needs both match and topic"),
    ],
)
def test_invalid_settings_are_refused_with_the_key_named(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_mapping({"auth": {"basic_credentials": ["a:b"]}, **raw})


def test_no_credential_is_refused_unless_explicitly_allowed() -> None:
    with pytest.raises(ConfigError, match="no intake credential configured"):
        Settings.from_mapping({})
    assert Settings.from_mapping({"auth": {"allow_unauthenticated": True}}).auth


def test_bad_credential_error_does_not_echo_the_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"auth": {"basic_credentials": ["no-colon-supersecret"]}})
    assert "supersecret" not in str(caught.value)


def test_secrets_do_not_print_themselves() -> None:
    settings = Settings.from_mapping({"auth": {"basic_credentials": ["uc:hunter2"]}})
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in f"{settings.auth.basic_credentials[0]}"
