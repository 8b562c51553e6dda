"""Which webhooks relay created, so that it never deletes one it only adopted.

UltraCart's Webhook has no field for a tag or an owner, so ownership lives in a small local
JSON file (``[control] state_file``), keyed by the normalised webhook URL. Losing the file
is safe: relay then treats its webhook as adopted and refuses to delete it without
``--force``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from relay.control.client import normalise_url
from relay.settings.errors import ConfigError


@dataclass(frozen=True)
class Ownership:
    """What relay knows of a webhook it manages: its oid, and whether relay created it."""

    webhook_oid: int
    created_by_relay: bool


class OwnershipState:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise ConfigError(f"not valid JSON ({error})", file=str(self.path)) from None
        webhooks = data.get("webhooks", {}) if isinstance(data, dict) else {}
        return webhooks if isinstance(webhooks, dict) else {}

    def get(self, url: str) -> Ownership | None:
        raw = self._read().get(normalise_url(url))
        if not isinstance(raw, dict):
            return None
        oid = raw.get("webhook_oid")
        if not isinstance(oid, int):
            return None
        return Ownership(oid, bool(raw.get("created_by_relay")))

    def owns(self, url: str, webhook_oid: int | None) -> bool:
        record = self.get(url)
        return bool(record and record.created_by_relay and record.webhook_oid == webhook_oid)

    def put(self, url: str, record: Ownership) -> None:
        webhooks = self._read()
        webhooks[normalise_url(url)] = {
            "webhook_oid": record.webhook_oid,
            "created_by_relay": record.created_by_relay,
        }
        self._write(webhooks)

    def forget(self, url: str) -> None:
        webhooks = self._read()
        if webhooks.pop(normalise_url(url), None) is not None:
            self._write(webhooks)

    def _write(self, webhooks: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".state-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"webhooks": webhooks}, handle, indent=2, sort_keys=True)
        os.replace(temp, self.path)
