"""Where settings come from: a TOML file, then ``RELAY_...`` environment variables.

The environment wins over the file so that one image and one config file serve every
deployment, with per-environment values (bootstrap servers, secrets) injected as env vars.

Naming: ``RELAY_<SECTION>__<KEY>`` with ``__`` between levels, e.g.
``RELAY_KAFKA__BOOTSTRAP_SERVERS`` or ``RELAY_AUTH__SIGNATURE__SECRETS``. Under
``[kafka.librdkafka]`` the key is librdkafka's own option name, which uses dots, so there
``_`` becomes ``.``: ``RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM`` sets ``sasl.mechanism``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "RELAY_"
CONFIG_PATH_VAR = "RELAY_CONFIG"

# Tables whose keys are free-form names chosen by the user rather than settings of relay.
# Environment keys under them are mapped to the name as written in TOML.
_DOTTED_KEY_TABLES = {("kafka", "librdkafka")}


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Nest ``RELAY_A__B__C=value`` into ``{"a": {"b": {"c": "value"}}}`` (values stay text)."""
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_VAR:
            continue
        parts = name[len(ENV_PREFIX) :].split("__")
        if len(parts) < 2 or not all(parts):
            # RELAY_FOO without a section is not ours (RELAY_TEST_KAFKA and the like).
            continue
        path = [part.lower() for part in parts]
        for depth in range(1, len(path)):
            if tuple(path[:depth]) in _DOTTED_KEY_TABLES:
                path = [*path[:depth], ".".join(path[depth:]).replace("_", ".")]
                break
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name} conflicts with another one")
            node = child
        node[path[-1]] = _EnvText(value)
    return tree


class _EnvText(str):
    """Marks a value that came from the environment, so the typed loader may parse it.

    TOML values arrive already typed and must be of the right type; environment values
    are always text, and ``"8080"`` or ``"true"`` there are meant as a number or a flag.
    """

    __slots__ = ()


def is_env_text(value: object) -> bool:
    return isinstance(value, _EnvText)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged
