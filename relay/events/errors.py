"""The few ways a delivery can fail, each with its HTTP status, in one place.

Handlers raise these; ``relay.intake.responses`` turns them into JSON error bodies.
Messages are written for the person reading UltraCart's delivery log, and never contain
credentials or payload content.
"""

from __future__ import annotations


class DeliveryError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Unauthorized(DeliveryError):
    status = 401
    code = "unauthorized"

    def __init__(self, reason: str) -> None:
        # One message for every reason, so a prober learns nothing from the body;
        # the reason goes to metrics and logs only.
        super().__init__("valid credentials are required for this endpoint")
        self.reason = reason


class RejectedDelivery(DeliveryError):
    """The sender was authenticated but the delivery cannot be published as events.

    These are dead-lettered: written raw to the dead-letter topic before the answer.
    """


class MalformedDelivery(RejectedDelivery):
    status = 400
    code = "malformed_json"


class InvalidDelivery(RejectedDelivery):
    status = 422
    code = "invalid_delivery"


class PayloadTooLarge(RejectedDelivery):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(RejectedDelivery):
    status = 415
    code = "unsupported_media_type"


class RequestTimeout(DeliveryError):
    status = 408
    code = "body_timeout"


class Unavailable(DeliveryError):
    """Kafka did not take every event in time. UltraCart retries on any non-2xx."""

    status = 503
    code = "kafka_unavailable"


class RecordsRefused(Unavailable):
    """Kafka refused some of the records for good (too large for the topic, not allowed).

    Still a 503 to the sender: relay cannot tell UltraCart to stop retrying one delivery.
    The spool sets such deliveries aside instead of retrying them (relay.spool.quarantine).
    """

    code = "kafka_refused"

    def __init__(self, message: str, *, reasons: tuple[str, ...]) -> None:
        super().__init__(message)
        self.reasons = reasons
