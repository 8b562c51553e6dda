"""Optional Standard Webhooks signature check (HMAC-SHA256 over id, timestamp and body).

UltraCart itself does not sign deliveries. This check is for deployments where a signing
proxy sits in front of relay. Spec: https://www.standardwebhooks.com (headers
``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64> ...``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping

from relay.events.errors import Unauthorized
from relay.secrets import Secret

_SECRET_PREFIX = "whsec_"


def _key_bytes(secret: Secret) -> bytes:
    text = secret.reveal()
    if text.startswith(_SECRET_PREFIX):
        try:
            return base64.b64decode(text[len(_SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a signature secret has the whsec_ prefix but is not base64") from None
    return text.encode()


class SignatureVerifier:
    def __init__(
        self,
        secrets: Iterable[Secret],
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = [_key_bytes(s) for s in secrets]
        self._tolerance = tolerance_seconds
        self._clock = clock

    def check_headers(self, headers: Mapping[str, str]) -> SignedRequest:
        """What can be checked before the body is read: the headers and the timestamp.

        Raises ``Unauthorized`` at once for a request that cannot pass, so its body is
        never read; the HMAC itself needs the body (``SignedRequest.verify``).
        """
        message_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not message_id or not timestamp or not signatures:
            raise Unauthorized("missing_signature")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise Unauthorized("bad_signature") from None
        if abs(self._clock() - sent_at) > self._tolerance:
            # Outside the window a captured request could be replayed.
            raise Unauthorized("stale_timestamp")
        candidates = []
        for token in signatures.split():
            version, _, value = token.partition(",")
            if version == "v1" and value:
                try:
                    candidates.append(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    continue
        if not candidates:
            raise Unauthorized("bad_signature")
        return SignedRequest(
            self._keys, message_id.encode() + b"." + timestamp.encode() + b".", candidates
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        self.check_headers(headers).verify(body)


class SignedRequest:
    """A request whose signature headers are well formed, waiting for its body."""

    def __init__(self, keys: list[bytes], prefix: bytes, candidates: list[bytes]) -> None:
        self._keys = keys
        self._prefix = prefix
        self._candidates = candidates

    def verify(self, body: bytes) -> None:
        signed = self._prefix + body
        matched = False
        for key in self._keys:
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            for candidate in self._candidates:
                # No early exit: every candidate is compared against every key.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise Unauthorized("bad_signature")


def sign(secret: Secret, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a signing proxy would send (used by tests and tools)."""
    signed = b".".join((message_id.encode(), str(timestamp).encode(), body))
    digest = hmac.new(_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
