"""Settings for in-process tests: the ones every such test needs, and its own tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.settings import Settings

# The Basic pair in-process tests send (tests/support/relay.py's CREDENTIALS is the one the
# relay processes accept).
BASIC_PAIR = "ultracart:s3cret"
# The same, for Settings.load(env=...): the least a loaded configuration must have.
CREDENTIAL_ENV = {"RELAY_AUTH__BASIC_CREDENTIALS": BASIC_PAIR}


def settings_with(env: Mapping[str, str] | None = None, **tables: Mapping[str, Any]) -> Settings:
    """``Settings.from_mapping`` of ``tables`` with the Basic pair accepted (an ``auth``
    table given here is laid over it) and, unless a ``server`` table says otherwise, the
    metrics on the intake port, as an in-process app serves them."""
    raw: dict[str, Any] = {k: dict(v) for k, v in tables.items()}
    raw["auth"] = {"basic_credentials": [BASIC_PAIR], **raw.get("auth", {})}
    raw["server"] = {"admin_port": 0, **raw.get("server", {})}
    return Settings.from_mapping(raw, env=env)
