"""The shipped JSON Schemas: one per catalogued event, matching the samples, and strict enough
that a wrongly typed field fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from relay.cli.consumers import register
from relay.consumers.schema_store import SchemaStore
from relay.events.catalog import KNOWN_EVENTS
from tests.support.relay import REPO_ROOT
from tests.support.schemas import schema_errors

EMULATOR_SAMPLES = REPO_ROOT / "relay" / "emulator" / "samples"
SHARED_SAMPLES = REPO_ROOT.parent / "shared" / "ultracart" / "samples"
GENERATOR = REPO_ROOT / "tools" / "generate_schemas.py"


def test_every_catalogued_event_has_a_valid_schema() -> None:
    store = SchemaStore.load()
    assert {e.event for e in store.events()} == KNOWN_EVENTS
    checked_models: set[str] = set()
    for entry in store.events():
        schema = store.schema(entry.event)
        assert schema["$id"] == f"urn:relay:schema:ultracart:{entry.event}:{store.sdk_version}"
        assert schema["type"] == "object"
        if entry.model not in checked_models:  # events of one model share its document
            Draft202012Validator.check_schema(schema)
            checked_models.add(entry.model)
    # ChargebackDispute is not in the SDK: an untyped object, said so in the index.
    assert store.missing_models == ("ChargebackDispute",)


def test_models_type_their_fields_and_allow_unknown_ones() -> None:
    store = SchemaStore.load()
    order = store.schema("order_create")
    assert order["properties"]["order_id"] == {"type": "string"}
    assert order["additionalProperties"] is True
    assert "OrderItem" in order["$defs"]
    assert not schema_errors("order_create", {"order_id": "A", "field_from_2030": [1, 2]})


def _events(path: Path) -> list[tuple[str, Any]]:
    document = json.loads(path.read_bytes())
    return [next(iter(event.items())) for event in document["events"]]


def test_emulator_samples_match() -> None:
    samples = {"order.json": "order_create", "item.json": "item_update"}
    assert sorted(p.name for p in EMULATOR_SAMPLES.glob("*.json")) == sorted(samples)
    for name, event in samples.items():
        assert schema_errors(event, json.loads((EMULATOR_SAMPLES / name).read_bytes())) == []


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="../shared/ultracart/samples absent")
def test_shared_ultracart_samples_match() -> None:
    checked = 0
    for path in sorted(SHARED_SAMPLES.glob("*.json")):
        for event, value in _events(path):
            assert schema_errors(event, value) == [], path.name
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    ("event", "value", "where"),
    [
        ("order_create", {"order_id": 9104420}, "order_id"),
        ("order_create", {"order_id": "A", "items": [{"quantity": "two"}]}, "items/0/quantity"),
        ("order_create", {"order_id": "A", "billing": {"first_name": 7}}, "billing/first_name"),
        ("item_update", {"merchant_item_oid": "12"}, "merchant_item_oid"),
        ("customer_update", {"customer_profile_oid": 5, "email": False}, "email"),
        ("auto_order_create", {"auto_order_oid": 1, "items": {}}, "items"),
    ],
)
def test_a_wrongly_typed_field_fails(event: str, value: Any, where: str) -> None:
    errors = schema_errors(event, value)
    assert len(errors) == 1
    assert errors[0].startswith(where + ":")


def test_the_emulator_sample_with_one_field_retyped_fails() -> None:
    order = json.loads((EMULATOR_SAMPLES / "order.json").read_bytes())
    order["summary"]["total"]["value"] = "49.95"
    assert [e.split(":")[0] for e in schema_errors("order_create", order)] == [
        "summary/total/value"
    ]


def test_schemas_cli_lists_shows_and_exports(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schemas", "export", str(tmp_path)])
    assert args.handler(args) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(KNOWN_EVENTS)
    exported = json.loads((tmp_path / "order_ship.json").read_text())
    assert exported == SchemaStore.load().schema("order_ship")


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def test_every_reference_resolves_inside_its_schema() -> None:
    """Self-contained: each $ref is the root (#) or one of the document's own $defs.

    (ajv and the SDK's objects check the same in tests/schemas, which needs make tools.)
    """
    store = SchemaStore.load()
    roots = 0
    for entry in store.events():
        schema = store.schema(entry.event)
        defs = set(schema.get("$defs", {}))
        for ref in _references(schema):
            roots += ref == "#"
            assert ref == "#" or ref.removeprefix("#/$defs/") in defs, (entry.event, ref)
        # The root model is the document; it is never one of its own $defs.
        assert entry.model not in defs, entry.event
    # Order (orders, quotes and customer_profile) and Customer (orders' customer_profile)
    # are recursive: their documents point back at their own root.
    assert roots > 0
