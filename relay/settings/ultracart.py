"""How to reach UltraCart: the ``[ultracart]`` table, shared by webhooks.toml (the CLI) and
relay.toml (the status poller), and the secrets it names.

Secrets are never written in the table itself: it names an environment variable or a file
that holds them, so the TOML can be committed and the secret managed by the platform. They
are read when the configuration is loaded, from the environment the loader was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
from msgspec.structs import asdict, force_setattr

from relay.secrets import Secret
from relay.settings.errors import ConfigError
from relay.settings.loader import Table

DEFAULT_BASE_URL = "https://secure.ultracart.com/rest/v2"


class OAuthTable(Table, frozen=True):
    # Empty: $ULTRACART_OAUTH_CLIENT_ID.
    client_id: str = ""
    client_secret_env: str = ""
    client_secret_file: str = ""
    token_file: str = "~/.config/relay/ultracart-token.json"
    redirect_port: int = 8765


class UltraCartApi(Table, frozen=True):
    api_base_url: str = DEFAULT_BASE_URL
    auth: Literal["simple_key", "oauth"] = "simple_key"
    # The variable holding the key is read first; the file if the variable is unset.
    simple_key_env: str = "ULTRACART_SIMPLE_KEY"
    simple_key_file: str = ""
    timeout_seconds: float = 30.0
    page_size: int = 100
    max_attempts: int = 6
    retry_base_delay_seconds: float = 1.0
    oauth: OAuthTable = msgspec.field(default_factory=OAuthTable)

    def __post_init__(self) -> None:
        self._check_api()

    def _check_api(self) -> None:
        force_setattr(self, "api_base_url", self.api_base_url.rstrip("/"))
        if not self.api_base_url.startswith(("https://", "http://")):
            raise ConfigError(
                "ultracart.api_base_url must be an http(s) URL", setting="ultracart.api_base_url"
            )
        for key in ("timeout_seconds", "page_size", "max_attempts", "retry_base_delay_seconds"):
            if getattr(self, key) <= 0:
                raise ConfigError(
                    f"ultracart.{key} must be a positive number", setting=f"ultracart.{key}"
                )


class UltraCartPoller(UltraCartApi, frozen=True, kw_only=True):
    """relay.toml's ``[ultracart]``: the API table plus what to poll. Off unless enabled;
    while off its keys are still checked against the schema, its values are not."""

    enabled: bool = False
    # 60 s is 60 of UltraCart's 1,000 calls an hour.
    poll_interval_seconds: float = 60.0
    webhook_oid: int | None = None
    webhook_url: str | None = None

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        self._check_api()
        if self.poll_interval_seconds < 1:
            raise ConfigError(
                "ultracart.poll_interval_seconds must be at least 1",
                setting="ultracart.poll_interval_seconds",
            )
        if self.webhook_oid is None and not self.webhook_url:
            raise ConfigError(
                "ultracart: set webhook_oid or webhook_url to say what to poll",
                setting="ultracart.webhook_oid",
            )


@dataclass(frozen=True)
class OAuthSettings:
    client_id: str
    client_secret: Secret | None
    token_file: Path
    redirect_port: int


@dataclass(frozen=True)
class ApiSettings:
    """The table with its secrets read: what the UltraCart client is built from."""

    base_url: str = DEFAULT_BASE_URL
    auth: Literal["simple_key", "oauth"] = "simple_key"
    simple_key: Secret | None = None
    oauth: OAuthSettings | None = None
    timeout_seconds: float = 30.0
    page_size: int = 100
    max_attempts: int = 6
    retry_base_delay_seconds: float = 1.0


class StatusPollSettings(UltraCartPoller, frozen=True, kw_only=True):
    """``[ultracart]`` after loading: ``api`` holds the secrets, read from the environment
    the settings were loaded with. Never built from a file (the schema is the base class)."""

    api: ApiSettings | None = None


def read_secret(env_name: str, file_name: str, env: Mapping[str, str], where: str) -> Secret | None:
    """The secret in variable ``env_name`` if set, else in file ``file_name``, else None."""
    if env_name and env.get(env_name):
        return Secret(env[env_name].strip())
    if file_name:
        path = Path(file_name).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{where}_file: cannot read {path}: {error.strerror}") from None
        if not value:
            raise ConfigError(f"{where}_file: {path} is empty")
        return Secret(value)
    return None


def api_settings(table: UltraCartApi, env: Mapping[str, str]) -> ApiSettings:
    oauth = None
    simple_key = None
    if table.auth == "simple_key":
        simple_key = read_secret(
            table.simple_key_env, table.simple_key_file, env, "ultracart.simple_key"
        )
    else:
        client_id = table.oauth.client_id or env.get("ULTRACART_OAUTH_CLIENT_ID", "")
        if not client_id:
            raise ConfigError(
                'ultracart.oauth.client_id is required when auth = "oauth" '
                "(or set $ULTRACART_OAUTH_CLIENT_ID)"
            )
        oauth = OAuthSettings(
            client_id=client_id,
            client_secret=read_secret(
                table.oauth.client_secret_env,
                table.oauth.client_secret_file,
                env,
                "ultracart.oauth.client_secret",
            ),
            token_file=Path(table.oauth.token_file).expanduser(),
            redirect_port=table.oauth.redirect_port,
        )
    return ApiSettings(
        base_url=table.api_base_url,
        auth=table.auth,
        simple_key=simple_key,
        oauth=oauth,
        timeout_seconds=table.timeout_seconds,
        page_size=table.page_size,
        max_attempts=table.max_attempts,
        retry_base_delay_seconds=table.retry_base_delay_seconds,
    )


def resolve_poller(
    table: UltraCartPoller, env: Mapping[str, str], file: str | None = None
) -> StatusPollSettings:
    """The poller table with its secrets read; fails now, not at the first poll."""
    fields = {k: v for k, v in asdict(table).items() if k != "api"}
    if not table.enabled:
        return StatusPollSettings(**fields)
    api = api_settings(table, env)
    if api.auth == "simple_key" and api.simple_key is None:
        raise ConfigError(
            f"ultracart: no simple key: set ${table.simple_key_env or 'ULTRACART_SIMPLE_KEY'} "
            "or simple_key_env / simple_key_file" + (f" (in {file})" if file else "")
        )
    return StatusPollSettings(**fields, api=api)
