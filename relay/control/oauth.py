"""OAuth 2.0 for UltraCart: token exchange, refresh, and owner-only token storage.

UltraCart uses the authorization-code flow with fixed scopes (set when the developer
application is registered), and its token endpoint takes a form-encoded POST. Tokens are
kept in a JSON file created with mode 0600 and replaced atomically, so a crash mid-write
never leaves a half token file and no other local user can read it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from relay.control.errors import OAuthError
from relay.control.transport import HttpRequest, Transport
from relay.secrets import Secret

logger = logging.getLogger(__name__)

# Refresh this long before expiry, at most, so a call never goes out with a token that
# expires in flight. Capped at a fifth of the lifetime so short-lived tokens still get used.
REFRESH_SKEW_SECONDS = 60.0


@dataclass(frozen=True)
class TokenSet:
    access_token: Secret
    refresh_token: Secret | None
    expires_at: float
    token_type: str = "bearer"
    scope: str = ""
    lifetime: float = 0.0

    def needs_refresh(self, now: float) -> bool:
        skew = min(REFRESH_SKEW_SECONDS, self.lifetime / 5) if self.lifetime else 0.0
        return now >= self.expires_at - skew

    def to_json(self) -> dict[str, object]:
        return {
            "access_token": self.access_token.reveal(),
            "refresh_token": self.refresh_token.reveal() if self.refresh_token else None,
            "expires_at": self.expires_at,
            "token_type": self.token_type,
            "scope": self.scope,
            "lifetime": self.lifetime,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TokenSet:
        refresh = data.get("refresh_token")
        return cls(
            access_token=Secret(str(data["access_token"])),
            refresh_token=Secret(str(refresh)) if refresh else None,
            expires_at=float(str(data["expires_at"])),
            token_type=str(data.get("token_type") or "bearer"),
            scope=str(data.get("scope") or ""),
            lifetime=float(str(data.get("lifetime") or 0.0)),
        )


class TokenStore:
    """A token file readable and writable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TokenSet | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise OAuthError(
                f"token file {self.path} is readable by others (mode {mode:o}); "
                "run `chmod 600` on it or log in again"
            )
        try:
            return TokenSet.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:
            raise OAuthError(f"token file {self.path} is not valid; log in again") from error

    def save(self, tokens: TokenSet) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file with mode 0600 from the start: there is no window in
        # which the token sits in a world-readable file.
        fd, temp = tempfile.mkstemp(prefix=".token-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(tokens.to_json(), handle)
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


@dataclass(frozen=True)
class OAuthApp:
    """A registered UltraCart developer application."""

    client_id: str
    client_secret: Secret | None = None


class TokenEndpoint:
    """POST /oauth/token for code exchange and refresh."""

    def __init__(self, base_url: str, app: OAuthApp, transport: Transport, timeout: float) -> None:
        self.url = base_url.rstrip("/") + "/oauth/token"
        self.authorize_url = base_url.rstrip("/") + "/oauth/authorize"
        self.app = app
        self._transport = transport
        self._timeout = timeout

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        return self._grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    def refresh(self, refresh_token: Secret) -> TokenSet:
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()})

    def _grant(self, fields: dict[str, str]) -> TokenSet:
        form = {"client_id": self.app.client_id, **fields}
        # UltraCart's spec has no client_secret field on the token call (docs/ultracart.md section 5
        # lists this as unknown); send it only when one is configured.
        if self.app.client_secret:
            form["client_secret"] = self.app.client_secret.reveal()
        request = HttpRequest(
            "POST",
            self.url,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            urllib.parse.urlencode(form).encode(),
        )
        response = self._transport.send(request, self._timeout)
        try:
            data = json.loads(response.body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        grant = fields["grant_type"]
        if response.status != 200 or data.get("error") or not data.get("access_token"):
            # error/error_description are OAuth's own words; they never echo the token.
            reason = data.get("error_description") or data.get("error") or "no access token"
            raise OAuthError(f"OAuth {grant} grant refused (HTTP {response.status}): {reason}")
        expires_in = _seconds(data.get("expires_in"))
        now = time.time()
        refresh = data.get("refresh_token")
        if not refresh and grant == "refresh_token":
            # Some servers keep the refresh token unchanged and omit it from the answer.
            refresh = fields["refresh_token"]
        logger.info("OAuth %s grant succeeded; token valid for %.0f s", grant, expires_in)
        return TokenSet(
            access_token=Secret(str(data["access_token"])),
            refresh_token=Secret(str(refresh)) if refresh else None,
            expires_at=now + expires_in,
            token_type=str(data.get("token_type") or "bearer"),
            scope=str(data.get("scope") or ""),
            lifetime=expires_in,
        )


def _seconds(value: object) -> float:
    # UltraCart's OauthTokenResponse types expires_in as a *string* of seconds.
    try:
        return float(str(value))
    except ValueError:
        return 3600.0
