"""The one configuration error type, for relay.toml, webhooks.toml and the environment."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file key or the environment
    variable, and why. It never contains a secret's value."""
