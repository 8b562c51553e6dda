"""webhooks.toml's schema: the webhook relay wants UltraCart to have, and how to change it.

Every key can be overridden by ``WEBHOOKS_<SECTION>__<KEY>`` (nested tables add ``__``),
e.g. ``WEBHOOKS_WEBHOOK__URL`` or ``WEBHOOKS_ULTRACART__API_BASE_URL``. The prefix is not
``RELAY_`` on purpose: relay's own settings take every ``RELAY_<X>__<Y>`` variable and reject
sections they do not know, so one environment could not serve both. The events array
cannot be set from the environment. Checks that need UltraCart's vocabulary (event names)
belong to ``relay.control.desired``.
"""

from __future__ import annotations

import msgspec

from relay.settings.errors import ConfigError
from relay.settings.loader import Table
from relay.settings.ultracart import UltraCartApi


class EventTable(Table, frozen=True):
    name: str = ""
    # A list, or UltraCart's own comma-separated form.
    expansion: tuple[str, ...] | str = ()
    event_ruler: str = ""


class BasicTable(Table, frozen=True):
    """The Basic pair UltraCart should send, as a variable holding "user:password" or a file."""

    credentials_env: str = ""
    credentials_file: str = ""

    def __post_init__(self) -> None:
        if not self.credentials_env and not self.credentials_file:
            raise ConfigError(
                'webhook.basic: set credentials_env (a variable holding "user:password") '
                "or credentials_file",
                setting="webhook.basic.credentials_env",
            )


class WebhookTable(Table, frozen=True):
    url: str = ""
    maximum_events: int | None = None
    maximum_size: int | None = None
    compress_events: bool = False
    # Empty: the version relay's client speaks (relay.control.models.API_VERSION).
    api_version: str = ""
    basic: BasicTable | None = None
    events: tuple[EventTable, ...] = ()

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ConfigError(
                "webhook.url must be the http(s) URL of relay's intake", setting="webhook.url"
            )
        for key in ("maximum_events", "maximum_size"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(
                    f"webhook.{key} must be a positive integer", setting=f"webhook.{key}"
                )
        if not self.events:
            raise ConfigError(
                "webhook needs at least one [[webhook.events]] entry", setting="webhook.events"
            )


class ControlTable(Table, frozen=True):
    state_file: str = "var/control-state.json"
    # relay's own credentials file, when this host can write it (rotate-credentials).
    relay_credentials_file: str = ""
    # relay re-reads its credentials file every 2 s by default; wait that twice plus margin
    # before telling UltraCart to use a pair relay may not accept yet.
    reload_wait_seconds: float = 5.0
    # UltraCart gives a delivery 30 s to be answered; one sent with the old pair just before
    # the update may arrive that late, so the old pair stays accepted that long.
    drain_seconds: float = 35.0


class WebhooksFile(Table, frozen=True):
    webhook: WebhookTable
    ultracart: UltraCartApi = msgspec.field(default_factory=UltraCartApi)
    control: ControlTable = msgspec.field(default_factory=ControlTable)
