"""Objects built from UltraCart's own SDK models, every field set, as JSON on stdout.

Runs inside the SDK venv that ``tools/generate_schemas.py --install-sdk`` makes, with only the
standard library and the SDK (``ultracart-rest-sdk``): the schema tests feed its output to
relay's shipped JSON Schemas, so an object UltraCart's own code can build and serialise is one
the schemas must accept. Every field of every model is set, nested models down to ``--depth``
levels (deeper ones are null, which the schemas allow for nested objects), lists hold one
element. The SDK builds each object through its own type checks and enum and length
validations, and serialises it with ``ApiClient.sanitize_for_serialization``.

    <sdk python> tools/sdk_objects.py --depth 4 Order Customer ...

Output: ``{"Order": {...}, "Customer": {...}}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from datetime import UTC, date, datetime
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=4, help="levels of nested models to fill")
    parser.add_argument("models", nargs="+", help="SDK model class names")
    args = parser.parse_args()
    from ultracart.api_client import ApiClient

    client = ApiClient()
    built = {}
    for name in args.models:
        model = _model_class(name)
        built[name] = client.sanitize_for_serialization(Builder(args.depth).build(model, 0))
    json.dump(built, sys.stdout)
    return 0


def _model_class(name: str) -> Any:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return getattr(importlib.import_module(f"ultracart.model.{snake}"), name)


# A nested model below the depth asked for: the field is left out.
_TOO_DEEP = object()


class Builder:
    """Fills every attribute of a model from its ``openapi_types``, down to ``depth``."""

    def __init__(self, depth: int) -> None:
        self._depth = depth

    def build(self, cls: Any, level: int) -> Any:
        values = {}
        for attribute, types in cls.openapi_types.items():
            value = self._value(cls, attribute, types, level)
            if value is not _TOO_DEEP:
                values[attribute] = value
        # Required fields are positional in openapi-generator's models; keywords work too.
        return cls(**values)

    def _value(self, cls: Any, attribute: str, types: tuple[Any, ...], level: int) -> Any:
        allowed = cls.allowed_values.get((attribute,))
        if allowed:
            # Enums are checked by the SDK: one of UltraCart's own values.
            return next(iter(allowed.values()))
        limits = cls.validations.get((attribute,), {})
        return self._of_type(types, level, attribute, limits)

    def _of_type(
        self, types: tuple[Any, ...], level: int, name: str, limits: dict[str, Any]
    ) -> Any:
        from ultracart.model_utils import OpenApiModel, none_type

        chosen = next((t for t in types if t is not none_type), none_type)
        if isinstance(chosen, list):
            item = self._of_type(tuple(chosen), level, name, limits)
            return [] if item is _TOO_DEEP else [item]
        if isinstance(chosen, dict):
            ((_, value_types),) = chosen.items()
            item = self._of_type(value_types, level, name, limits)
            return {} if item is _TOO_DEEP else {"key": item}
        if isinstance(chosen, type) and issubclass(chosen, OpenApiModel):
            if level >= self._depth:
                return _TOO_DEEP
            return self.build(chosen, level + 1)
        return _primitive(chosen, name, limits)


def _primitive(t: Any, name: str, limits: dict[str, Any]) -> Any:
    if t is str:
        text = f"{name}-value"
        return text[: limits.get("max_length", len(text))]
    if t is bool:
        return True
    if t is int:
        return int(limits.get("inclusive_minimum", 7))
    if t is float:
        return float(limits.get("inclusive_minimum", 1.5))
    if t is datetime:
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    if t is date:
        return date(2026, 1, 2)
    if t is dict:
        return {"any": "object"}
    if t is list:
        return ["any"]
    return None


if __name__ == "__main__":
    sys.exit(main())
