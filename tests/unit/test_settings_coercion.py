"""One set of rules for environment text, shared by relay.toml, its [ultracart] poller table
and webhooks.toml: each rule runs against every document that has a field of its type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relay.control import desired
from relay.settings import ConfigError, Settings, StatusPollSettings

BASE_RELAY = {"RELAY_AUTH__BASIC_CREDENTIALS": "u:p", "ULTRACART_SIMPLE_KEY": "k"}
# An enabled poller needs a webhook to poll; the rules are tried on its other fields.
POLLER_ON = {"RELAY_ULTRACART__ENABLED": "true", "RELAY_ULTRACART__WEBHOOK_OID": "7"}
WEBHOOKS_TOML = """
[webhook]
url = "https://relay.test/webhooks/ultracart"
[[webhook.events]]
name = "item_update"
"""


@dataclass(frozen=True)
class Document:
    name: str
    load: Callable[[dict[str, str]], Any]
    # rule kind -> (variable, how to read the value back)
    fields: dict[str, tuple[str, Callable[[Any], Any]]]


def _relay(env: dict[str, str]) -> Settings:
    return Settings.load(env={**BASE_RELAY, **env})


def _poller(env: dict[str, str]) -> Any:
    return Settings.load(env={**BASE_RELAY, **POLLER_ON, **env}).ultracart


def _webhooks(tmp: Path) -> Callable[[dict[str, str]], desired.ControlConfig]:
    path = tmp / "webhooks.toml"
    path.write_text(WEBHOOKS_TOML)
    return lambda env: desired.load(path, env={"ULTRACART_SIMPLE_KEY": "k", **env})


def documents(tmp: Path) -> dict[str, Document]:
    return {
        "relay.toml": Document(
            "relay.toml",
            _relay,
            {
                "bool": ("RELAY_SERVER__ACCESS_LOG", lambda s: s.server.access_log),
                "int": (
                    "RELAY_INTAKE__RETRY_AFTER_SECONDS",
                    lambda s: s.intake.retry_after_seconds,
                ),
                "float": (
                    "RELAY_SERVER__KEEP_ALIVE_SECONDS",
                    lambda s: s.server.keep_alive_seconds,
                ),
                "list": (
                    "RELAY_INTAKE__ACCEPTED_CONTENT_TYPES",
                    lambda s: s.intake.accepted_content_types,
                ),
                "table": ("RELAY_TOPICS__EVENTS__ORDER_CREATE", lambda s: dict(s.topics.events)),
            },
        ),
        "[ultracart] poller": Document(
            "[ultracart] poller",
            _poller,
            {
                "bool": ("RELAY_ULTRACART__ENABLED", lambda u: u.enabled),
                "int": ("RELAY_ULTRACART__PAGE_SIZE", lambda u: u.page_size),
                "float": ("RELAY_ULTRACART__TIMEOUT_SECONDS", lambda u: u.timeout_seconds),
                "optional": ("RELAY_ULTRACART__WEBHOOK_URL", lambda u: u.webhook_url),
                "literal": ("RELAY_ULTRACART__AUTH", lambda u: u.auth),
            },
        ),
        "webhooks.toml": Document(
            "webhooks.toml",
            _webhooks(tmp),
            {
                "bool": ("WEBHOOKS_WEBHOOK__COMPRESS_EVENTS", lambda c: c.webhook.compress_events),
                "int": ("WEBHOOKS_ULTRACART__PAGE_SIZE", lambda c: c.api.page_size),
                "float": ("WEBHOOKS_CONTROL__DRAIN_SECONDS", lambda c: c.control.drain_seconds),
                "optional": (
                    "WEBHOOKS_WEBHOOK__MAXIMUM_EVENTS",
                    lambda c: c.webhook.maximum_events,
                ),
                "literal": ("WEBHOOKS_ULTRACART__AUTH", lambda c: c.api.auth),
            },
        ),
    }


# (kind, environment text, the value read, or the error text expected)
RULES: list[tuple[str, str, Any]] = [
    *[("bool", word, True) for word in ("true", "TRUE", "yes", "On", "1", " on ")],
    *[("bool", word, False) for word in ("false", "no", "NO", "off", "0")],
    *[
        ("bool", word, ConfigError(f"must be one of true/false/yes/no/on/off/1/0, got {word!r}"))
        for word in ("maybe", "", "2", "y", "enabled")
    ],
    ("int", "42", 42),
    ("int", " 42 ", 42),
    ("int", "4.2", ConfigError("must be an integer, got '4.2'")),
    ("int", "lots", ConfigError("must be an integer, got 'lots'")),
    ("float", "2.5", 2.5),
    ("float", "3", 3.0),
    ("float", "soon", ConfigError("must be a number, got 'soon'")),
    ("list", "application/json, text/json,,", ("application/json", "text/json")),
    ("list", "", ()),
    ("optional", "", None),
    ("table", "orders", {"order_create": "orders"}),
    ("literal", "simple_key", "simple_key"),
    ("literal", "bearer", ConfigError("must be 'oauth' or 'simple_key', not 'bearer'")),
]


def _cases() -> list[Any]:
    kinds = {
        "relay.toml": {"bool", "int", "float", "list", "table"},
        "[ultracart] poller": {"bool", "int", "float", "optional", "literal"},
        "webhooks.toml": {"bool", "int", "float", "optional", "literal"},
    }
    return [
        pytest.param(doc, kind, text, want, id=f"{doc}-{kind}-{text!r}")
        for doc, doc_kinds in kinds.items()
        for kind, text, want in RULES
        if kind in doc_kinds
    ]


@pytest.mark.parametrize(("doc", "kind", "text", "want"), _cases())
def test_environment_text_is_read_by_the_field_type(
    tmp_path: Path, doc: str, kind: str, text: str, want: Any
) -> None:
    document = documents(tmp_path)[doc]
    var, read = document.fields[kind]
    if doc == "[ultracart] poller" and kind == "bool" and want is False:
        # Disabling the poller: nothing about the webhook to poll is needed any more.
        loaded = Settings.load(env={**BASE_RELAY, var: text}).ultracart
        assert read(loaded) is False
        return
    if isinstance(want, ConfigError):
        with pytest.raises(ConfigError) as caught:
            document.load({var: text})
        assert caught.value.env == var
        assert caught.value.setting and caught.value.setting in caught.value.message
        assert str(caught.value).startswith(f"{var}: ")
        assert str(want) in str(caught.value)
        return
    assert read(document.load({var: text})) == want


@pytest.mark.parametrize(
    ("doc", "var", "key"),
    [
        ("relay.toml", "RELAY_SERVER__PORTT", "server.portt"),
        ("relay.toml", "RELAY_AUTH__SIGNATURE__SECRET", "auth.signature.secret"),
        ("[ultracart] poller", "RELAY_ULTRACART__POLL_INTERVAL", "ultracart.poll_interval"),
        ("[ultracart] poller", "RELAY_ULTRACART__OAUTH__CLIENT", "ultracart.oauth.client"),
        ("webhooks.toml", "WEBHOOKS_WEBHOOK__MAXIMUM_EVENT", "webhook.maximum_event"),
        ("webhooks.toml", "WEBHOOKS_NOPE__X", "nope.x"),
    ],
)
def test_an_unknown_variable_is_named_with_its_setting(
    tmp_path: Path, doc: str, var: str, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        documents(tmp_path)[doc].load({var: "1"})
    assert (caught.value.env, caught.value.setting) == (var, key)
    assert str(caught.value) == f"{var}: unknown setting {key}"


def test_librdkafka_keys_from_the_environment_are_dotted() -> None:
    settings = _relay({"RELAY_KAFKA__LIBRDKAFKA__LINGER_MS": "5"})
    assert dict(settings.kafka.librdkafka) == {"linger.ms": "5"}


@pytest.mark.parametrize(
    ("table", "text"),
    [
        ("server", "[server]\nprot = 1\n"),
        ("auth.signature", "[auth.signature]\nsecret = []\n"),
        ("spool", "[spool]\nenabled = false\nsize = 1\n"),
        ("ultracart", "[ultracart]\nenabled = false\npoll_interval = 5\n"),
        ("ultracart.oauth", "[ultracart]\nenabled = false\n[ultracart.oauth]\nclient = 'x'\n"),
    ],
)
def test_unknown_keys_are_refused_in_every_table_enabled_or_not(
    tmp_path: Path, table: str, text: str
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[auth]\nbasic_credentials = ["u:p"]\n' + text)
    with pytest.raises(ConfigError) as caught:
        Settings.load(path, env={})
    assert caught.value.setting.startswith(f"{table}.")
    assert caught.value.file == str(path)
    assert str(caught.value) == f"unknown setting {caught.value.setting} (in {path})"


def test_an_unknown_key_in_a_list_of_tables_is_named_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    text = '[auth]\nbasic_credentials = ["u:p"]\n[[topics.patterns]]\nmatch = "a*"\ntopic = "b"\n'
    path.write_text(text + "[[topics.patterns]]\nmatch = 'c*'\ntopic = 'd'\ntopik = 'e'\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(path, env={})
    assert (caught.value.setting, caught.value.file) == ("topics.patterns[1].topik", str(path))


def test_a_table_check_is_named_with_the_variable_that_set_its_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(env={**BASE_RELAY, "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "45"})
    assert caught.value.setting == "intake.ack_deadline_seconds"
    assert caught.value.env == "RELAY_INTAKE__ACK_DEADLINE_SECONDS"
    assert str(caught.value).startswith("RELAY_INTAKE__ACK_DEADLINE_SECONDS: intake.ack_deadline")


def test_a_wrong_type_in_the_file_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[auth]\nbasic_credentials = ["u:p"]\n[server]\nport = "80"\n')
    with pytest.raises(ConfigError) as caught:
        Settings.load(path, env={})
    assert (caught.value.setting, caught.value.file) == ("server.port", str(path))
    assert str(caught.value) == f"server.port must be an integer, not a string (in {path})"


def test_ultracart_enabled_no_disables_the_poller() -> None:
    # The webhook to poll is not set: an enabled poller would refuse to start.
    settings = Settings.load(env={**BASE_RELAY, "RELAY_ULTRACART__ENABLED": "no"})
    assert settings.ultracart.enabled is False


def test_the_poller_reads_its_secret_from_the_environment_it_was_loaded_with() -> None:
    env = {
        "RELAY_AUTH__BASIC_CREDENTIALS": "u:p",
        "RELAY_ULTRACART__SIMPLE_KEY_ENV": "MY_KEY",
        "MY_KEY": "from-this-env",
        **POLLER_ON,
    }
    poller = Settings.load(env=env).ultracart
    assert isinstance(poller, StatusPollSettings) and poller.api is not None
    assert poller.api.simple_key is not None
    assert poller.api.simple_key.reveal() == "from-this-env"


@pytest.mark.parametrize(
    "env",
    [
        {"RELAY_AUTH__BASIC_CREDENTIALS": "ultracart:"},  # empty password
        {"RELAY_AUTH__BASIC_CREDENTIALS": ":hunter2-secret"},  # empty user
        {"RELAY_AUTH__BASIC_CREDENTIALS": "hunter2-secret"},  # no colon
        {
            "RELAY_AUTH__SIGNATURE__SECRETS": "whsec_hunter2-secret",
            "RELAY_AUTH__SIGNATURE__TOLERANCE_SECONDS": "x",
        },
    ],
)
def test_errors_never_show_a_secret(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(env=env)
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("RELAY_AUTH__")


def test_an_empty_user_or_password_is_refused_with_one_message_everywhere(
    tmp_path: Path,
) -> None:
    from relay.credentials import read_credentials_file

    file = tmp_path / "basic"
    file.write_text("ultracart:\n")
    messages = []
    with pytest.raises(ValueError) as from_file:
        read_credentials_file(file)
    messages.append(str(from_file.value))
    with pytest.raises(ConfigError) as from_settings:
        Settings.load(env={"RELAY_AUTH__BASIC_CREDENTIALS": "ultracart:"})
    messages.append(str(from_settings.value))
    webhooks = tmp_path / "webhooks.toml"
    webhooks.write_text(
        WEBHOOKS_TOML.replace(
            "[[webhook.events]]",
            f'[webhook.basic]\ncredentials_file = "{file}"\n[[webhook.events]]',
        )
    )
    with pytest.raises(ConfigError) as from_webhooks:
        desired.load(webhooks, env={})
    messages.append(str(from_webhooks.value))
    assert all(m.endswith('must be "user:password" with neither part empty') for m in messages)
