"""Generate relay's JSON Schemas (draft 2020-12) from UltraCart's official Python SDK.

A development tool, never imported by relay: ``make schemas`` runs it. The SDK
(``ultracart-rest-sdk`` on PyPI, openapi-generator output) carries every model's fields and
their types in ``openapi_types``; typing them by hand would drift from UltraCart.

The SDK goes into a throwaway venv in the cache outside the clone (tests/support/cache.py;
it is not a dependency of relay or of its dev extras); this script then runs itself again
with that venv's Python (``--walk``) to read the models, and writes one file per model plus
``index.json`` (event -> model) into relay/consumers/schemas/.

    python tools/generate_schemas.py [--sdk-version V] [--out DIR] [--check | --install-sdk]

Recursive models (an Order's customer_profile holds the customer's orders) refer to their
own document's root as ``#``: every ``$ref`` of a shipped schema resolves inside it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SDK_VERSION = "4.1.208"
DEFAULT_OUT = REPO / "relay" / "consumers" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The UltraCart object each catalog category's events carry (docs/ultracart.md section 1: "the
# REST object for that resource"); fulfillment events carry the order being fulfilled.
MODEL_BY_CATEGORY = {
    "auto_order": "AutoOrder",
    "chargeback": "ChargebackDispute",
    "checkout": "Cart",
    "customer": "Customer",
    "fulfillment": "Order",
    "item": "Item",
    "order": "Order",
    "storefront": "ScreenRecording",
    "user": "User",
    "workflow_task": "WorkflowTask",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk-version", default=SDK_VERSION)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with --out instead of writing; exit 1 on a difference",
    )
    parser.add_argument(
        "--install-sdk",
        action="store_true",
        help="only make the SDK venv (make tools does, for the schema tests) and print its python",
    )
    parser.add_argument("--walk", nargs="+", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.install_sdk:
        print(sdk_python(args.sdk_version))
        return 0
    if args.walk:
        json.dump(walk_models(args.walk), sys.stdout)
        return 0
    files = generate(args.sdk_version)
    if args.check:
        return check(files, args.out)
    write(files, args.out)
    print(f"{len(files) - 1} model schemas for {sdk_events(files)} events in {args.out}")
    return 0


def sdk_python(version: str) -> Path:
    """A venv with just the SDK (and its two dependencies), made once per version."""
    sys.path.insert(0, str(REPO))
    from tests.support.cache import cache_dir

    home = cache_dir() / "ultracart-sdk" / version
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if not stamp.exists():
        venv.create(home, with_pip=True, clear=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"ultracart-rest-sdk=={version}",
            ],
            check=True,
        )
        stamp.touch()
    return python


def generate(version: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from relay.events.catalog import EVENTS_BY_CATEGORY

    wanted = sorted(set(MODEL_BY_CATEGORY.values()))
    walked = json.loads(
        subprocess.run(
            [str(sdk_python(version)), __file__, "--walk", *wanted],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    files: dict[str, Any] = {}
    events: dict[str, Any] = {}
    for category, names in sorted(EVENTS_BY_CATEGORY.items()):
        model = MODEL_BY_CATEGORY[category]
        for name in names:
            events[name] = {"model": model, "category": category}
    for model in wanted:
        files[f"{model}.json"] = model_schema(model, walked, version)
    files["index.json"] = {
        "sdk": "ultracart-rest-sdk",
        "sdk_version": version,
        "generator": "tools/generate_schemas.py",
        "missing_models": sorted(m for m in wanted if m not in walked["models"]),
        "events": events,
    }
    return files


def model_schema(model: str, walked: dict[str, Any], version: str) -> dict[str, Any]:
    models = walked["models"]
    if model not in models:
        # Not in this SDK version (ChargebackDispute is absent from 4.x): an object, nothing
        # more, rather than fields typed by hand.
        return {
            "$schema": DIALECT,
            "title": model,
            "description": f"UltraCart {model}. ultracart-rest-sdk {version} has no {model} "
            "model, so no field is typed; any JSON object is valid.",
            "type": "object",
        }
    defs = {
        name: to_root(models[name], model)
        for name in sorted(reachable(model, models))
        if name != model
    }
    schema = {"$schema": DIALECT, **to_root(models[model], model)}
    schema["description"] = f"UltraCart {model}, from ultracart-rest-sdk {version}."
    if defs:
        schema["$defs"] = defs
    return schema


def to_root(node: Any, root: str) -> Any:
    """``node`` with every reference to ``root`` pointing at the document itself (``#``).

    The root model is the document, not one of its ``$defs``: a ``#/$defs/<root>`` would
    dangle, and validators refuse (or crash on) a schema with a dangling reference.
    """
    if isinstance(node, dict):
        if node.get("$ref") == f"#/$defs/{root}":
            return {**node, "$ref": "#"}
        return {key: to_root(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [to_root(item, root) for item in node]
    return node


def reachable(root: str, models: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(refs(models[name]))
    return seen


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[1])
            else:
                found.extend(refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def check(files: dict[str, Any], out: Path) -> int:
    on_disk = {p.name for p in out.glob("*.json")}
    differ = sorted(
        name
        for name, doc in files.items()
        if name not in on_disk or json.loads((out / name).read_text()) != doc
    )
    extra = sorted(on_disk - set(files))
    for name in differ:
        print(f"differs or missing: {name}")
    for name in extra:
        print(f"not generated: {name}")
    return 1 if differ or extra else 0


def write(files: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in out.glob("*.json")) - set(files):
        (out / stale).unlink()
    for name, doc in files.items():
        # Sorted keys and one field per line: a regenerated schema diffs cleanly.
        (out / name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def sdk_events(files: dict[str, Any]) -> int:
    return len(files["index.json"]["events"])


# Below: runs inside the SDK's venv (--walk), with only the standard library and the SDK.


def walk_models(roots: list[str]) -> dict[str, Any]:
    """Every model reachable from ``roots`` as a JSON Schema object, by class name."""
    import ultracart

    models: dict[str, Any] = {}
    todo = [cls for cls in map(sdk_model, roots) if cls is not None]
    while todo:
        cls = todo.pop()
        if cls.__name__ in models:
            continue
        schema, nested = model_to_schema(cls)
        models[cls.__name__] = schema
        todo.extend(nested)
    return {"sdk_version": ultracart.__version__, "models": models}


def sdk_model(name: str) -> Any:
    # Roots only: nested models are reached through the classes in openapi_types.
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    try:
        module = importlib.import_module(f"ultracart.model.{snake}")
    except ModuleNotFoundError:
        return None
    return getattr(module, name)


def model_to_schema(cls: Any) -> tuple[dict[str, Any], list[Any]]:
    nested: list[Any] = []
    properties: dict[str, Any] = {}
    for attribute, types in cls.openapi_types.items():
        json_name = cls.attribute_map.get(attribute, attribute)
        prop = type_schema(types, nested)
        allowed = cls.allowed_values.get((attribute,))
        if allowed:
            # Documented, not enforced: UltraCart adds values, as it adds fields.
            prop["description"] = "UltraCart's values: " + ", ".join(
                repr(v) for v in allowed.values()
            )
        properties[json_name] = prop
    schema: dict[str, Any] = {
        "title": cls.__name__,
        "type": ["object", "null"] if cls._nullable else "object",
        "properties": properties,
        # Unknown members are allowed: UltraCart adds fields over time.
        "additionalProperties": True,
    }
    required = required_of(cls)
    if required:
        schema["required"] = [cls.attribute_map.get(a, a) for a in required]
    return schema, nested


def required_of(cls: Any) -> list[str]:
    """Required fields: openapi-generator makes them positional parameters."""
    signature = inspect.signature(cls._from_openapi_data, follow_wrapped=True)
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "cls"
    ]


def type_schema(types: tuple[Any, ...], nested: list[Any]) -> dict[str, Any]:
    from datetime import date, datetime

    from ultracart.model_utils import OpenApiModel, none_type

    if all(t in types for t in (bool, date, datetime, dict, float, int, list, str)):
        return {}  # openapi-generator's "any type"
    options: list[dict[str, Any]] = []
    for t in types:
        if isinstance(t, list):
            options.append({"type": "array", "items": type_schema(tuple(t), nested)})
        elif isinstance(t, dict):
            ((_, value),) = t.items()
            options.append({"type": "object", "additionalProperties": type_schema(value, nested)})
        elif isinstance(t, type) and issubclass(t, OpenApiModel):
            nested.append(t)
            # A nested object may be null (the one leniency beyond the SDK's types): the
            # SDK-shaped samples carry null in place of objects past their depth, and a
            # consumer walking an expanded object has to expect a missing branch anyway.
            options.append({"anyOf": [{"$ref": f"#/$defs/{t.__name__}"}, {"type": "null"}]})
        elif t is none_type:
            options.append({"type": "null"})
        else:
            options.append(primitive(t, date, datetime))
    if len(options) == 1:
        return options[0]
    return {"anyOf": options}


def primitive(t: Any, date: type, datetime: type) -> dict[str, Any]:
    if t is str:
        return {"type": "string"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    if t is datetime:
        return {"type": "string", "format": "date-time"}
    if t is date:
        return {"type": "string", "format": "date"}
    if t is dict:
        return {"type": "object"}
    if t is list:
        return {"type": "array"}
    raise ValueError(f"unmapped SDK type {t!r}")


if __name__ == "__main__":
    sys.exit(main())
