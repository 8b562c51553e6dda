"""Read a few top-level members of a JSON object without decoding the rest of it.

A record needs its key (an identity field such as ``order_id``) and the merchant id, not
the whole object: relay forwards the object's bytes untouched. msgspec decodes into a
struct holding just the wanted members and skips everything else in C.
"""

from __future__ import annotations

from typing import Any

import msgspec


class FieldReader:
    """One decoder per set of wanted members; the sets come from configuration, so few."""

    def __init__(self) -> None:
        self._decoders: dict[tuple[str, ...], msgspec.json.Decoder[Any]] = {}

    def read(self, names: tuple[str, ...], raw: bytes) -> tuple[Any, ...]:
        """The members' values in the order of ``names``; ``None`` for an absent member."""
        decoder = self._decoders.get(names)
        if decoder is None:
            decoder = self._decoders[names] = msgspec.json.Decoder(_struct_for(names))
        try:
            return msgspec.structs.astuple(decoder.decode(raw))
        except (msgspec.DecodeError, RecursionError):
            # The parser has already accepted this object, so this cannot happen for a
            # delivery; should it, the record goes out without key or merchant id.
            return (None,) * len(names)


def _struct_for(names: tuple[str, ...]) -> type[msgspec.Struct]:
    # Member names are arbitrary strings; attribute names only need to be distinct.
    fields = [
        (f"f{index}", Any, msgspec.field(default=None, name=name))
        for index, name in enumerate(names)
    ]
    return msgspec.defstruct("WantedFields", fields)
