"""Wire shapes of UltraCart's webhook API, as typed dictionaries.

Field names follow the OpenAPI extract (``Webhook``, ``WebhookEventCategory``, ...). Every
field is optional there, hence ``total=False``. Keeping the JSON as dictionaries (rather than
classes) lets the client round-trip fields it does not know, which matters for the
GET-modify-PUT update that UltraCart's samples use.
"""

from __future__ import annotations

from typing import Literal, TypedDict

API_VERSION = "2017-03-01"

AuthenticationType = Literal["none", "basic", "api user", "aws iam"]


class WebhookEventSubscription(TypedDict, total=False):
    comments: str
    deprecated_flag: bool
    discontinued_flag: bool
    event_description: str
    event_name: str
    event_ruler: str
    expansion: str
    subscribed: bool
    supports_reflow: bool
    webhook_event_oid: int


class WebhookEventCategory(TypedDict, total=False):
    any_subscribed: bool
    available_expansions: list[str]
    event_category: str
    events: list[WebhookEventSubscription]
    subscribed: bool


class Webhook(TypedDict, total=False):
    api_user_oid: int
    api_version: str
    authentication_type: AuthenticationType
    basic_password: str
    basic_username: str
    compress_events: bool
    consecutive_failures: int
    disabled: bool
    event_categories: list[WebhookEventCategory]
    iam_access_key: str
    iam_secret_key: str
    maximum_events: int
    maximum_size: int
    merchant_id: str
    next_retry_after: str
    pending: int
    webhook_oid: int
    webhook_url: str


class HTTPHeader(TypedDict, total=False):
    name: str
    value: str


class WebhookLog(TypedDict, total=False):
    delivery_dts: str
    duration: int
    queue_delay: int
    request: str
    request_headers: list[HTTPHeader]
    request_id: str
    response: str
    response_headers: list[HTTPHeader]
    status_code: int
    success: bool
    uri: str
    webhook_oid: int


class WebhookLogSummary(TypedDict, total=False):
    delivery_dts: str
    request_id: str
    success: bool
    # Not in the extract's spec version; in the current SDK's model (ultracart-rest-sdk
    # 4.1.208). A summary without them is still read: the audit then needs the full log.
    status_code: int
    duration: int
    event_names: list[str]
    order_ids: list[str]


class WebhookReflow(TypedDict, total=False):
    event_name: str
    queued: bool


def subscribed_events(webhook: Webhook) -> dict[str, WebhookEventSubscription]:
    """The webhook's subscribed events by name (placeholders with subscribed=false dropped)."""
    found: dict[str, WebhookEventSubscription] = {}
    for category in webhook.get("event_categories", []):
        for event in category.get("events", []):
            name = event.get("event_name")
            if name and event.get("subscribed", False):
                found[name] = event
    return found
