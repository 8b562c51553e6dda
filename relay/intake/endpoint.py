"""``POST /webhooks/ultracart``: authenticate, read, parse, publish, then answer.

The answer is 200 only after Kafka has acknowledged every event of the delivery. Every
other outcome is a non-2xx, which UltraCart retries, so a delivery is either wholly in
Kafka or will be sent again.

The endpoint is a pure ASGI app on a Starlette route (the route still matches the path and
answers 405 to other methods): a profile put Starlette's per-request ``Request``,
``Headers`` and ``Response`` objects and their wrappers among relay's larger per-delivery
costs, and the endpoint needs from them only a handful of headers, the body messages and
one answer. It reads the headers it uses in one pass over the raw list and sends its
answer as two ASGI messages.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections import Counter as Tally
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect

from relay.deadlines import Deadlines
from relay.events.errors import (
    DeliveryError,
    PayloadTooLarge,
    RejectedDelivery,
    RequestTimeout,
    Unauthorized,
    Unavailable,
)
from relay.events.records import Record, RecordBuilder, now_utc
from relay.events.sink import EventSink
from relay.intake.admission import BodyBudget, BodyHold
from relay.intake.basic_auth import BasicCredentials
from relay.intake.body import Receive, check_media_type, decode_content_encoding, read_body
from relay.intake.dead_letter import dead_letter_record
from relay.intake.parsing import parse_delivery
from relay.intake.responses import EMPTY_400, Answer, Send, error_answer, ok_answer, send_answer
from relay.intake.signature import SignatureVerifier, SignedRequest
from relay.log_context import delivery_id_var
from relay.metrics import RelayMetrics
from relay.settings import Settings

logger = logging.getLogger(__name__)

# A caller-supplied request id is echoed into logs and Kafka headers: keep it tame.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Leave room under librdkafka's 1 MB default for headers; longer raw bodies are cut.
_DEAD_LETTER_MAX_BYTES = 900 * 1024
# The request headers the endpoint reads, by their raw (lower-case, as ASGI servers give
# them) names. The first of repeated headers counts, as with Starlette's Headers.get.
_READ_HEADERS = {
    name.encode(): name
    for name in (
        "authorization",
        "content-type",
        "content-encoding",
        "content-length",
        "x-request-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    )
}
_LABEL = attrgetter("label")
# Content-Type values already accepted, so a sender's usual value skips the parse.
# Bounded: emptied when full.
_ACCEPTED_TYPES_SIZE = 64


def read_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers of ``_READ_HEADERS`` present in an ASGI scope's list, decoded as latin-1."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = _READ_HEADERS.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


@dataclass(frozen=True, slots=True)
class IntakeAuth:
    """The configured checks; ``None`` means that check is not in use."""

    basic: BasicCredentials | None
    signature: SignatureVerifier | None


class DeliveryEndpoint:
    """The intake route's ASGI app: ``Route(path, endpoint, methods=["POST"])``."""

    def __init__(
        self,
        settings: Settings,
        auth: IntakeAuth,
        builder: RecordBuilder,
        sink: EventSink,
        metrics: RelayMetrics,
        deadlines: Deadlines,
    ) -> None:
        self._intake = settings.intake
        self._body_timeout = settings.server.body_timeout_seconds
        self._dead_letter_topic = settings.topics.dead_letter_topic
        self._ce_source = settings.cloudevents.source
        self._auth = auth
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._deadlines = deadlines
        # Delivery ids: 64 random bits per app, then a counter. Unique across workers and
        # restarts like a random id, without a getrandom() system call per delivery.
        self._id_prefix = os.urandom(8).hex()
        self._id_serial = itertools.count()
        # Labelled metric children, looked up once: labels() costs more than the update.
        # Both keys come from bounded sets (outcome codes, catalog labels).
        self._by_outcome: dict[str, tuple[Counter, Histogram]] = {}
        self._event_counters: dict[tuple[str, str], Counter] = {}
        self._shapes_seen: set[str] = set()
        self._accepted_types: set[str] = set()
        self._inflight = metrics.turn_gauge(metrics.inflight_deliveries)
        # The same limit as the publisher's, for a different holding: the bodies, which are
        # read in full before anything is published (relay/intake/admission.py).
        self._bodies = BodyBudget(
            self._intake.max_inflight_bytes,
            self._intake.max_body_bytes,
            metrics.turn_gauge(metrics.inflight_body_bytes),
        )
        self._payload_bytes = metrics.payload_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = read_headers(scope["headers"])
        delivery_id = self._delivery_id(headers)
        token = delivery_id_var.set(delivery_id)
        inflight = self._inflight
        inflight.set(inflight.value + 1)
        outcome = "ok"
        try:
            answer = await self._handle(receive, headers, delivery_id, started)
        except DeliveryError as exc:
            outcome = exc.code
            answer = self._refusal(exc, delivery_id)
        except ClientDisconnect:
            # The sender went away mid-body; nothing was published and nobody is listening.
            outcome = "client_disconnected"
            answer = EMPTY_400
        finally:
            inflight.set(inflight.value - 1)
            delivery_id_var.reset(token)
        elapsed = time.perf_counter() - started
        counted = self._by_outcome.get(outcome)
        if counted is None:
            counted = self._by_outcome[outcome] = (
                self._metrics.deliveries.labels(outcome=outcome),
                self._metrics.delivery_duration.labels(outcome=outcome),
            )
        counted[0].inc()
        counted[1].observe(elapsed)
        await send_answer(send, answer)

    async def _handle(
        self, receive: Receive, headers: Mapping[str, str], delivery_id: str, started: float
    ) -> Answer:
        # Every configured check passes before anything else is looked at: nothing of an
        # unauthenticated request reaches Kafka, the dead-letter topic included, and an
        # unauthenticated request is refused before it can take any of the body budget.
        signed = self._check_sender(headers)
        hold = self._bodies.admit(headers.get("content-length"))
        try:
            return await self._admitted(receive, headers, signed, hold, delivery_id, started)
        finally:
            self._bodies.release(hold)

    async def _admitted(
        self,
        receive: Receive,
        headers: Mapping[str, str],
        signed: SignedRequest | None,
        hold: BodyHold,
        delivery_id: str,
        started: float,
    ) -> Answer:
        received = now_utc()
        body = b""
        try:
            body = await self._verified_body(receive, headers, signed)
            self._bodies.settle(hold, len(body))
            self._payload_bytes.observe(len(body))
            # Checked after reading so that a refused body still reaches the dead-letter topic.
            self._check_media_type(headers.get("content-type", ""))
            decoded = decode_content_encoding(
                body, headers.get("content-encoding", ""), self._intake.max_decompressed_bytes
            )
            delivery = parse_delivery(
                decoded,
                max_events=self._intake.max_events_per_delivery,
                max_inflated_bytes=self._intake.max_decompressed_bytes,
            )
            self._note_shape(delivery.shape)
            records = self._builder.build(delivery.events, delivery_id, received)
        except RejectedDelivery as exc:
            await self._dead_letter(exc, body, delivery_id, received, headers, started)
            raise
        # Only the records are needed from here on (the sink raises nothing that is
        # dead-lettered). The body is let go before the wait for acknowledgements, which is
        # most of a delivery's life under load: a delivery then holds its records and
        # librdkafka's copy of them, not a third copy (docs/performance.md, issue 22).
        del body, decoded, delivery
        try:
            await self._sink.publish(records, self._remaining(started))
        except Unavailable:
            self._count_events(records, "failed")
            raise
        self._count_events(records, "published")
        logger.debug("delivery published", extra={"events": len(records)})
        return ok_answer(delivery_id, len(records))

    def _check_media_type(self, content_type: str) -> None:
        if content_type in self._accepted_types:
            return
        check_media_type(content_type, self._intake)
        if len(self._accepted_types) >= _ACCEPTED_TYPES_SIZE:
            self._accepted_types = set()
        self._accepted_types.add(content_type)

    def _check_sender(self, headers: Mapping[str, str]) -> SignedRequest | None:
        """``Unauthorized`` unless the request passes every check that precedes its body.

        Basic is checked in full. A signature covers the body, so only its headers are
        checked here; the HMAC is checked once the body is in (``_verified_body``).
        """
        if self._auth.basic is not None:
            self._auth.basic.check(headers.get("authorization"))
        if self._auth.signature is None:
            return None
        return self._auth.signature.check_headers(headers)

    async def _verified_body(
        self, receive: Receive, headers: Mapping[str, str], signed: SignedRequest | None
    ) -> bytes:
        """The body, once it passed the signature check if one is configured.

        A body that cannot be read in full within the limits cannot be verified, and is
        refused as unauthenticated rather than dead-lettered.
        """
        if signed is None:
            return await self._read(receive, headers)
        try:
            body = await self._read(receive, headers)
        except (PayloadTooLarge, RequestTimeout):
            raise Unauthorized("unverifiable") from None
        signed.verify(body)
        return body

    async def _read(self, receive: Receive, headers: Mapping[str, str]) -> bytes:
        return await read_body(
            receive,
            headers.get("content-length"),
            self._intake.max_body_bytes,
            self._body_timeout,
            self._deadlines,
        )

    def _note_shape(self, shape: str) -> None:
        # Which body shape UltraCart sends is unknown (docs/ultracart.md section 1): say once per
        # process which ones arrive, so an operator can settle it from the logs.
        if shape not in self._shapes_seen:
            self._shapes_seen.add(shape)
            logger.info("first delivery in this body shape", extra={"shape": shape})

    def _count_events(self, records: list[Record], outcome: str) -> None:
        if len(records) == 1:
            # The usual delivery: one event, one update, no tally.
            self._event_counter(records[0].label, outcome).inc()
            return
        # One update per event type rather than per event: a delivery may hold thousands,
        # and a collections.Counter over attrgetter tallies them without a Python loop.
        for label, count in Tally(map(_LABEL, records)).items():
            self._event_counter(label, outcome).inc(count)

    def _event_counter(self, label: str, outcome: str) -> Counter:
        counter = self._event_counters.get((label, outcome))
        if counter is None:
            counter = self._event_counters[(label, outcome)] = self._metrics.events.labels(
                event_type=label, outcome=outcome
            )
        return counter

    def _remaining(self, started: float) -> float:
        return max(0.001, self._intake.ack_deadline_seconds - (time.perf_counter() - started))

    async def _dead_letter(
        self,
        error: RejectedDelivery,
        body: bytes,
        delivery_id: str,
        received: datetime,
        headers: Mapping[str, str],
        started: float,
    ) -> None:
        record = dead_letter_record(
            self._dead_letter_topic,
            body,
            error,
            delivery_id=delivery_id,
            received=received,
            content_type=headers.get("content-type", ""),
            content_encoding=headers.get("content-encoding", ""),
            max_bytes=_DEAD_LETTER_MAX_BYTES,
            source=self._ce_source,
        )
        try:
            await self._sink.publish([record], self._remaining(started))
        except DeliveryError as exc:
            # Answering 4xx now would make UltraCart drop a delivery we have no copy of;
            # a 503 makes it come back when the dead-letter topic can take it.
            logger.error(
                "dead-lettering failed; asking the sender to retry",
                extra={"reason": error.code, "error": exc.code},
            )
            raise Unavailable(
                "the delivery was rejected and could not be recorded; retry later",
                code="dead_letter_failed",
            ) from None
        self._metrics.dead_letters.labels(reason=error.code).inc()
        logger.warning(
            "delivery rejected and dead-lettered",
            extra={"reason": error.code, "status": error.status, "detail": error.message},
        )

    def _delivery_id(self, headers: Mapping[str, str]) -> str:
        supplied = headers.get("x-request-id", "")
        if _REQUEST_ID.fullmatch(supplied):
            return supplied
        return f"{self._id_prefix}{next(self._id_serial):016x}"

    def _refusal(self, error: DeliveryError, delivery_id: str) -> Answer:
        if isinstance(error, Unauthorized):
            self._metrics.auth_failures.labels(reason=error.reason).inc()
            logger.warning("delivery refused: authentication", extra={"reason": error.reason})
            return error_answer(error, delivery_id, {"WWW-Authenticate": 'Basic realm="relay"'})
        if isinstance(error, Unavailable):
            logger.warning("delivery not acknowledged", extra={"reason": error.code})
            retry_after = str(self._intake.retry_after_seconds)
            return error_answer(error, delivery_id, {"Retry-After": retry_after})
        return error_answer(error, delivery_id)
