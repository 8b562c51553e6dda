"""Every record the tests read back is checked against relay's shipped JSON Schemas.

``consume_all`` calls :func:`check_records`, so each integration, fault and end-to-end test
that asserts on Kafka's contents also asserts that UltraCart-typed values match the schema
their event's ``ce_dataschema`` names (or, for records without the header, their ``ce_type``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from relay.consumers.schema_store import DATASCHEMA_PREFIX, SchemaStore

TYPE_PREFIX = "com.ultracart.webhook."


class _Record(Protocol):
    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Mapping[str, bytes]: ...


@functools.cache
def store() -> SchemaStore:
    return SchemaStore.load()


@functools.cache
def validator(event: str) -> Draft202012Validator:
    # Checked against the metaschema once per model in tests/unit, not here: that takes
    # about half a second per schema.
    return Draft202012Validator(store().schema(event))


def schema_errors(event: str, value: Any) -> list[str]:
    """Each violation as ``path: message``; empty when ``value`` matches."""
    found = []
    for error in validator(event).iter_errors(value):
        # A nested object is "this model or null": name the field inside it that is wrong,
        # not the whole object.
        error = best_match([error])
        found.append(f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
    return found


def event_of(headers: Mapping[str, bytes]) -> str | None:
    """The catalogued event a record's headers describe, if any."""
    dataschema = headers.get("ce_dataschema", b"").decode()
    if dataschema.startswith(DATASCHEMA_PREFIX):
        event, _, version = dataschema[len(DATASCHEMA_PREFIX) :].rpartition(":")
        assert version == store().sdk_version, f"{dataschema}: not the shipped schemas' version"
        return event
    ce_type = headers.get("ce_type", b"").decode()
    event = ce_type.removeprefix(TYPE_PREFIX)
    return event if ce_type.startswith(TYPE_PREFIX) and store().get(event) else None


def check_records(records: Iterable[_Record]) -> int:
    """Assert every UltraCart event record's value matches its schema; return how many."""
    checked = 0
    for record in records:
        event = event_of(record.headers)
        if event is None or record.value is None:
            continue
        errors = schema_errors(event, json.loads(record.value))
        assert not errors, f"{event} record does not match its schema: {errors[:5]}"
        checked += 1
    return checked
