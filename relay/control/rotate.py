"""Rotate the Basic pair UltraCart sends, with no moment when relay refuses a delivery.

The order is what makes it safe:

1. add the new pair to relay's credentials file (relay now accepts old *and* new);
2. wait until relay has re-read the file (it checks every ``reload_interval_seconds``);
3. switch UltraCart to the new pair, and write it to the desired-state secret file so the
   next ``apply`` keeps it;
4. wait for deliveries already sent with the old pair to land, then drop the old pair.

If step 3 fails the new pair is taken out again and nothing else has changed.
"""

from __future__ import annotations

import copy
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relay.control.client import UltraCartClient
from relay.control.desired import BasicCredentials, ControlConfig
from relay.control.errors import ControlError
from relay.control.models import Webhook
from relay.control.plan import READ_ONLY_FIELDS
from relay.credentials import read_credentials_file
from relay.secrets import Secret
from relay.settings.errors import ConfigError


@dataclass(frozen=True)
class RotationResult:
    webhook_oid: int
    new_username: str
    old_username: str


def new_pair(prefix: str = "relay") -> BasicCredentials:
    return BasicCredentials(
        username=f"{prefix}-{secrets.token_hex(4)}", password=Secret(secrets.token_urlsafe(32))
    )


def _pair_text(pair: BasicCredentials) -> str:
    return f"{pair.username}:{pair.password.reveal()}"


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file (relay may read it at any moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _lines(path: Path) -> list[str]:
    try:
        return [p.reveal() for p in read_credentials_file(path)]
    except FileNotFoundError:
        return []
    except ValueError as error:
        # The message names the file and line, never the content.
        raise ConfigError(str(error)) from None


def _with_pair(path: Path, add: str | None = None, drop: str | None = None) -> None:
    lines = [line for line in _lines(path) if line != drop]
    if add is not None and add not in lines:
        lines.append(add)
    header = "# Basic pairs relay accepts (user:password); managed by relay rotate-credentials\n"
    write_private(path, header + "".join(f"{line}\n" for line in lines))


def rotate_credentials(
    client: UltraCartClient,
    config: ControlConfig,
    *,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    pair: BasicCredentials | None = None,
) -> RotationResult:
    desired = config.webhook
    relay_file = config.control.relay_credentials_file
    if desired.basic is None:
        raise ConfigError(
            "[webhook.basic] is not set: there are no credentials to rotate",
            setting="webhook.basic",
        )
    if desired.basic.file is None:
        raise ConfigError(
            "[webhook.basic] takes its pair from an environment variable; rotation needs "
            "credentials_file so the new pair can be written back",
            setting="webhook.basic.credentials_file",
        )
    if relay_file is None:
        raise ConfigError(
            "[control] relay_credentials_file is not set: name the file relay reads as "
            "[auth] basic_credentials_file",
            setting="control.relay_credentials_file",
        )
    old = desired.basic
    webhook = client.find_by_url(desired.url, placeholders=True)
    if webhook is None or not isinstance(webhook.get("webhook_oid"), int):
        raise ControlError(f"no webhook for {desired.url} on UltraCart; run `apply` first")
    oid = int(webhook["webhook_oid"])
    fresh = pair or new_pair()

    _with_pair(relay_file, add=_pair_text(old))
    _with_pair(relay_file, add=_pair_text(fresh))
    say(f"1/4 added the new pair ({fresh.username}) to {relay_file}; relay accepts both")
    wait = config.control.reload_wait_seconds
    say(f"2/4 waiting {wait:g} s for relay to reload {relay_file.name}")
    sleep(wait)

    body: Webhook = copy.deepcopy(webhook)
    for key in READ_ONLY_FIELDS:
        body.pop(key, None)  # type: ignore[misc]
    body["authentication_type"] = "basic"
    body["basic_username"] = fresh.username
    body["basic_password"] = fresh.password.reveal()
    try:
        client.update_webhook(oid, body, placeholders=True)
    except BaseException:
        _with_pair(relay_file, drop=_pair_text(fresh))
        say("UltraCart update failed; removed the new pair again, the old one stays in use")
        raise
    write_private(desired.basic.file, _pair_text(fresh) + "\n")
    say(f"3/4 UltraCart webhook {oid} now sends {fresh.username}; saved to {desired.basic.file}")

    drain = config.control.drain_seconds
    say(f"4/4 waiting {drain:g} s for deliveries sent with the old pair, then dropping it")
    sleep(drain)
    _with_pair(relay_file, drop=_pair_text(old))
    say(f"done: {old.username} removed from {relay_file}")
    return RotationResult(oid, fresh.username, old.username)
