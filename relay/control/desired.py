"""The desired webhook, read from ``config/webhooks.toml`` through relay's one settings
loader (``relay.settings.webhooks`` holds the schema and the ``WEBHOOKS_...`` naming).

What is checked here needs UltraCart's vocabulary or a secret: event names, duplicates, and
the Basic pair UltraCart should send.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from relay.control.catalog import category_of
from relay.control.models import API_VERSION
from relay.credentials import PAIR_RULE, pair_lines, parse_pair
from relay.secrets import Secret
from relay.settings.errors import ConfigError
from relay.settings.loader import load_document, read_toml
from relay.settings.ultracart import ApiSettings, api_settings, read_secret
from relay.settings.webhooks import BasicTable, ControlTable, WebhooksFile, WebhookTable

DEFAULT_PATH = Path("config/webhooks.toml")
ENV_PREFIX = "WEBHOOKS_"
# Not RELAY_WEBHOOKS__...: a name without "__" is one relay's settings loader leaves alone.
CONFIG_PATH_VAR = "RELAY_WEBHOOKS_CONFIG"


@dataclass(frozen=True)
class DesiredEvent:
    name: str
    expansion: tuple[str, ...] = ()
    event_ruler: str | None = None

    @property
    def expansion_csv(self) -> str:
        return ",".join(self.expansion)


@dataclass(frozen=True)
class BasicCredentials:
    """The Basic pair UltraCart should send; ``file`` is set when it came from a file (only
    then can ``rotate-credentials`` write the new pair back)."""

    username: str
    password: Secret
    file: Path | None = None

    @classmethod
    def parse(cls, text: str, where: str, file: Path | None = None) -> BasicCredentials:
        lines = pair_lines(text)
        if len(lines) != 1:
            raise ConfigError(
                f'{where}: expected one line "user:password"', setting="webhook.basic"
            )
        try:
            username, password = parse_pair(lines[0][1])
        except ValueError:
            raise ConfigError(f"{where} {PAIR_RULE}", setting="webhook.basic") from None
        return cls(username, Secret(password), file)


@dataclass(frozen=True)
class DesiredWebhook:
    url: str
    events: tuple[DesiredEvent, ...]
    maximum_events: int | None = None
    maximum_size: int | None = None
    compress_events: bool = False
    api_version: str = API_VERSION
    basic: BasicCredentials | None = None


@dataclass(frozen=True)
class ControlSettings:
    """webhooks.toml's ``[control]`` with paths expanded (defaults: ``ControlTable``)."""

    state_file: Path
    relay_credentials_file: Path | None
    reload_wait_seconds: float
    drain_seconds: float


@dataclass(frozen=True)
class ControlConfig:
    api: ApiSettings
    webhook: DesiredWebhook
    control: ControlSettings
    path: Path


def load(path: Path | None = None, env: Mapping[str, str] = os.environ) -> ControlConfig:
    path = path or Path(env.get(CONFIG_PATH_VAR, str(DEFAULT_PATH)))
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (pass --config)")
    doc = load_document(WebhooksFile, read_toml(path), env, prefix=ENV_PREFIX, file=str(path))
    return ControlConfig(
        api=api_settings(doc.ultracart, env),
        webhook=_webhook(doc.webhook, env),
        control=_control(doc.control),
        path=path,
    )


def _webhook(table: WebhookTable, env: Mapping[str, str]) -> DesiredWebhook:
    events = []
    seen: set[str] = set()
    for index, raw in enumerate(table.events):
        where = f"[[webhook.events]] #{index + 1}"
        setting = f"webhook.events[{index}].name"
        if category_of(raw.name) is None:
            raise ConfigError(
                f"{where}: unknown event name {raw.name!r} (see docs/control.md)", setting=setting
            )
        if raw.name in seen:
            raise ConfigError(f"{where}: {raw.name} is listed twice", setting=setting)
        seen.add(raw.name)
        parts = raw.expansion.split(",") if isinstance(raw.expansion, str) else raw.expansion
        events.append(
            DesiredEvent(
                name=raw.name,
                expansion=tuple(sorted({part.strip() for part in parts if part.strip()})),
                event_ruler=raw.event_ruler.strip() or None,
            )
        )
    return DesiredWebhook(
        url=table.url,
        events=tuple(events),
        maximum_events=table.maximum_events,
        maximum_size=table.maximum_size,
        compress_events=table.compress_events,
        api_version=table.api_version or API_VERSION,
        basic=_basic(table.basic, env),
    )


def _basic(table: BasicTable | None, env: Mapping[str, str]) -> BasicCredentials | None:
    if table is None:
        return None
    secret = read_secret(
        table.credentials_env, table.credentials_file, env, "webhook.basic.credentials"
    )
    if secret is None:
        raise ConfigError(
            f"webhook.basic: ${table.credentials_env} is not set; set credentials_env "
            '(a variable holding "user:password") or credentials_file',
            setting="webhook.basic.credentials_env",
        )
    from_file = None
    if not (table.credentials_env and env.get(table.credentials_env)) and table.credentials_file:
        from_file = Path(table.credentials_file).expanduser()
    return BasicCredentials.parse(secret.reveal(), "webhook.basic credentials", from_file)


def _control(table: ControlTable) -> ControlSettings:
    relay_file = table.relay_credentials_file
    return ControlSettings(
        state_file=Path(table.state_file).expanduser(),
        relay_credentials_file=Path(relay_file).expanduser() if relay_file else None,
        reload_wait_seconds=table.reload_wait_seconds,
        drain_seconds=table.drain_seconds,
    )
