"""HTTP Basic check for UltraCart deliveries, with several accepted pairs for rotation.

UltraCart sends the ``basic_username``/``basic_password`` configured on the webhook
(docs/ultracart.md section 0). Accepting a set of pairs, and re-reading the credentials file
when it changes, lets an operator add a new pair, switch UltraCart to it and drop the old
one without a moment when deliveries are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import Counter

from relay.credentials import read_credentials_file
from relay.events.errors import Unauthorized
from relay.secrets import Secret

logger = logging.getLogger(__name__)

# Authorization values that passed the full check, remembered so the same sender's next
# delivery skips base64 and hashing. Bounded: emptied when full (a flood of distinct valid
# values is not a thing) and whenever the credentials file is reloaded.
_ACCEPTED_CACHE_SIZE = 64


def _digest(pair: bytes) -> bytes:
    # Comparing fixed-size digests keeps the time independent of where the bytes differ
    # and of the length of either side.
    return hashlib.sha256(pair).digest()


class BasicCredentials:
    """The set of accepted pairs: fixed ones from settings plus those in a watched file."""

    def __init__(
        self,
        fixed: Iterable[Secret],
        file: str = "",
        reload_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        reloads: Counter | None = None,
    ) -> None:
        """``reloads`` (labelled by outcome) counts reloads of a changed file, ok or failed:
        a failure is otherwise only a log line while the old pairs go on working."""
        self._fixed = [_digest(p.reveal().encode()) for p in fixed]
        self._file = Path(file) if file else None
        self._reload_interval = reload_interval
        self._clock = clock
        self._from_file: list[bytes] = []
        self._accepted: set[str] = set()
        self._file_stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self._reloaded = reloads.labels(outcome="ok") if reloads is not None else None
        self._reload_failed = reloads.labels(outcome="failed") if reloads is not None else None
        if self._file is not None:
            # At start-up a missing or broken file is fatal: better than starting with
            # no way for UltraCart to get in.
            self._load(self._file)

    @property
    def count(self) -> int:
        return len(self._fixed) + len(self._from_file)

    def _load(self, path: Path) -> None:
        stat = path.stat()
        pairs = read_credentials_file(path)
        self._from_file = [_digest(p.reveal().encode()) for p in pairs]
        self._file_stamp = (stat.st_mtime_ns, stat.st_size)
        # A pair removed from the file must stop working at once.
        self._accepted = set()

    def _maybe_reload(self) -> None:
        if self._file is None:
            return
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._reload_interval
        try:
            stat = self._file.stat()
            if (stat.st_mtime_ns, stat.st_size) == self._file_stamp:
                return
            self._load(self._file)
            logger.info("reloaded basic credentials file", extra={"pairs": len(self._from_file)})
            if self._reloaded is not None:
                self._reloaded.inc()
        except (OSError, ValueError) as exc:
            if self._reload_failed is not None:
                self._reload_failed.inc()
            # Keep the last good set: a half-written or vanished file must not lock
            # UltraCart out.
            logger.error(
                "cannot reload basic credentials file; keeping the previous set",
                extra={"error": type(exc).__name__},
            )

    def check(self, authorization: str | None) -> None:
        """Return if ``authorization`` holds an accepted pair; raise ``Unauthorized`` if not.

        Nothing about the sender is returned: nothing would read it.
        """
        self._maybe_reload()
        if not authorization:
            raise Unauthorized("missing")
        # A dict lookup hashes the whole value before comparing anything, so a miss takes
        # no longer for a near-correct value than for a wrong one; misses then get the
        # constant-time check below.
        if authorization in self._accepted:
            return
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Unauthorized("malformed")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Unauthorized("malformed") from None
        if b":" not in decoded:
            raise Unauthorized("malformed")
        provided = _digest(decoded)
        matched = False
        for expected in (*self._fixed, *self._from_file):
            # No early exit: every pair is compared whichever one matches.
            matched |= hmac.compare_digest(provided, expected)
        if not matched:
            raise Unauthorized("bad_credentials")
        if len(self._accepted) >= _ACCEPTED_CACHE_SIZE:
            self._accepted = set()
        self._accepted.add(authorization)


def file_mode_is_private(path: str) -> bool:
    """True when other users (outside the file's group) cannot read or write the file.

    Group access is allowed: Kubernetes mounts secrets group-readable for the pod's
    fsGroup, which is relay's own group.
    """
    return not os.stat(path).st_mode & 0o007
