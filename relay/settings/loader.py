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
        raise ConfigError(f"config file not found: {path}", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", file=str(path)) from None


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
    misplaced = _misplaced(mi.type_info(schema), doc, "")
    if misplaced is not None:
        raise misplaced.located(file=file)
    try:
        return msgspec.convert(doc, schema, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise _translate(error, origins, file, schema) from None


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
        try:
            value = coerce(env[name], node, ".".join(path))
        except ConfigError as exc:
            raise exc.located(env=name) from None
        table = tree
        for part in path[:-1]:
            child = table.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"{'.'.join(path)} conflicts with another environment variable",
                    setting=".".join(path),
                    env=name,
                )
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
                raise _unknown(var, path + parts[index:])
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
            raise _unknown(var, path + parts[index:])
    return path, node


def _unknown(var: str, path: list[str]) -> ConfigError:
    key = ".".join(path)
    return ConfigError(f"unknown setting {key}", setting=key, env=var)


def _table_of(node: mi.Type) -> mi.Type:
    """An optional table (``Basic | None``) is walked as the table."""
    if isinstance(node, mi.UnionType):
        tables = [t for t in node.types if isinstance(unwrap(t), mi.StructType | mi.DictType)]
        if len(tables) == 1:
            return unwrap(tables[0])
    return node


def _misplaced(node: mi.Type, value: Any, path: str) -> ConfigError | None:
    """The first key in ``value`` (a document or part of one, at ``path``) that its table
    does not declare, or the first required key it lacks, found by walking the schema:
    msgspec refuses both too, but says where only in its message's text."""
    node = _table_of(unwrap(node))
    children: list[tuple[mi.Type, Any, str]] = []
    if isinstance(node, mi.StructType) and isinstance(value, Mapping):
        fields = {f.encode_name: f for f in node.fields}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in fields:
                return ConfigError(f"unknown setting {where}", setting=where)
            children.append((fields[key].type, item, where))
        for name, field in fields.items():
            where = f"{path}.{name}" if path else name
            if field.required and name not in value:
                return ConfigError(f"{where} is required", setting=where)
    elif isinstance(node, mi.DictType) and isinstance(value, Mapping):
        for key, item in value.items():
            children.append((node.value_type, item, f"{path}.{key}" if path else str(key)))
    elif isinstance(node, mi.CollectionType) and isinstance(value, list | tuple):
        children = [(node.item_type, item, f"{path}[{n}]") for n, item in enumerate(value)]
    for child, item, where in children:
        if (found := _misplaced(child, item, where)) is not None:
            return found
    return None


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
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`$")
_ENUM = re.compile(r"^Invalid enum value (?P<got>.*)$")
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


def _choices(schema: type[Any], where: str) -> str | None:
    """The values a Literal setting allows, as a phrase ("'json' or 'text'")."""
    try:
        _, node = _resolve(where, where.split("."), mi.type_info(schema))
    except ConfigError:
        return None
    node = unwrap(node)
    if not isinstance(node, mi.LiteralType):
        return None
    return " or ".join(repr(value) for value in node.values)


def _translate(
    error: msgspec.ValidationError,
    origins: Mapping[str, str],
    file: str | None,
    schema: type[Any],
) -> ConfigError:
    """msgspec's error as a ConfigError that names the setting and its source."""
    located = _LOCATED.match(str(error))
    assert located is not None  # the pattern matches any text
    where = (located["path"] or "").lstrip(".").replace("[...]", "")
    cause = error.__cause__
    if isinstance(cause, ConfigError):
        # A table's own check (__post_init__) names its setting itself.
        setting = cause.setting or where
        return cause.located(env=origins.get(setting), file=file, setting=setting)
    # msgspec's type and value complaints carry the place only in their text ("... - at
    # `$.a.b`"): it exposes no field for it, so that text is read here, once, and nowhere
    # else. (Unknown and missing keys were found by walking the schema, above.)
    message = located["message"]
    if expected := _EXPECTED.match(message):
        said = f"{where} must be {_kind(expected['want'])}, not {_kind(expected['got'])}"
    elif (enum := _ENUM.match(message)) and (choices := _choices(schema, where)):
        said = f"{where} must be {choices}, not {enum['got']}"
    elif message[:1].isupper():
        # Any other msgspec complaint ("Invalid enum value 'x'", "Expected `int` >= 1").
        said = f"{where}: {message[0].lower()}{message[1:]}"
    else:
        # A plain ValueError from a table's check, said of the table it ran in.
        head = where.split(".")[0].split("[")[0]
        said = message if not where or message.startswith(head) else f"{where} {message}"
    return ConfigError(said, setting=where, env=origins.get(where), file=file)
