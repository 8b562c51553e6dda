"""One intake worker process of a multi-process relay (see ``relay.serving.supervisor``).

A worker is a whole relay intake (its own app, runtime and producer) serving the
listening socket the supervisor passes it. It has no admin server: it reports its state
through a shared-memory slot the supervisor reads, and its metrics through
prometheus_client's multiprocess files. It stops on SIGTERM from the supervisor, or by
itself if the supervisor disappears, so a killed supervisor never leaves workers behind.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
from collections.abc import MutableSequence

from relay.log_context import configure_logging
from relay.metrics import pin_worker_pid
from relay.serving.collector import tune_for_serving
from relay.serving.server import AppFactory, Servers, event_loop_runner
from relay.settings import Settings

logger = logging.getLogger(__name__)

# Values of a worker's state slot.
STARTING, STARTED, READY = 0, 1, 2
# How often a worker copies its readiness into its slot: /readyz lags by at most this.
_REPORT_INTERVAL = 0.2


def run_worker(
    settings: Settings,
    app_factory: AppFactory,
    sock: socket.socket,
    states: MutableSequence[int],
    slot: int,
) -> None:
    """Entry point of the worker process (a multiprocessing ``spawn`` target)."""
    # Ctrl-C reaches the whole process group; the supervisor turns it into one SIGTERM
    # per worker, so a worker acting on SIGINT as well would take it as a second signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.server.log_level, settings.server.log_format)
    pin_worker_pid()
    servers = Servers(settings, app_factory, sockets=[sock], admin=False, signals=(signal.SIGTERM,))
    tune_for_serving()
    with event_loop_runner(settings) as runner:
        runner.run(_serve(servers, states, slot))


async def _serve(servers: Servers, states: MutableSequence[int], slot: int) -> None:
    loop = asyncio.get_running_loop()
    parent = multiprocessing.parent_process()
    if parent is not None:
        sentinel = parent.sentinel

        def orphaned() -> None:
            loop.remove_reader(sentinel)
            logger.error("the supervisor is gone; draining and exiting")
            servers.request_stop()

        # The sentinel turns readable when the supervisor exits, however it exits.
        loop.add_reader(sentinel, orphaned)
    reporter = asyncio.create_task(_report(servers, states, slot))
    try:
        await servers.run()
    finally:
        reporter.cancel()
        states[slot] = STARTING


async def _report(servers: Servers, states: MutableSequence[int], slot: int) -> None:
    while True:
        if servers.runtime.ready and servers.intake.started:
            states[slot] = READY
        elif servers.intake.started:
            states[slot] = STARTED
        await asyncio.sleep(_REPORT_INTERVAL)
