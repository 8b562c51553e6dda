"""The admin port's three routes, shared by a single process and the supervisor of many.

``/metrics`` renders a registry; ``/healthz`` says the process answers (liveness: Kafka
trouble or a crashed worker is not a reason for Kubernetes to restart the pod, since relay
recovers from both itself); ``/readyz`` is 200 only while deliveries can be acknowledged,
with the checks behind the answer in its JSON body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.intake.responses import json_response

# Whether relay is ready, and the details shown in /readyz's body.
Readiness = Callable[[], tuple[bool, Mapping[str, Any]]]


def probe_routes(registry: CollectorRegistry, readiness: Readiness) -> list[Route]:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_request: Request) -> Response:
        return json_response(200, {"status": "alive"})

    async def readyz(_request: Request) -> Response:
        ready, details = readiness()
        return json_response(200 if ready else 503, {"ready": ready, **details})

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
