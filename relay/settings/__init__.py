"""relay's configuration: schemas for relay.toml and webhooks.toml, and the one loader.

``Settings.load()`` is what the rest of relay uses; see ``loader`` for the environment
naming and ``coerce`` for how environment text is read.
"""

from relay.settings.errors import ConfigError
from relay.settings.loader import Table
from relay.settings.model import (
    CONFIG_PATH_VAR,
    ENV_PREFIX,
    FSYNC_POLICIES,
    AuthSettings,
    CloudEventsSettings,
    IntakeSettings,
    KafkaSettings,
    ServerSettings,
    Settings,
    SignatureSettings,
    SpoolSettings,
    TopicPattern,
    TopicSettings,
)
from relay.settings.ultracart import (
    ApiSettings,
    OAuthSettings,
    StatusPollSettings,
    UltraCartApi,
    UltraCartPoller,
)

__all__ = [
    "CONFIG_PATH_VAR",
    "ENV_PREFIX",
    "FSYNC_POLICIES",
    "ApiSettings",
    "AuthSettings",
    "CloudEventsSettings",
    "ConfigError",
    "IntakeSettings",
    "KafkaSettings",
    "OAuthSettings",
    "ServerSettings",
    "Settings",
    "SignatureSettings",
    "SpoolSettings",
    "StatusPollSettings",
    "Table",
    "TopicPattern",
    "TopicSettings",
    "UltraCartApi",
    "UltraCartPoller",
]
