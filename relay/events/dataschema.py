"""The ``ce_dataschema`` attribute: which shipped JSON Schema describes a record's value.

The schemas themselves are package data of relay.consumers (generated from UltraCart's SDK
by tools/generate_schemas.py); records only need their names, which depend on the event
and on the SDK version the schemas were generated from. A unit test keeps this version
equal to the shipped index's.
"""

from __future__ import annotations

from typing import Final

from relay.events.catalog import KNOWN_EVENTS

SCHEMAS_SDK_VERSION: Final = "4.1.208"
DATASCHEMA_PREFIX: Final = "urn:relay:schema:ultracart:"


def dataschema_uri(event: str, sdk_version: str = SCHEMAS_SDK_VERSION) -> str:
    """``urn:relay:schema:ultracart:<event>:<sdk version>``: a name, not a location.

    A URN rather than an https URL because relay has no schema registry to point at;
    ``relay schemas show EVENT`` prints the document with this ``$id``.
    """
    return f"{DATASCHEMA_PREFIX}{event}:{sdk_version}"


def dataschema_for(event: str) -> str | None:
    """The schema URI of a catalogued event; ``None`` for names relay has no schema for."""
    return dataschema_uri(event) if event in KNOWN_EVENTS else None
