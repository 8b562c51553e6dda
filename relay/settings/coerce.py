"""Environment text read by the type of the setting it overrides.

TOML values arrive typed and are checked as they are; an environment variable is always
text, so ``"8080"`` or ``"no"`` there is read by the target field's type, found by walking
the schema with ``msgspec.inspect``. One set of rules for every document:

- booleans: exactly true/false/yes/no/on/off/1/0, any case; anything else is refused;
- integers and numbers: Python's ``int`` / ``float`` reading of the text;
- lists and tuples: comma-separated, blanks around items dropped, each item read by type;
- ``X | None``: an empty value means None, else the text is read as ``X``;
- literals, strings and secrets: the text itself (msgspec and the decode hook check them).
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from relay.settings.errors import ConfigError

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
BOOL_RULE = "must be one of true/false/yes/no/on/off/1/0"


def unwrap(node: mi.Type) -> mi.Type:
    """The type under ``Annotated[...]`` metadata."""
    while isinstance(node, mi.Metadata):
        node = node.type
    return node


def is_secret(node: mi.Type) -> bool:
    node = unwrap(node)
    if isinstance(node, mi.CustomType):
        return True
    if isinstance(node, mi.UnionType):
        return any(is_secret(t) for t in node.types)
    if isinstance(node, mi.CollectionType):
        return is_secret(node.item_type)
    return False


def coerce(text: str, node: mi.Type, setting: str) -> Any:
    """``text`` as a value of ``node``'s type; errors name ``setting`` and never quote a secret."""
    node = unwrap(node)
    shown = "" if is_secret(node) else f", got {text!r}"
    if isinstance(node, mi.BoolType):
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{setting} {BOOL_RULE}{shown}", setting=setting)
    if isinstance(node, mi.IntType):
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(f"{setting} must be an integer{shown}", setting=setting) from None
    if isinstance(node, mi.FloatType):
        try:
            return float(text.strip())
        except ValueError:
            raise ConfigError(f"{setting} must be a number{shown}", setting=setting) from None
    if isinstance(node, mi.UnionType):
        return _union(text, node, setting)
    if isinstance(node, mi.CollectionType):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        return [coerce(part, node.item_type, setting) for part in parts]
    if isinstance(node, mi.StructType | mi.DictType | mi.TupleType):
        raise ConfigError(
            f"{setting} is a table or fixed list; set its keys instead", setting=setting
        )
    # str, Literal, Secret and Any: the text as written.
    return text


def _union(text: str, node: mi.UnionType, setting: str) -> Any:
    others = [t for t in node.types if not isinstance(unwrap(t), mi.NoneType)]
    if len(others) < len(node.types) and not text.strip():
        return None
    if len(others) == 1:
        return coerce(text, others[0], setting)
    # A scalar union such as librdkafka's option values: text is one of its members, and
    # librdkafka reads its options from text anyway.
    return text
