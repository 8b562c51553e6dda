"""The few exception types of the control plane.

Messages are written for an operator and never contain a credential: the client builds
them from UltraCart's error envelope and the ``UC-REST-ERROR`` header, which describe the
problem, not the request that carried the key.
"""

from __future__ import annotations


class ControlError(Exception):
    """Base class: anything the CLI reports as a one-line error and exit code 1 (as it does
    ``relay.settings.ConfigError``, for webhooks.toml, the environment and secrets)."""


class TransportError(ControlError):
    """UltraCart could not be reached, or did not answer within the timeout."""


class UltraCartError(ControlError):
    """UltraCart answered with an error status.

    ``message`` is the best human-readable text available: the ``UC-REST-ERROR`` header,
    else ``error.user_message`` / ``error.developer_message`` from the body.
    """

    def __init__(
        self,
        operation: str,
        status: int,
        message: str,
        *,
        error_code: str | None = None,
        request_id: str | None = None,
        more_info: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.message = message
        self.error_code = error_code
        self.request_id = request_id
        self.more_info = more_info
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"UltraCart {self.operation} failed with HTTP {self.status}: {self.message}"
        if self.more_info:
            text += f" (more info: {self.more_info})"
        if self.request_id:
            text += f" [UltraCart request id {self.request_id}]"
        return text


class RateLimitedError(UltraCartError):
    """429 after every retry was spent: the hourly budget is exhausted or calls overlap."""


class AuthenticationError(UltraCartError):
    """401/410: the simple key or OAuth token was refused, or the application disabled."""


class OAuthError(ControlError):
    """The OAuth login or token exchange failed."""
