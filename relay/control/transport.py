"""One HTTP exchange over the standard library, with a timeout and no exceptions for status.

The client needs the status, headers and body of error responses (the error envelope and
the ``UC-REST-ERROR`` header), so non-2xx answers are returned, not raised. Only a failure to
get any answer (refused connection, DNS, timeout) raises :class:`TransportError`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Protocol

from relay.control.errors import TransportError


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Transport(Protocol):
    def send(self, request: HttpRequest, timeout: float) -> HttpResponse: ...


def _lower_headers(message: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect from the API would re-send the credential headers to another URL; UltraCart's
    # API does not redirect, so surface it as a response instead of following it.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class UrllibTransport:
    """Standard-library transport: no third-party HTTP client in relay's runtime deps."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        raw = urllib.request.Request(
            request.url, data=request.body, headers=request.headers, method=request.method
        )
        try:
            with self._opener.open(raw, timeout=timeout) as answer:
                return HttpResponse(answer.status, _lower_headers(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            with error:
                body = error.read()
            return HttpResponse(error.code, _lower_headers(error.headers), body)
        except TimeoutError as error:
            raise TransportError(
                f"{request.method} {_safe_url(request.url)}: no answer within {timeout:g} s"
            ) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TransportError(
                f"{request.method} {_safe_url(request.url)}: cannot reach UltraCart ({reason})"
            ) from error


def _safe_url(url: str) -> str:
    # Query strings of the webhook API hold only paging parameters, but drop them anyway so a
    # message never echoes anything a caller might have put there.
    return url.split("?", 1)[0]
