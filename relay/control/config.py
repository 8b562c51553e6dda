"""How to reach UltraCart: the ``[ultracart]`` table, shared by the CLI and the poller.

Secrets are never written in the table itself: it names an environment variable or a file
that holds them, so the TOML can be committed and the secret managed by the platform.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from relay.control.client import DEFAULT_BASE_URL
from relay.control.errors import ConfigError
from relay.secrets import Secret

API_KEYS = frozenset(
    {
        "api_base_url", "auth", "simple_key_env", "simple_key_file", "timeout_seconds",
        "page_size", "max_attempts", "retry_base_delay_seconds", "oauth",
    }
)
OAUTH_KEYS = frozenset(
    {"client_id", "client_secret_env", "client_secret_file", "token_file", "redirect_port"}
)


@dataclass(frozen=True)
class OAuthSettings:
    client_id: str
    client_secret: Secret | None
    token_file: Path
    redirect_port: int


@dataclass(frozen=True)
class ApiSettings:
    base_url: str = DEFAULT_BASE_URL
    auth: Literal["simple_key", "oauth"] = "simple_key"
    simple_key: Secret | None = None
    oauth: OAuthSettings | None = None
    timeout_seconds: float = 30.0
    page_size: int = 100
    max_attempts: int = 6
    retry_base_delay_seconds: float = 1.0


def read_secret(
    table: Mapping[str, Any], stem: str, env: Mapping[str, str], where: str
) -> Secret | None:
    """The secret named by ``<stem>_env`` (a variable name) or ``<stem>_file`` (a path)."""
    env_name = table.get(f"{stem}_env")
    file_name = table.get(f"{stem}_file")
    if env_name and env.get(str(env_name)):
        return Secret(env[str(env_name)].strip())
    if file_name:
        path = Path(str(file_name)).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(
                f"{where}.{stem}_file: cannot read {path}: {error.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"{where}.{stem}_file: {path} is empty")
        return Secret(value)
    return None


def reject_unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"[{where}]: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _number(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"[{where}] {key} must be a positive number, not {value!r}")
    return float(value)


def parse_api_settings(
    table: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
    *,
    where: str = "ultracart",
    extra_keys: frozenset[str] = frozenset(),
) -> ApiSettings:
    reject_unknown(table, API_KEYS | extra_keys, where)
    auth = table.get("auth", "simple_key")
    if auth not in ("simple_key", "oauth"):
        raise ConfigError(f"[{where}] auth must be \"simple_key\" or \"oauth\", not {auth!r}")
    base_url = str(table.get("api_base_url", DEFAULT_BASE_URL)).rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"[{where}] api_base_url must be an http(s) URL")
    simple_key = None
    oauth = None
    if auth == "simple_key":
        defaults = {"simple_key_env": "ULTRACART_SIMPLE_KEY", **table}
        simple_key = read_secret(defaults, "simple_key", env, where)
    oauth_table = table.get("oauth", {})
    if not isinstance(oauth_table, dict):
        raise ConfigError(f"[{where}.oauth] must be a table")
    reject_unknown(oauth_table, OAUTH_KEYS, f"{where}.oauth")
    if auth == "oauth":
        client_id = oauth_table.get("client_id") or env.get("ULTRACART_OAUTH_CLIENT_ID")
        if not client_id:
            raise ConfigError(f"[{where}.oauth] client_id is required when auth = \"oauth\"")
        token_file = oauth_table.get("token_file", "~/.config/relay/ultracart-token.json")
        oauth = OAuthSettings(
            client_id=str(client_id),
            client_secret=read_secret(oauth_table, "client_secret", env, f"{where}.oauth"),
            token_file=Path(str(token_file)).expanduser(),
            redirect_port=int(oauth_table.get("redirect_port", 8765)),
        )
    return ApiSettings(
        base_url=base_url,
        auth=auth,
        simple_key=simple_key,
        oauth=oauth,
        timeout_seconds=_number(table, "timeout_seconds", 30.0, where),
        page_size=int(_number(table, "page_size", 100, where)),
        max_attempts=int(_number(table, "max_attempts", 6, where)),
        retry_base_delay_seconds=_number(table, "retry_base_delay_seconds", 1.0, where),
    )
