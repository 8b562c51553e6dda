"""A thin, typed client for UltraCart's webhook endpoints (REST API v2).

Why not the official ``ultracart-rest-sdk``: it is generated code for the whole API (hundreds
of modules, pydantic and urllib3 pins) when relay needs eight calls, and it has none of the
behaviour that matters here: serialised calls, 429 backoff, paging, readable errors. This
client is the standard library plus the extract's field names.

UltraCart answers 429 both beyond its hourly budget and to *concurrent* calls, so every call
goes through one lock, and 429s are retried with exponential backoff and full jitter. The
``on_wait`` callback lets the CLI say that it is waiting rather than look hung.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from relay.control.budget import CallBudget
from relay.control.credentials import Credentials
from relay.control.errors import (
    AuthenticationError,
    ControlError,
    RateLimitedError,
    TransportError,
    UltraCartError,
)
from relay.control.models import (
    API_VERSION,
    Webhook,
    WebhookLog,
    WebhookLogSummary,
    WebhookReflow,
)
from relay.control.transport import HttpRequest, HttpResponse, Transport, UrllibTransport

logger = logging.getLogger(__name__)

# Methods that are safe to repeat after a 5xx or a lost connection. POST is left out: a
# repeated insert would create a second webhook, a repeated reflow would resend everything.
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_RETRYABLE_5XX = frozenset({500, 502, 503, 504})

WaitNotice = Callable[[str, float, int, int], None]
"""Called before each backoff sleep with (reason, seconds, next attempt, max attempts)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)], never below base/2.

        The floor keeps two clients that both hit 429 from retrying at once by luck of
        drawing near zero; the jitter keeps them from retrying in lockstep.
        """
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return max(self.base_delay / 2, rng.uniform(0, ceiling))


class UltraCartClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        transport: Transport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = 100,
        on_wait: WaitNotice | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._transport = transport or UrllibTransport()
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._page_size = page_size
        self._on_wait = on_wait
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.calls = 0
        # Paces every attempt and bounds a run; None for commands that make a few calls.
        self.budget = budget

    # ---- the webhook operations (operationId in the comment) ----

    def list_webhooks(self, *, placeholders: bool = False) -> list[Webhook]:
        """getWebhooks, every page."""
        query = {"_placeholders": "true"} if placeholders else {}
        pages = self._paged("getWebhooks", "/webhook/webhooks", query, "webhooks")
        return [cast(Webhook, item) for item in pages]

    def insert_webhook(self, webhook: Webhook, *, placeholders: bool = False) -> Webhook:
        """insertWebhook."""
        data = self._call(
            "insertWebhook",
            "POST",
            "/webhook/webhooks",
            query=_placeholders(placeholders),
            body=dict(webhook),
        )
        return cast(Webhook, data["webhook"])

    def update_webhook(
        self, webhook_oid: int, webhook: Webhook, *, placeholders: bool = False
    ) -> Webhook:
        """updateWebhook."""
        data = self._call(
            "updateWebhook",
            "PUT",
            f"/webhook/webhooks/{webhook_oid}",
            query=_placeholders(placeholders),
            body=dict(webhook),
        )
        return cast(Webhook, data["webhook"])

    def delete_webhook(self, webhook_oid: int) -> None:
        """deleteWebhook (204)."""
        self._call("deleteWebhook", "DELETE", f"/webhook/webhooks/{webhook_oid}", expect=204)

    def delete_webhook_by_url(self, url: str) -> Webhook:
        """deleteWebhookByUrl: a DELETE with a JSON body; only webhook_url is used."""
        data = self._call(
            "deleteWebhookByUrl", "DELETE", "/webhook/webhooks", body={"webhook_url": url}
        )
        return cast(Webhook, data.get("webhook", {}))

    def log_summaries(
        self, webhook_oid: int, *, since: str | None = None
    ) -> Iterator[WebhookLogSummary]:
        """getWebhookLogSummaries, every page, lazily."""
        query = {"_since": since} if since else {}
        path = f"/webhook/webhooks/{webhook_oid}/logs"
        for item in self._paged("getWebhookLogSummaries", path, query, "webhook_log_summaries"):
            yield cast(WebhookLogSummary, item)

    def log(self, webhook_oid: int, request_id: str) -> WebhookLog:
        """getWebhookLog."""
        path = f"/webhook/webhooks/{webhook_oid}/logs/{urllib.parse.quote(request_id, safe='')}"
        data = self._call("getWebhookLog", "GET", path)
        return cast(WebhookLog, data["webhook_log"])

    def reflow(self, webhook_oid: int, event_name: str) -> WebhookReflow:
        """resendEvent: UltraCart re-sends every object of that kind."""
        path = f"/webhook/webhooks/{webhook_oid}/reflow/{urllib.parse.quote(event_name)}"
        data = self._call("resendEvent", "POST", path)
        return cast(WebhookReflow, data["reflow"])

    # ---- lookups built on the operations ----

    def find_by_url(self, url: str, *, placeholders: bool = False) -> Webhook | None:
        wanted = normalise_url(url)
        for webhook in self.list_webhooks(placeholders=placeholders):
            if normalise_url(webhook.get("webhook_url", "")) == wanted:
                return webhook
        return None

    def find_by_oid(self, webhook_oid: int, *, placeholders: bool = False) -> Webhook | None:
        # There is no GET for one webhook: list and pick.
        for webhook in self.list_webhooks(placeholders=placeholders):
            if webhook.get("webhook_oid") == webhook_oid:
                return webhook
        return None

    # ---- plumbing ----

    def _paged(
        self, operation: str, path: str, query: dict[str, str], key: str
    ) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page_query = {**query, "_limit": str(self._page_size), "_offset": str(offset)}
            data = self._call(operation, "GET", path, query=page_query)
            items = data.get(key) or []
            yield from items
            result_set = (data.get("metadata") or {}).get("result_set") or {}
            if not result_set.get("more"):
                return
            next_offset = result_set.get("next_offset")
            if not isinstance(next_offset, int):
                next_offset = offset + len(items)
            if next_offset <= offset:
                raise ControlError(
                    f"UltraCart {operation} paging did not advance (offset {offset}); stopping"
                )
            offset = next_offset

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        payload = json.dumps(body).encode() if body is not None else None
        # One call at a time, including its backoff sleeps: UltraCart answers 429 to
        # overlapping calls, so letting another thread in during a wait would only earn a
        # second 429.
        with self._lock:
            return self._call_locked(operation, method, url, payload, expect)

    def _call_locked(
        self, operation: str, method: str, url: str, payload: bytes | None, expect: int
    ) -> dict[str, Any]:
        attempt = 1
        refreshed = False
        while True:
            auth = self._credentials.headers()
            headers = {
                "X-UltraCart-Api-Version": API_VERSION,
                "Accept": "application/json",
                **auth,
            }
            if payload is not None:
                headers["Content-Type"] = "application/json; charset=UTF-8"
            if self.budget is not None:
                self.budget.spend()
            self.calls += 1
            try:
                response = self._transport.send(
                    HttpRequest(method, url, headers, payload), self._timeout
                )
            except TransportError as error:
                if method in _IDEMPOTENT and attempt < self._retry.max_attempts:
                    attempt = self._wait(f"{error}", attempt)
                    continue
                raise
            if response.status == expect:
                return _json_object(response) if expect != 204 else {}
            if response.status == 401 and not refreshed and self._credentials.on_unauthorized():
                refreshed = True
                continue
            failure = _error_from(operation, response, secrets=list(auth.values()))
            retryable = response.status == 429 or (
                response.status in _RETRYABLE_5XX and method in _IDEMPOTENT
            )
            if retryable and attempt < self._retry.max_attempts:
                reason = (
                    "UltraCart rate limit (429)"
                    if response.status == 429
                    else f"UltraCart error {response.status}"
                )
                attempt = self._wait(f"{reason}: {failure.message}", attempt)
                continue
            raise failure

    def _wait(self, reason: str, attempt: int) -> int:
        seconds = self._retry.delay(attempt, self._rng)
        logger.warning(
            "%s; retry %d/%d in %.1f s", reason, attempt + 1, self._retry.max_attempts, seconds
        )
        if self._on_wait is not None:
            self._on_wait(reason, seconds, attempt + 1, self._retry.max_attempts)
        self._sleep(seconds)
        return attempt + 1


def _placeholders(enabled: bool) -> dict[str, str]:
    return {"_placeholders": "true"} if enabled else {}


def _json_object(response: HttpResponse) -> dict[str, Any]:
    try:
        data = json.loads(response.body)
    except ValueError as error:
        raise ControlError(f"UltraCart answered HTTP {response.status} with non-JSON") from error
    if not isinstance(data, dict):
        raise ControlError(f"UltraCart answered HTTP {response.status} with a non-object")
    return data


def _error_from(operation: str, response: HttpResponse, secrets: list[str]) -> UltraCartError:
    try:
        data = json.loads(response.body) if response.body else {}
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    message = (
        response.header("UC-REST-ERROR")
        or error.get("user_message")
        or error.get("developer_message")
        or f"HTTP {response.status} with no error message"
    )
    developer = error.get("developer_message")
    if developer and developer != message:
        message = f"{message} ({developer})"
    message = _scrub(str(message)[:500], secrets)
    kind: type[UltraCartError] = UltraCartError
    if response.status == 429:
        kind = RateLimitedError
    elif response.status in (401, 410):
        kind = AuthenticationError
    more_info = error.get("more_info")
    return kind(
        operation,
        response.status,
        message,
        error_code=str(error["error_code"]) if error.get("error_code") else None,
        request_id=response.header("X-UltraCart-Request-Id"),
        more_info=_scrub(str(more_info), secrets) if more_info else None,
    )


def _scrub(text: str, secrets: list[str]) -> str:
    # Belt and braces: should a server ever echo the credential back, it stops here.
    for secret in secrets:
        token = secret.removeprefix("Bearer ").strip()
        if len(token) >= 6:
            text = text.replace(token, "********")
    return text


def normalise_url(url: str) -> str:
    """Compare webhook URLs as UltraCart would route them: case-insensitive scheme and host,
    no trailing slash."""
    parts = urllib.parse.urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), path, parts.query, "")
    )
