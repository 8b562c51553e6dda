"""Several intake worker processes under one supervisor, for ``server.workers`` > 1.

Why processes: one Python process runs relay's request handling on one core at a time (the
GIL), so a relay on N cores is N processes, each a whole intake with its own producer.

Sockets. Before any worker starts, the supervisor binds one listening socket per worker slot,
all on the intake address with SO_REUSEPORT, and keeps them open for its whole life. The
kernel spreads new connections evenly over the sockets; a single shared socket instead lets
whichever worker wakes first accept a whole burst of connections, which leaves a keep-alive
sender's connections piled on one worker. Because the supervisor holds every slot's socket,
connections that arrive while a slot's worker is being restarted wait in that socket's
backlog for the replacement rather than being refused. Where SO_REUSEPORT is missing, all
workers share one socket.

Workers are spawned, not forked: the supervisor runs an event loop and threads, which a
fork would copy in an unknown state. A worker that exits unexpectedly is restarted on its
socket, after a back-off that doubles while it keeps exiting within seconds of starting.
A worker that exits before it ever started serving stops relay with exit code 1, as a
single-process relay exits when its start-up fails.

Metrics. Workers run prometheus_client in multiprocess mode, in a fresh private directory
(PROMETHEUS_MULTIPROC_DIR, set for the workers only; the supervisor's own metrics stay in
memory). Counters and histograms add up over every worker that ever ran, so they never go
backwards when a worker is replaced; gauges add up over live workers (in-flight work, queue
sizes) or take their minimum (``relay_kafka_ready``: 1 only if every worker reaches Kafka).
The supervisor's admin server serves them in one scrape (``relay.serving.fleet_admin``),
with each process's ``process_*`` series read from /proc and labelled ``worker``.

Readiness. Each worker copies its state (starting, started, ready) into a shared-memory slot
several times a second; ``/readyz`` is 200 only while every slot says ready and no shutdown
has begun.

Signals. SIGTERM or SIGINT turns ``/readyz`` to 503, closes the supervisor's copies of the
sockets and sends SIGTERM to each worker, which drains as a single-process relay does (in
flight deliveries finish, the producer flushes). A second signal is passed on as well, so
workers stop waiting. Workers still alive ``shutdown_grace_seconds`` + 10 s later are
killed. Workers ignore SIGINT (Ctrl-C reaches the whole process group) and drain by
themselves if the supervisor dies.

Limits. ``intake.max_inflight_events`` and ``server.max_concurrent_connections`` bound relay
as a whole, so each worker enforces 1/N of them. The UltraCart status poller runs once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Mapping
from multiprocessing.context import SpawnProcess
from typing import Any

import msgspec
import uvicorn
from prometheus_client.multiprocess import mark_process_dead

from relay.control.status_poller import start_status_poller
from relay.serving.fleet_admin import FleetMetrics, fleet_admin_app
from relay.serving.process_metrics import SUPERVISOR
from relay.serving.server import AppFactory, event_loop_runner, run_server, server_config
from relay.serving.worker import READY, STARTED, STARTING, run_worker
from relay.settings import Settings, StatusPollSettings

logger = logging.getLogger(__name__)

# A worker exiting sooner than this after its start counts as failing to run.
_EARLY_EXIT_SECONDS = 10.0
_BACKOFF_FIRST_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 30.0
# Beyond the drain time the workers are given, before they are killed.
_KILL_MARGIN_SECONDS = 10.0
_WATCH_INTERVAL_SECONDS = 0.1
_BACKLOG = 2048


def worker_settings(settings: Settings) -> Settings:
    """Each worker's settings: its share of relay-wide limits, and no status poller."""
    count = settings.server.workers
    server = msgspec.structs.replace(
        settings.server,
        max_concurrent_connections=math.ceil(settings.server.max_concurrent_connections / count),
    )
    intake = msgspec.structs.replace(
        settings.intake,
        # Never below one delivery's worth, or a large delivery could not be admitted at all.
        max_inflight_events=max(
            settings.intake.max_events_per_delivery, settings.intake.max_inflight_events // count
        ),
        # No floor needed: a delivery is admitted whatever its size when nothing is in flight.
        max_inflight_bytes=max(1, settings.intake.max_inflight_bytes // count),
    )
    return msgspec.structs.replace(
        settings, server=server, intake=intake, ultracart=StatusPollSettings()
    )


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address (one shared one without SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets if reuse_port else sockets * count


@dataclasses.dataclass
class _Slot:
    index: int
    sock: socket.socket
    process: SpawnProcess | None = None
    started_at: float = 0.0
    # Seen serving at least once; a slot that never was failed its start-up.
    served: bool = False
    early_exits: int = 0
    restart: asyncio.TimerHandle | None = None


class Supervisor:
    def __init__(self, settings: Settings, app_factory: AppFactory) -> None:
        self.settings = settings
        self.app_factory = app_factory
        self.worker_settings = worker_settings(settings)
        self.context = multiprocessing.get_context("spawn")
        count = settings.server.workers
        # One byte per worker: STARTING, STARTED or READY, written by the worker.
        self.states = self.context.RawArray("b", count)
        server = settings.server
        self.slots = [
            _Slot(i, sock) for i, sock in enumerate(bind_sockets(server.host, server.port, count))
        ]
        self.metrics_dir = tempfile.mkdtemp(prefix="relay-metrics-")
        self.metrics = FleetMetrics(self.metrics_dir, self.live_workers, self.process_ids)
        admin_app = fleet_admin_app(self.metrics, self.readiness)
        self.admin = uvicorn.Server(server_config(admin_app, settings, admin=True))
        self.draining = False
        self.failed = False
        self._finished: asyncio.Event | None = None

    def live_workers(self) -> int:
        return sum(1 for slot in self.slots if slot.process is not None)

    def process_ids(self) -> dict[str, int]:
        """The ``worker`` label of each live process's ``process_*`` series -> its pid."""
        pids = {SUPERVISOR: os.getpid()}
        for slot in self.slots:
            if slot.process is not None and slot.process.pid is not None:
                pids[str(slot.index)] = slot.process.pid
        return pids

    def readiness(self) -> tuple[bool, Mapping[str, Any]]:
        names = {STARTING: "starting", STARTED: "started", READY: "ready"}
        workers = [
            {
                "worker": slot.index,
                "pid": slot.process.pid if slot.process is not None else None,
                "state": names.get(self.states[slot.index], "starting")
                if slot.process is not None
                else "down",
            }
            for slot in self.slots
        ]
        ready = not self.draining and all(w["state"] == "ready" for w in workers)
        return ready, {"draining": self.draining, "workers": workers}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        admin_task = asyncio.create_task(run_server(self.admin))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        for slot in self.slots:
            self._start(slot)
        poller = start_status_poller(self.settings.ultracart, self.metrics.registry)
        watcher = asyncio.create_task(self._watch())
        logger.info(
            "relay supervisor started",
            extra={"workers": len(self.slots), "port": self.settings.server.port},
        )
        try:
            await self._finished.wait()
        finally:
            watcher.cancel()
            if poller is not None:
                await poller.stop()
            self.admin.should_exit = True
            await admin_task

    def close(self) -> None:
        for slot in self.slots:
            slot.sock.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _start(self, slot: _Slot) -> None:
        slot.restart = None
        if self.draining:
            return
        self.states[slot.index] = STARTING
        process = self.context.Process(
            target=run_worker,
            args=(self.worker_settings, self.app_factory, slot.sock, self.states, slot.index),
            name=f"relay-worker-{slot.index}",
        )
        process.start()
        slot.process = process
        slot.started_at = time.monotonic()
        asyncio.get_running_loop().add_reader(process.sentinel, self._exited, slot, process)

    async def _watch(self) -> None:
        while True:
            for slot in self.slots:
                if slot.process is not None and self.states[slot.index] >= STARTED:
                    slot.served = True
            await asyncio.sleep(_WATCH_INTERVAL_SECONDS)

    def _exited(self, slot: _Slot, process: SpawnProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(process.sentinel)
        process.join()
        pid, code = process.pid, process.exitcode
        process.close()
        # Its live gauges must stop counting; its counters stay in the sum. (No annotations
        # in prometheus_client.multiprocess.)
        mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        slot.process = None
        self.states[slot.index] = STARTING
        if self.draining:
            logger.info("worker stopped", extra={"worker": slot.index, "exit_code": code})
            self._check_finished()
            return
        if not slot.served:
            logger.error(
                "worker failed to start; stopping relay",
                extra={"worker": slot.index, "exit_code": code},
            )
            self.failed = True
            self.request_stop()
            return
        lived = time.monotonic() - slot.started_at
        slot.early_exits = slot.early_exits + 1 if lived < _EARLY_EXIT_SECONDS else 0
        delay = min(_BACKOFF_MAX_SECONDS, _BACKOFF_FIRST_SECONDS * 2 ** (slot.early_exits - 1))
        delay = delay if slot.early_exits else 0.0
        logger.error(
            "worker exited unexpectedly; restarting it",
            extra={"worker": slot.index, "exit_code": code, "restart_in_seconds": delay},
        )
        self.metrics.restarts.inc()
        slot.restart = loop.call_later(delay, self._start, slot)

    def request_stop(self) -> None:
        live = [slot.process for slot in self.slots if slot.process is not None]
        if self.draining:
            # A second signal: pass it on, so workers stop waiting for in-flight work.
            for process in live:
                _terminate(process)
            return
        logger.info("stopping: draining every worker")
        self.draining = True
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
            # The workers hold their own copies; once they stop accepting, the port closes.
            slot.sock.close()
        for process in live:
            _terminate(process)
        grace = self.settings.server.shutdown_grace_seconds + _KILL_MARGIN_SECONDS
        asyncio.get_running_loop().call_later(grace, self._kill_stragglers)
        self._check_finished()

    def _kill_stragglers(self) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                logger.error(
                    "worker did not stop in time; killing it", extra={"worker": slot.index}
                )
                slot.process.kill()

    def _check_finished(self) -> None:
        if self._finished is not None and self.live_workers() == 0:
            self._finished.set()

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _terminate(process: SpawnProcess) -> None:
    # Already gone if it raises; its sentinel will tell.
    with contextlib.suppress(ProcessLookupError):
        process.terminate()


def supervise(settings: Settings, app_factory: AppFactory) -> int:
    try:
        supervisor = Supervisor(settings, app_factory)
    except OSError as exc:
        logger.error(
            "cannot listen on the intake address",
            extra={"host": settings.server.host, "port": settings.server.port, "error": str(exc)},
        )
        return 1
    try:
        with event_loop_runner(settings) as runner:
            runner.run(supervisor.run())
    finally:
        supervisor.close()
    return supervisor.exit_code
