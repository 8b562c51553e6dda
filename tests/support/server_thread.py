"""Serve an ASGI app on 127.0.0.1 from a background thread, for real-HTTP tests."""

from __future__ import annotations

import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from tests.support.waiting import wait_until


class ServerThread:
    """uvicorn on an ephemeral loopback port; ``url`` is valid once started."""

    def __init__(self, app: ASGIApp, port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="none",
            http="h11",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="test-server", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        wait_until(self._started, timeout, interval=0.01, message="test server did not start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def _started(self) -> bool:
        if not self._thread.is_alive():
            raise RuntimeError("test server exited before it started")
        return self.server.started

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
