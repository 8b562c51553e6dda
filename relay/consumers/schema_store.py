"""The JSON Schemas shipped with relay: one per UltraCart model, and which event carries which.

The files under ``schemas/`` are generated from UltraCart's Python SDK by
tools/generate_schemas.py (``make schemas``) and committed; relay only reads them. A
record's ``ce_dataschema`` header names the event's schema (relay/events/dataschema.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from relay.events.dataschema import DATASCHEMA_PREFIX, dataschema_uri

__all__ = ["DATASCHEMA_PREFIX", "EventSchema", "SchemaStore", "dataschema_uri"]

_PACKAGE = "relay.consumers"
_FOLDER = "schemas"


@dataclass(frozen=True, slots=True)
class EventSchema:
    event: str
    category: str
    model: str


class SchemaStore:
    """Read-only view of the shipped schemas; ``load()`` reads the index once."""

    def __init__(self, index: dict[str, Any]) -> None:
        self.sdk_version: str = index["sdk_version"]
        self.missing_models: tuple[str, ...] = tuple(index.get("missing_models", ()))
        self._events = {
            name: EventSchema(name, entry["category"], entry["model"])
            for name, entry in index["events"].items()
        }

    @classmethod
    def load(cls) -> SchemaStore:
        return cls(_read_json("index.json"))

    def events(self) -> list[EventSchema]:
        return [self._events[name] for name in sorted(self._events)]

    def get(self, event: str) -> EventSchema | None:
        return self._events.get(event)

    def uri(self, event: str) -> str:
        return dataschema_uri(event, self.sdk_version)

    def schema(self, event: str) -> dict[str, Any]:
        """The event's schema: its model's document, with the event's ``$id`` and title."""
        entry = self._events.get(event)
        if entry is None:
            raise KeyError(event)
        document = _read_json(f"{entry.model}.json")
        described = {
            "$schema": document.pop("$schema"),
            "$id": self.uri(event),
            "title": f"{event} ({entry.model})",
        }
        document.pop("title", None)
        return {**described, **document}


def _read_json(name: str) -> dict[str, Any]:
    text = resources.files(_PACKAGE).joinpath(_FOLDER, name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
