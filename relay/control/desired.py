"""The desired webhook, read from ``config/webhooks.toml``.

Every key can be overridden by ``WEBHOOKS_<SECTION>__<KEY>`` (nested tables add ``__``),
e.g. ``WEBHOOKS_WEBHOOK__URL`` or ``WEBHOOKS_ULTRACART__API_BASE_URL``. The prefix is not
``RELAY_`` on purpose: relay's own settings take every ``RELAY_<X>__<Y>`` variable and reject
sections they do not know, so one environment could not serve both.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.control.catalog import category_of
from relay.control.config import ApiSettings, parse_api_settings, read_secret, reject_unknown
from relay.control.errors import ConfigError
from relay.control.models import API_VERSION
from relay.secrets import Secret

DEFAULT_PATH = Path("config/webhooks.toml")
ENV_PREFIX = "WEBHOOKS_"
# Not RELAY_WEBHOOKS__...: a name without "__" is one relay's settings loader leaves alone.
CONFIG_PATH_VAR = "RELAY_WEBHOOKS_CONFIG"

_TOP_KEYS = frozenset({"ultracart", "webhook", "control"})
_WEBHOOK_KEYS = frozenset(
    {"url", "maximum_events", "maximum_size", "compress_events", "api_version", "basic", "events"}
)
_EVENT_KEYS = frozenset({"name", "expansion", "event_ruler"})
_BASIC_KEYS = frozenset({"credentials_env", "credentials_file"})
_CONTROL_KEYS = frozenset(
    {"state_file", "relay_credentials_file", "reload_wait_seconds", "drain_seconds"}
)


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
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            username, sep, password = line.partition(":")
            if not sep or not username or not password:
                raise ConfigError(f"{where}: expected one line \"user:password\"")
            return cls(username, Secret(password), file)
        raise ConfigError(f"{where}: no \"user:password\" line")


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
    state_file: Path = Path("var/control-state.json")
    relay_credentials_file: Path | None = None
    # relay re-reads its credentials file every 2 s by default; wait that twice plus margin
    # before telling UltraCart to use a pair relay may not accept yet.
    reload_wait_seconds: float = 5.0
    # UltraCart gives a delivery 30 s to be answered; one sent with the old pair just before
    # the update may arrive that late, so the old pair stays accepted that long.
    drain_seconds: float = 35.0


@dataclass(frozen=True)
class ControlConfig:
    api: ApiSettings
    webhook: DesiredWebhook
    control: ControlSettings
    path: Path


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env_overrides(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        if path[0] not in _TOP_KEYS:
            continue
        table = doc
        for part in path[:-1]:
            nested = table.setdefault(part, {})
            if not isinstance(nested, dict):
                break
            table = nested
        else:
            table[path[-1]] = _scalar(value)
    return doc


def load(path: Path | None = None, env: Mapping[str, str] = os.environ) -> ControlConfig:
    path = path or Path(env.get(CONFIG_PATH_VAR, str(DEFAULT_PATH)))
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --config)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    reject_unknown(doc, _TOP_KEYS, str(path))
    doc = apply_env_overrides(doc, env)
    api = parse_api_settings(doc.get("ultracart", {}), env)
    return ControlConfig(
        api=api,
        webhook=_webhook(doc.get("webhook", {}), env),
        control=_control(doc.get("control", {})),
        path=path,
    )


def _webhook(table: dict[str, Any], env: Mapping[str, str]) -> DesiredWebhook:
    reject_unknown(table, _WEBHOOK_KEYS, "webhook")
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigError("[webhook] url must be the http(s) URL of relay's intake")
    events = []
    seen: set[str] = set()
    for index, raw in enumerate(table.get("events", [])):
        where = f"[[webhook.events]] #{index + 1}"
        reject_unknown(raw, _EVENT_KEYS, where)
        name = raw.get("name")
        if not isinstance(name, str) or category_of(name) is None:
            raise ConfigError(f"{where}: unknown event name {name!r} (see docs/control.md)")
        if name in seen:
            raise ConfigError(f"{where}: {name} is listed twice")
        seen.add(name)
        expansion = raw.get("expansion", [])
        if isinstance(expansion, str):
            expansion = [part for part in expansion.split(",") if part.strip()]
        ruler = raw.get("event_ruler")
        events.append(
            DesiredEvent(
                name=name,
                expansion=tuple(sorted({str(part).strip() for part in expansion})),
                event_ruler=str(ruler).strip() if ruler else None,
            )
        )
    if not events:
        raise ConfigError("[webhook] needs at least one [[webhook.events]] entry")
    return DesiredWebhook(
        url=url,
        events=tuple(events),
        maximum_events=_optional_int(table, "maximum_events"),
        maximum_size=_optional_int(table, "maximum_size"),
        compress_events=bool(table.get("compress_events", False)),
        api_version=str(table.get("api_version", API_VERSION)),
        basic=_basic(table.get("basic"), env),
    )


def _optional_int(table: Mapping[str, Any], key: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"[webhook] {key} must be a positive integer, not {value!r}")
    return value


def _basic(table: Any, env: Mapping[str, str]) -> BasicCredentials | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError("[webhook.basic] must be a table")
    reject_unknown(table, _BASIC_KEYS, "webhook.basic")
    secret = read_secret(table, "credentials", env, "webhook.basic")
    if secret is None:
        raise ConfigError(
            "[webhook.basic]: set credentials_env (a variable holding \"user:password\") "
            "or credentials_file"
        )
    from_file = None
    env_name = table.get("credentials_env")
    if not (env_name and env.get(str(env_name))) and table.get("credentials_file"):
        from_file = Path(str(table["credentials_file"])).expanduser()
    return BasicCredentials.parse(secret.reveal(), "[webhook.basic] secret", from_file)


def _control(table: dict[str, Any]) -> ControlSettings:
    reject_unknown(table, _CONTROL_KEYS, "control")
    relay_file = table.get("relay_credentials_file")
    return ControlSettings(
        state_file=Path(str(table.get("state_file", "var/control-state.json"))).expanduser(),
        relay_credentials_file=Path(str(relay_file)).expanduser() if relay_file else None,
        reload_wait_seconds=float(table.get("reload_wait_seconds", 5.0)),
        drain_seconds=float(table.get("drain_seconds", 35.0)),
    )
