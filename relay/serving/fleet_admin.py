"""The supervisor's admin server: every worker's metrics in one scrape, and fleet probes.

Workers write their metrics to prometheus_client's multiprocess files in a directory of the
supervisor's own; ``FleetMetrics`` reads them all at scrape time, next to the supervisor's
own series (how many workers live, how often they were restarted, the build info, and the
UltraCart status poller when it is on), and every process's ``process_*`` series labelled by
``worker`` (``relay.serving.process_metrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.applications import Starlette

from relay.metrics import build_info
from relay.serving.probes import Readiness, probe_routes
from relay.serving.process_metrics import WorkerProcessCollector


class FleetMetrics:
    def __init__(
        self,
        multiprocess_dir: str,
        live_workers: Callable[[], int],
        process_ids: Callable[[], Mapping[str, int]],
    ) -> None:
        """``process_ids``: the ``worker`` label -> pid of the supervisor and each live worker."""
        self.registry = CollectorRegistry()
        # prometheus_client.multiprocess has no annotations.
        MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self.registry.register(WorkerProcessCollector(process_ids))
        PlatformCollector(registry=self.registry)
        self.workers = Gauge(
            "relay_workers", "Intake worker processes alive right now.", registry=self.registry
        )
        self.workers.set_function(lambda: float(live_workers()))
        self.restarts = Counter(
            "relay_worker_restarts",
            "Intake workers restarted after exiting unexpectedly.",
            registry=self.registry,
        )
        build_info(self.registry)


def fleet_admin_app(metrics: FleetMetrics, readiness: Readiness) -> Starlette:
    """``/metrics``, ``/healthz`` and ``/readyz`` for relay as a whole.

    ``readiness`` returns whether every worker is ready (and no shutdown has begun), with
    the details shown in the body.
    """
    return Starlette(routes=probe_routes(metrics.registry, readiness))
