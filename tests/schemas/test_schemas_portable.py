"""Every shipped schema loads in two independent validators, and UltraCart's own SDK agrees.

Python's jsonschema and ajv (JavaScript, strict mode) share no code: a schema both compile,
and that accepts objects UltraCart's SDK builds and serialises with every field set and
nesting four levels deep (an order's customer profile holding the customer's orders among
them), is one a consumer in another language can load and rely on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from relay.consumers.schema_store import SchemaStore
from tests.schemas.support import run_ajv, sdk_objects
from tests.support.relay import REPO_ROOT

GENERATOR = REPO_ROOT / "tools" / "generate_schemas.py"
DEPTH = 4


def export(tmp_path: Path) -> dict[str, Path]:
    """Every event's schema as ``relay schemas export`` writes it, by event name."""
    store = SchemaStore.load()
    files = {}
    for entry in store.events():
        path = tmp_path / f"{entry.event}.json"
        path.write_text(json.dumps(store.schema(entry.event)))
        files[entry.event] = path
    return files


def sdk_built_objects() -> tuple[dict[str, str], dict[str, Any]]:
    store = SchemaStore.load()
    model_of = {e.event: e.model for e in store.events() if e.model not in store.missing_models}
    return model_of, sdk_objects(sorted(set(model_of.values())), DEPTH)


def nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((nesting(v) for v in value), default=0)
    return 0


def test_the_sdk_objects_are_as_deep_and_full_as_promised() -> None:
    _, built = sdk_built_objects()
    order, customer = built["Order"], built["Customer"]
    assert nesting(order) >= DEPTH + 1  # the root object plus four levels of nested models
    # The two recursive paths that once dangled: Customer.orders and Order.customer_profile.
    assert order["customer_profile"]["orders"][0]["order_id"]
    assert customer["orders"][0]["customer_profile"]["customer_profile_oid"]
    assert customer["quotes"][0]["order_id"]


def test_sdk_objects_validate_under_jsonschema() -> None:
    model_of, built = sdk_built_objects()
    store = SchemaStore.load()
    checked = set()
    for event, model in model_of.items():
        validator = Draft202012Validator(store.schema(event))
        errors = list(validator.iter_errors(built[model]))
        assert not errors, (
            f"{event}: {best_match(errors).message} at {best_match(errors).json_path}"
        )
        checked.add(model)
    assert len(checked) == len(built) == 8


def test_ajv_compiles_every_schema_in_strict_mode_and_accepts_the_sdk_objects(
    tmp_path: Path,
) -> None:
    files = export(tmp_path)
    model_of, built = sdk_built_objects()
    instances = tmp_path / "instances.json"
    instances.write_text(
        json.dumps({f"{event}.json": [built[model]] for event, model in model_of.items()})
    )
    summary = run_ajv(sorted(files.values()), instances)
    assert summary["errors"] == {}
    assert sorted(summary["compiled"]) == sorted(f"{e}.json" for e in files)
    assert summary["validated"] == len(model_of) == 40


def test_ajv_refuses_a_dangling_reference(tmp_path: Path) -> None:
    """The check has teeth: the fault issue 18 found (the root model missing from $defs)."""
    order = SchemaStore.load().schema("order_create")
    order["$defs"]["Customer"]["properties"]["orders"]["items"]["anyOf"][0] = {
        "$ref": "#/$defs/Order"
    }
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(order))
    summary = run_ajv([broken])
    assert summary["compiled"] == []
    assert "can't resolve reference #/$defs/Order" in summary["errors"]["broken.json"]


def test_committed_schemas_match_a_fresh_generation() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
