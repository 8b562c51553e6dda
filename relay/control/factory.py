"""Build a client from settings: credentials, retry policy, and a voice for waits."""

from __future__ import annotations

import time
from collections.abc import Callable

from relay.control.budget import CallBudget
from relay.control.client import RetryPolicy, UltraCartClient, WaitNotice
from relay.control.credentials import Credentials, OAuthBearer, SimpleKey
from relay.control.oauth import OAuthApp, TokenEndpoint, TokenStore
from relay.control.transport import Transport, UrllibTransport
from relay.settings.errors import ConfigError
from relay.settings.ultracart import ApiSettings


def token_endpoint(api: ApiSettings, transport: Transport | None = None) -> TokenEndpoint:
    if api.oauth is None:
        raise ConfigError(
            '[ultracart] auth is not "oauth"; set it and [ultracart.oauth] client_id',
            setting="ultracart.auth",
        )
    return TokenEndpoint(
        api.base_url,
        OAuthApp(api.oauth.client_id, api.oauth.client_secret),
        transport or UrllibTransport(),
        api.timeout_seconds,
    )


def credentials_for(api: ApiSettings, transport: Transport | None = None) -> Credentials:
    if api.auth == "oauth":
        assert api.oauth is not None  # api_settings guarantees it
        return OAuthBearer(TokenStore(api.oauth.token_file), token_endpoint(api, transport))
    if api.simple_key is None:
        raise ConfigError(
            "no UltraCart simple key: set $ULTRACART_SIMPLE_KEY, or [ultracart] simple_key_env "
            "or simple_key_file",
            setting="ultracart.simple_key_env",
        )
    return SimpleKey(api.simple_key)


def build_client(
    api: ApiSettings,
    *,
    on_wait: WaitNotice | None = None,
    transport: Transport | None = None,
    sleep: Callable[[float], None] | None = None,
    budget: CallBudget | None = None,
) -> UltraCartClient:
    transport = transport or UrllibTransport()
    return UltraCartClient(
        api.base_url,
        credentials_for(api, transport),
        transport=transport,
        timeout=api.timeout_seconds,
        retry=RetryPolicy(max_attempts=api.max_attempts, base_delay=api.retry_base_delay_seconds),
        page_size=api.page_size,
        on_wait=on_wait,
        sleep=sleep or time.sleep,
        budget=budget,
    )
