"""How the client proves itself to UltraCart: a simple key or an OAuth bearer token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from relay.control.errors import OAuthError
from relay.control.oauth import TokenEndpoint, TokenSet, TokenStore
from relay.secrets import Secret


class Credentials(Protocol):
    def headers(self) -> dict[str, str]:
        """Headers that authenticate the next call (refreshing first if needed)."""
        ...

    def on_unauthorized(self) -> bool:
        """A call got 401: return True if fresh credentials are worth one more try."""
        ...


class SimpleKey:
    def __init__(self, key: Secret) -> None:
        self._key = key

    def headers(self) -> dict[str, str]:
        return {"x-ultracart-simple-key": self._key.reveal()}

    def on_unauthorized(self) -> bool:
        return False


class OAuthBearer:
    """Bearer tokens from a token file, refreshed shortly before they expire.

    The refreshed token is written back to the file at once: UltraCart may rotate the refresh
    token on each use, so losing the new one would force a new interactive login.
    """

    def __init__(
        self,
        store: TokenStore,
        endpoint: TokenEndpoint,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None
        self.refresh_count = 0

    def _current(self) -> TokenSet:
        if self._tokens is None:
            self._tokens = self._store.load()
        if self._tokens is None:
            raise OAuthError(f"no OAuth token in {self._store.path}; run `relay auth login` first")
        return self._tokens

    def _refresh(self, tokens: TokenSet) -> TokenSet:
        if tokens.refresh_token is None:
            raise OAuthError("the OAuth token expired and has no refresh token; log in again")
        fresh = self._endpoint.refresh(tokens.refresh_token)
        self._store.save(fresh)
        self._tokens = fresh
        self.refresh_count += 1
        return fresh

    def headers(self) -> dict[str, str]:
        with self._lock:
            tokens = self._current()
            if tokens.needs_refresh(self._clock()):
                tokens = self._refresh(tokens)
            return {"Authorization": f"Bearer {tokens.access_token.reveal()}"}

    def on_unauthorized(self) -> bool:
        # The token may have been revoked or expired early: one refresh, then give up.
        with self._lock:
            tokens = self._current()
            if tokens.refresh_token is None:
                return False
            self._refresh(tokens)
            return True
