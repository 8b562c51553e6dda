"""One loader for every configuration document: TOML first, then the environment, then
``msgspec.convert`` into frozen structs that forbid unknown fields.

Environment naming: ``<PREFIX><SECTION>__<KEY>``, ``__`` between levels, e.g.
``RELAY_KAFKA__BOOTSTRAP_SERVERS`` or ``WEBHOOKS_WEBHOOK__URL``. Under a free-form table
(``[keys]``, ``[topics.events]``) the rest of the name is the table key. Under a table marked
``DOTTED_KEYS`` (``[kafka.librdkafka]``) the key is librdkafka's own dotted option name, so
there ``_`` becomes ``.``: ``RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM`` sets ``sasl.mechanism``.
A name with no ``__`` (``RELAY_CONFIG``, ``RELAY_TEST_KAFKA``) is not an override.

Every error names where the value came from: the variable, or the key and the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from relay.secrets import Secret
from relay.settings.coerce import coerce, unwrap
from relay.settings.errors import ConfigError

T = TypeVar("T")

class Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A table of a configuration document (relay.toml, webhooks.toml): immutable, and no
    key it does not declare."""


# Annotated metadata for a free-form table whose keys are dotted names (librdkafka options).
DOTTED_KEYS = msgspec.Meta(extra={"env_keys": "dotted"})


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_document(
    schema: type[T],
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    prefix: str,
    file: str | None = None,
) -> T:
    """``raw`` (a parsed TOML file, or a mapping built in code) with ``prefix`` variables from
    ``env`` laid over it, converted into ``schema``."""
    overrides, origins = env_layer(schema, env, prefix)
    doc = _merge(raw, overrides)
    try:
        return msgspec.convert(doc, schema, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise _translate(str(error), origins, file) from None


def env_layer(
    schema: type[Any], env: Mapping[str, str], prefix: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The overrides in ``env`` as a nested document of typed values, and for each dotted
    key the variable that set it."""
    root = mi.type_info(schema)
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix) :].split("__")
        if len(parts) < 2 or not all(parts):
            continue
        path, node = _resolve(name, [p.lower() for p in parts], root)
        value = coerce(env[name], node, name)
        table = tree
        for part in path[:-1]:
            child = table.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name} conflicts with another environment variable")
            table = child
        table[path[-1]] = value
        origins[".".join(path)] = name
    return tree, origins


def _resolve(var: str, parts: list[str], root: mi.Type) -> tuple[list[str], mi.Type]:
    """The key path and target type that ``parts`` name in the schema."""
    node = root
    path: list[str] = []
    dotted = False
    index = 0
    while index < len(parts):
        if isinstance(node, mi.Metadata):
            dotted = dotted or (node.extra or {}).get("env_keys") == "dotted"
        node = _table_of(unwrap(node))
        if isinstance(node, mi.StructType):
            field = next((f for f in node.fields if f.encode_name == parts[index]), None)
            if field is None:
                raise ConfigError(f"{var}: unknown setting {'.'.join(path + parts[index:])}")
            path.append(field.encode_name)
            node = field.type
            dotted = False
            index += 1
        elif isinstance(node, mi.DictType):
            if dotted:
                path.append(".".join(parts[index:]).replace("_", "."))
                index = len(parts)
            else:
                path.append(parts[index])
                index += 1
            node = node.value_type
        else:
            raise ConfigError(f"{var}: unknown setting {'.'.join(path + parts[index:])}")
    return path, node


def _table_of(node: mi.Type) -> mi.Type:
    """An optional table (``Basic | None``) is walked as the table."""
    if isinstance(node, mi.UnionType):
        tables = [t for t in node.types if isinstance(unwrap(t), mi.StructType | mi.DictType)]
        if len(tables) == 1:
            return unwrap(tables[0])
    return node


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        # The value is not quoted: it may be the secret itself, mistyped.
        raise ValueError("must be a string")
    raise NotImplementedError(kind)


_LOCATED = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<key>[^`]*)`$")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`$")
_KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "array": "a list",
    "object": "a table",
    "null": "empty",
}


def _kind(names: str) -> str:
    return " or ".join(_KINDS.get(name.strip(), name.strip()) for name in names.split("|"))


def _translate(text: str, origins: Mapping[str, str], file: str | None) -> ConfigError:
    """msgspec's ``<message> - at `$.server.port``` as a message that names the source."""
    located = _LOCATED.match(text)
    assert located is not None  # the pattern matches any text
    message = located["message"]
    where = (located["path"] or "").lstrip(".").replace("[...]", "")
    in_file = f" in {file}" if file else ""
    if unknown := _UNKNOWN.match(message):
        key = ".".join(filter(None, (where, unknown["key"])))
        return ConfigError(f"unknown setting {key}{in_file}")
    if missing := _MISSING.match(message):
        key = ".".join(filter(None, (where, missing["key"])))
        return ConfigError(f"{key}{in_file} is required")
    if expected := _EXPECTED.match(message):
        said = f"{where}{in_file} must be {_kind(expected['want'])}, not {_kind(expected['got'])}"
        var = origins.get(where)
        return ConfigError(f"{var}: {said}" if var else said)
    if message[:1].isupper():
        # Any other msgspec complaint ("Invalid enum value 'x'", "Expected `int` >= 1").
        said = f"{where}{in_file}: {message[0].lower()}{message[1:]}"
        var = origins.get(where)
        return ConfigError(f"{var}: {said}" if var else said)
    # A check of the schema's own (__post_init__): its message names the key already, or is
    # said of the table it ran in.
    head = where.split(".")[0].split("[")[0]
    said = message if not where or message.startswith(head) else f"{where} {message}"
    mentioned = [key for key in origins if key in said or key == where]
    if mentioned:
        return ConfigError(f"{origins[max(mentioned, key=len)]}: {said}")
    return ConfigError(f"{said} (in {file})" if file else said)
