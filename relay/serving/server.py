"""Run relay: the intake server and the admin server (metrics, probes) in one event loop.

Shutdown order on SIGTERM or SIGINT:
1. ``/readyz`` turns 503 at once, so load balancers stop sending deliveries;
2. the intake server stops accepting, lets in-flight deliveries finish (their answer
   still waits for Kafka) within ``shutdown_grace_seconds``;
3. the app's lifespan flushes the producer;
4. the admin server stops last, so probes and the final metrics stay readable meanwhile.

With ``server.workers`` above 1 this runs in each worker process, under the supervisor of
``relay.serving.supervisor``, which owns the sockets, the signals and the admin server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import socket
from collections.abc import Callable, Sequence

import uvicorn
from starlette.applications import Starlette

from relay.metrics import RelayMetrics, TlsMetrics
from relay.serving.app import Intake, Runtime, build_intake, create_admin_app
from relay.serving.http_guard import guarded_http_protocol
from relay.serving.tls import MINIMUM_VERSION, CertificateReloader
from relay.settings import Settings

logger = logging.getLogger(__name__)

# Builds the intake app and its runtime from settings: ``build_intake`` in production; the
# benchmark passes its reference apps to measure the stack's own ceiling under exactly the
# same server code. A module-level function: worker processes are spawned with it.
AppFactory = Callable[[Settings], Intake]


def server_config(
    app: Starlette,
    settings: Settings,
    *,
    admin: bool = False,
    metrics: RelayMetrics | None = None,
) -> uvicorn.Config:
    """uvicorn's configuration for the intake server, or with ``admin`` the admin server.

    ``metrics``: where the requests the head guard refuses before they reach ``app`` are
    counted (``relay_http_refused_total``); the intake server passes its app's metrics.
    """
    server = settings.server
    on_refused = None
    if metrics is not None:
        refused = metrics.http_refused

        def on_refused(reason: str) -> None:
            refused.labels(reason=reason).inc()

    return uvicorn.Config(
        app,
        host=server.admin_host if admin else server.host,
        port=server.admin_port if admin else server.port,
        # uvloop and httptools when installed (uvicorn[standard]); the stock loop and h11
        # otherwise, so relay still runs where the C extensions cannot be built. httptools
        # comes with relay's limits on the request head (size and time; see http_guard).
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=guarded_http_protocol(
            server.max_header_bytes, server.header_timeout_seconds, on_refused
        ),
        h11_max_incomplete_event_size=server.max_header_bytes,
        lifespan="off" if admin else "on",
        access_log=server.access_log and not admin,
        log_config=None,
        timeout_keep_alive=int(server.keep_alive_seconds),
        timeout_graceful_shutdown=int(server.shutdown_grace_seconds),
        limit_concurrency=None if admin else server.max_concurrent_connections,
        server_header=False,
        # HTTPS on intake only: the admin port is internal and probed by kubelet and compose
        # as plain HTTP. Servers adopts the context uvicorn builds (relay.serving.tls reloads it).
        ssl_certfile=server.tls_cert_file if server.tls_enabled and not admin else None,
        ssl_keyfile=server.tls_key_file if server.tls_enabled and not admin else None,
        # The standard library's cipher choice for TLS servers; older uvicorn releases set
        # "TLSv1" by default, which would leave TLS 1.2 with legacy CBC suites only.
        ssl_ciphers=None,
    )


class Servers:
    """Intake (and, unless told otherwise, admin) server of one process, and its signals.

    A worker process of a multi-process relay passes its share of the listening sockets and
    ``admin=False`` (the supervisor serves the probes), and leaves SIGINT to the supervisor.
    """

    def __init__(
        self,
        settings: Settings,
        app_factory: AppFactory = build_intake,
        *,
        sockets: Sequence[socket.socket] | None = None,
        admin: bool = True,
        signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        self.settings = settings
        intake = app_factory(settings)
        self.app = intake.app
        self.runtime: Runtime = intake.runtime
        self.intake = uvicorn.Server(
            server_config(self.app, settings, metrics=self.runtime.metrics)
        )
        self.tls = self._adopt_tls() if settings.server.tls_enabled else None
        # Bind and listen before the lifespan runs: once /readyz says ready the intake port
        # must already take connections. uvicorn alone binds only after start-up completes,
        # and its bind_socket() does not listen: until create_server() does, after the
        # lifespan, a connection would be refused. Listening now, it waits in the backlog.
        if sockets is not None:
            self.sockets = list(sockets)
        else:
            self.sockets = [self.intake.config.bind_socket()]
            self.sockets[0].listen(self.intake.config.backlog)
        self.signals = signals
        self.admin: uvicorn.Server | None = None
        if admin and settings.server.admin_port:
            self.admin = uvicorn.Server(
                server_config(create_admin_app(self.runtime), settings, admin=True)
            )

    def _adopt_tls(self) -> CertificateReloader:
        """The intake server's SSLContext, at least TLS 1.2, with a reloader for renewals."""
        config = self.intake.config
        # Loaded here rather than in _serve() (which then skips it), so that the context the
        # reloader updates is the very one the server hands every connection it accepts.
        config.load()
        assert config.ssl is not None
        config.ssl.minimum_version = MINIMUM_VERSION
        server = self.settings.server
        reloader = CertificateReloader(
            config.ssl,
            server.tls_cert_file,
            server.tls_key_file,
            server.tls_reload_interval_seconds,
            TlsMetrics(self.runtime.metrics.registry),
        )
        reloader.start()
        return reloader

    def request_stop(self) -> None:
        if self.intake.should_exit:
            # A second signal: stop waiting for in-flight work.
            self.intake.force_exit = True
            return
        logger.info("stopping: draining in-flight deliveries")
        self.runtime.begin_drain()
        self.intake.should_exit = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.signals:
            loop.add_signal_handler(sig, self.request_stop)
        reload_task = asyncio.create_task(self.tls.watch()) if self.tls is not None else None
        admin_task = None
        if self.admin is not None:
            admin_task = asyncio.create_task(run_server(self.admin))
        try:
            await run_server(self.intake, self.sockets)
        finally:
            if reload_task is not None:
                reload_task.cancel()
            if self.admin is not None and admin_task is not None:
                self.admin.should_exit = True
                await admin_task


async def run_server(
    server: uvicorn.Server, sockets: Sequence[socket.socket] | None = None
) -> None:
    """Serve until ``server.should_exit``, under the caller's signal handlers.

    uvicorn's public serve() installs its own signal handlers and re-raises the signal
    afterwards; relay runs two servers in one process (intake and admin, or the
    supervisor's admin), which need one owner of the signals. So this is the one place
    relay calls uvicorn's private ``Server._serve`` (pinned below uvicorn's next minor
    release in pyproject.toml, as is the protocol class relay.serving.http_guard extends).
    """
    await server._serve(list(sockets) if sockets is not None else None)


def event_loop_runner(settings: Settings) -> asyncio.Runner:
    """A runner on the loop uvicorn is configured for (uvloop when installed)."""
    loop_factory = server_config(Starlette(), settings).get_loop_factory()
    return asyncio.Runner(loop_factory=loop_factory) if loop_factory else asyncio.Runner()
