"""Application assembly: ``build_intake(settings)`` builds intake, ``create_admin_app`` the probes.

Everything an app needs is built here from its settings and held by that app alone (no
module-level state), so tests can build as many apps as they like side by side. What the
servers need from it comes back as one typed value, ``Intake``: the ASGI app and the
``Runtime`` whose state the probes read and the shutdown changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.control.status_poller import start_status_poller
from relay.deadlines import Deadlines
from relay.events.records import RecordBuilder
from relay.events.routing import KeyPicker, TopicRouter
from relay.events.sink import EventSink
from relay.intake.basic_auth import BasicCredentials, file_mode_is_private
from relay.intake.endpoint import DeliveryEndpoint, IntakeAuth
from relay.intake.signature import SignatureVerifier
from relay.kafka.client_config import max_message_bytes, producer_config
from relay.kafka.publisher import KafkaPublisher
from relay.kafka.topic_status import TopicStatus
from relay.metrics import LimitGauges, RelayMetrics
from relay.serving.probes import Readiness, probe_routes
from relay.settings import Settings
from relay.spool.sink import SpoolingSink, build_spooling_sink

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What one relay instance owns; shared by its intake app and its admin app.

    It is also the one owner of the instance's life-cycle state: ``started`` and
    ``draining`` change only through ``mark_started`` and ``begin_drain``, which the
    lifespan, the signal handler and the benchmark's reference apps all call.
    """

    settings: Settings
    metrics: RelayMetrics
    sink: EventSink
    publisher: KafkaPublisher | None
    # Every deadline-bound wait of this instance (body reads, acknowledgements): one timer.
    deadlines: Deadlines
    spool: SpoolingSink | None = None
    # The start-up topic check (with Kafka only); None when there is none.
    topics: TopicStatus | None = None
    _started: bool = field(default=False, init=False)
    # monotonic() time by which the whole drain must be over; set when a stop is requested.
    _drain_deadline: float | None = field(default=None, init=False)

    @property
    def started(self) -> bool:
        return self._started

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    @property
    def ready(self) -> bool:
        topics_missing = self.topics is not None and self.topics.blocking
        return self._started and not self.draining and self.sink.ready and not topics_missing

    def mark_started(self) -> None:
        """Start-up is over: /readyz may say ready (once the sink is too)."""
        self._started = True

    def begin_drain(self) -> None:
        """Turn /readyz to 503 and start the one clock the whole shutdown runs against.

        Called by the signal handler and again by the lifespan; the first call sets the clock.
        """
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + self.settings.server.shutdown_grace_seconds

    def drain_seconds_left(self) -> float:
        """What remains of shutdown_grace_seconds, so the pod's grace period bounds it all.

        At least a second, so a producer always gets a last chance to flush.
        """
        if self._drain_deadline is None:
            return self.settings.server.shutdown_grace_seconds
        return max(1.0, self._drain_deadline - time.monotonic())


@dataclass(frozen=True, slots=True)
class Intake:
    """What the servers run: the intake ASGI app (its lifespan starts and stops ``runtime``)
    and the runtime, for the probes, the drain and the metrics of refused requests."""

    app: Starlette
    runtime: Runtime


def build_auth(settings: Settings, metrics: RelayMetrics) -> IntakeAuth:
    auth = settings.auth
    basic = None
    if auth.basic_enabled:
        if auth.basic_credentials_file and not file_mode_is_private(auth.basic_credentials_file):
            logger.warning("basic credentials file is open to all users; chmod o-rwx it")
        basic = BasicCredentials(
            auth.basic_credentials,
            auth.basic_credentials_file,
            auth.reload_interval_seconds,
            reloads=metrics.credentials_reloads,
        )
    signature = None
    if auth.signature.enabled:
        signature = SignatureVerifier(auth.signature.secrets, auth.signature.tolerance_seconds)
    if basic is None and signature is None:
        logger.warning("intake accepts unauthenticated deliveries (auth.allow_unauthenticated)")
    return IntakeAuth(basic=basic, signature=signature)


def build_runtime(settings: Settings, sink: EventSink | None = None) -> Runtime:
    metrics = RelayMetrics()
    export_limits(metrics.limits, settings)
    deadlines = Deadlines()
    publisher = None
    if sink is None:
        publisher = KafkaPublisher(
            producer_config(settings.kafka, settings.intake),
            settings.intake.max_inflight_events,
            metrics,
            settings.kafka.delivery_reports,
            max_inflight_bytes=settings.intake.max_inflight_bytes,
            deadlines=deadlines,
        )
        sink = publisher
    spool = None
    if settings.spool.enabled:
        # The spool wraps whatever sink there is, so the endpoint is the same either way.
        limit = publisher.max_record_bytes if publisher else max_message_bytes({})
        spool = sink = build_spooling_sink(settings, sink, metrics, max_record_bytes=limit)
    topics = TopicStatus(settings, metrics.topics_missing) if publisher is not None else None
    return Runtime(
        settings=settings,
        metrics=metrics,
        sink=sink,
        publisher=publisher,
        deadlines=deadlines,
        spool=spool,
        topics=topics,
    )


def export_limits(limits: LimitGauges, settings: Settings) -> None:
    """The limits this process enforces (a worker's share of them with several workers)."""
    limits.max_inflight_events.set(settings.intake.max_inflight_events)
    limits.max_inflight_bytes.set(settings.intake.max_inflight_bytes)
    limits.max_concurrent_connections.set(settings.server.max_concurrent_connections)
    limits.max_body_bytes.set(settings.intake.max_body_bytes)
    limits.spool_max_bytes.set(settings.spool.max_bytes if settings.spool.enabled else 0)


def build_intake(settings: Settings, *, sink: EventSink | None = None) -> Intake:
    """The intake app and its runtime. ``sink`` replaces Kafka for pure-logic tests only."""
    runtime = build_runtime(settings, sink)
    endpoint = DeliveryEndpoint(
        settings,
        build_auth(settings, runtime.metrics),
        RecordBuilder(TopicRouter(settings.topics), KeyPicker(settings.keys), settings.cloudevents),
        runtime.sink,
        runtime.metrics,
        runtime.deadlines,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if runtime.publisher is not None:
            # With a spool, deliveries are taken whether or not Kafka answers: do not hold
            # the start for long waiting to find out.
            await runtime.publisher.start(2.0 if runtime.spool is not None else 10.0)
        if runtime.spool is not None:
            await runtime.spool.start()
        runtime.mark_started()
        logger.info("relay intake started", extra={"path": settings.intake.path})
        poller = start_status_poller(settings.ultracart, runtime.metrics.registry)
        # In the background: start-up does not wait for the answer (see relay.kafka.topic_status).
        topic_check = asyncio.create_task(runtime.topics.run()) if runtime.topics else None
        try:
            yield
        finally:
            if topic_check is not None:
                topic_check.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await topic_check
            if poller is not None:
                await poller.stop()
            # The server has stopped taking requests and finished in-flight ones by now;
            # what remains is records still queued in the producer. Both get what is left
            # of the one grace period, not a period each.
            runtime.begin_drain()
            if runtime.spool is not None:
                await runtime.spool.stop(runtime.drain_seconds_left() / 2)
            if runtime.publisher is not None:
                await runtime.publisher.stop(runtime.drain_seconds_left())
            logger.info("relay intake stopped")

    # A pure ASGI endpoint: Route calls it with (scope, receive, send), no Request built.
    routes = [Route(settings.intake.path, endpoint, methods=["POST"])]
    if settings.server.admin_port == 0:
        routes.extend(admin_routes(runtime))
    shortcut = Middleware(IntakeFirst, path=settings.intake.path, endpoint=endpoint)
    return Intake(Starlette(routes=routes, middleware=[shortcut], lifespan=lifespan), runtime)


class IntakeFirst:
    """Starlette middleware: a POST to the intake path goes straight to the endpoint.

    Inside the app, under Starlette's ServerErrorMiddleware (an unexpected error is still a
    500), but ahead of its ExceptionMiddleware and router, which would build a ``Request``
    nobody reads and match the path against every route for each delivery. Anything else
    (other methods, other paths, the lifespan) takes the usual way, so the route still
    answers 405 and 404 as before.
    """

    def __init__(self, app: ASGIApp, *, path: str, endpoint: ASGIApp) -> None:
        self._app = app
        self._path = path
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self._path:
            await self._endpoint(scope, receive, send)
            return
        await self._app(scope, receive, send)


def create_app(settings: Settings, *, sink: EventSink | None = None) -> Starlette:
    """The intake app alone, for tests that drive it through ASGI (``TestClient``)."""
    return build_intake(settings, sink=sink).app


def readiness_of(runtime: Runtime) -> Readiness:
    """/readyz's answer for one process: started, not draining, Kafka (or the spool) ready."""

    def readiness() -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {
            "started": runtime.started,
            "draining": runtime.draining,
            "kafka": runtime.publisher.ready if runtime.publisher else runtime.sink.ready,
        }
        if runtime.spool is not None:
            # With a spool relay can take deliveries while Kafka is away: ready follows it.
            checks["spool"] = runtime.spool.ready
        if runtime.topics is not None:
            # Routed topics missing where nothing creates them fail readiness; the body names them.
            checks["topics"] = runtime.topics.to_json()
        return runtime.ready, checks

    return readiness


def admin_routes(runtime: Runtime) -> list[Route]:
    """/metrics, /healthz and /readyz of one process."""
    return probe_routes(runtime.metrics.registry, readiness_of(runtime))


def create_admin_app(runtime: Runtime) -> Starlette:
    """Metrics and probes of ``runtime``, to serve on the separate admin port."""
    return Starlette(routes=admin_routes(runtime))
