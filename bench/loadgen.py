"""Open-loop HTTP/1.1 load generator, run as its own process: ``python -m bench.loadgen``.

Open loop: request *i* of a step is due at ``t0 + i / rate`` whether or not earlier ones
have been answered, and its latency is measured from that intended time, not from when a
connection was free to send it. A server that stalls therefore shows its stall in every
request that should have gone out meanwhile, instead of hiding it by slowing the sender
down (coordinated omission).

Requests go over a pool of keep-alive connections; one request at a time per connection.
A due request takes the longest-idle connection, opens a new one if the pool may grow, and
otherwise waits in a queue (its wait counts in its latency). Everything is asyncio
protocols and prebuilt request bytes, so the sender costs a few microseconds per request.

Protocol: the first stdin line is a JSON ``Setup``; each further line a JSON ``Step``; for
each step one JSON result line is written to stdout. EOF ends the process.
"""

from __future__ import annotations

import asyncio
import base64
import resource
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from bench.stats import latency_summary

# Scheduling granularity: the pacer sleeps at least this long between bursts. Finer sleeps
# spin the event loop (uvloop rounds timers to 1 ms) and would make the sender the bottleneck.
_TICK = 0.001


@dataclass(frozen=True)
class Setup:
    host: str
    port: int
    path: str
    bodies_file: str
    username: str
    password: str
    connections: int
    max_connections: int

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Setup:
        return cls(**raw)


@dataclass(frozen=True)
class Step:
    rate: float
    warmup: float
    duration: float
    # How long to wait, after the last request is due, for answers still outstanding.
    drain: float


def build_requests(setup: Setup) -> list[bytes]:
    token = base64.b64encode(f"{setup.username}:{setup.password}".encode()).decode()
    head = (
        f"POST {setup.path} HTTP/1.1\r\nHost: {setup.host}:{setup.port}\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    bodies = Path(setup.bodies_file).read_bytes().splitlines()
    return [head + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in bodies if body]


class _Connection(asyncio.Protocol):
    def __init__(self, generator: Generator) -> None:
        self._generator = generator
        self.transport: asyncio.Transport | None = None
        self.intended = 0.0
        self._buffer = bytearray()
        self._need = -1
        self._status = 0
        # The server said it closes after this answer (uvicorn does so on its 503s).
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            self._status = int(head[9:12])
            self.closing = b"\r\nconnection: close" in head
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            self._need = end + 4 + length
        if len(buffer) >= self._need:
            del buffer[: self._need]
            self._need = -1
            self._generator.answered(self, self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._generator.lost(self)


class Generator:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.requests = build_requests(setup)
        self._next_request = 0
        self._idle: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()
        self._opening = 0
        self._waiting: deque[float] = deque()
        self._window = (0.0, 0.0)
        self._latencies = array("d")
        self._status: dict[int, int] = {}
        self._errors: dict[str, int] = {}
        self._outstanding = 0
        self._lag = array("d")
        self._all_answered: asyncio.Event | None = None
        # Every 200 since start, warm-up included: checked against relay's own counters.
        self.ok_total = 0

    async def open_pool(self) -> None:
        await asyncio.gather(*(self._open() for _ in range(self.setup.connections)))

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._opening += 1
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self), self.setup.host, self.setup.port
            )
        except OSError:
            self._count_error("connect")
            if self._waiting:
                # The request that asked for this connection must not wait forever.
                self._fail_waiting("connect")
            return
        finally:
            self._opening -= 1
        self._release(connection)

    def _count_error(self, kind: str) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1

    def _fail_waiting(self, kind: str) -> None:
        intended = self._waiting.popleft()
        if self._in_window(intended):
            self._count_error(kind)
        self._done_one()

    def _in_window(self, intended: float) -> bool:
        return self._window[0] <= intended < self._window[1]

    def _take_request(self) -> bytes:
        request = self.requests[self._next_request]
        self._next_request = (self._next_request + 1) % len(self.requests)
        return request

    def dispatch(self, intended: float) -> None:
        self._outstanding += 1
        if self._idle:
            connection = self._idle.popleft()
            self._busy.add(connection)
            connection.send(self._take_request(), intended)
            return
        self._waiting.append(intended)
        if len(self._busy) + self._opening < self.setup.max_connections:
            asyncio.get_running_loop().create_task(self._open())

    def _release(self, connection: _Connection) -> None:
        if self._waiting:
            self._busy.add(connection)
            connection.send(self._take_request(), self._waiting.popleft())
        else:
            self._idle.append(connection)

    def answered(self, connection: _Connection, status: int) -> None:
        now = time.perf_counter()
        intended = connection.intended
        if status == 200:
            self.ok_total += 1
        if self._in_window(intended):
            self._latencies.append(now - intended)
            self._status[status] = self._status.get(status, 0) + 1
        self._busy.discard(connection)
        self._done_one()
        if connection.closing or connection.transport is None:
            if connection.transport is not None:
                connection.transport.close()
            if self._waiting:
                asyncio.get_running_loop().create_task(self._open())
            return
        self._release(connection)

    def lost(self, connection: _Connection) -> None:
        if connection in self._busy:
            # Closed with a request outstanding (a server that sends "connection: close"
            # closes only after the answer, which answered() has already taken).
            self._busy.discard(connection)
            if self._in_window(connection.intended):
                self._count_error("closed")
            self._done_one()
        elif connection in self._idle:
            self._idle.remove(connection)

    def _done_one(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0 and self._all_answered is not None:
            self._all_answered.set()

    async def run_step(self, step: Step) -> dict[str, Any]:
        self._latencies = array("d")
        self._lag = array("d")
        self._status = {}
        self._errors = {}
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        total = int(step.rate * (step.warmup + step.duration))
        t0 = time.perf_counter() + _TICK
        self._window = (t0 + step.warmup, t0 + step.warmup + step.duration)
        sent = 0
        in_window = 0
        while sent < total:
            now = time.perf_counter()
            due = min(total, int((now - t0) * step.rate) + 1)
            while sent < due:
                intended = t0 + sent / step.rate
                if self._in_window(intended):
                    in_window += 1
                    self._lag.append(now - intended)
                self.dispatch(intended)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(_TICK, t0 + sent / step.rate - time.perf_counter()))
        last_due = time.perf_counter()
        if self._outstanding:
            self._all_answered = asyncio.Event()
            try:
                async with asyncio.timeout(step.drain):
                    await self._all_answered.wait()
            except TimeoutError:
                self._abandon_outstanding()
            finally:
                self._all_answered = None
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
            usage_after.ru_stime - usage_before.ru_stime
        )
        answered = len(self._latencies)
        return {
            "offered_rate": step.rate,
            "window_seconds": step.duration,
            "requests": in_window,
            "answered": answered,
            "status": {str(k): v for k, v in sorted(self._status.items())},
            "errors": self._errors,
            "latency": latency_summary(self._latencies),
            "dispatch_lag": latency_summary(self._lag),
            "generator_cpu_seconds": cpu,
            "generator_wall_seconds": last_due - t0,
            "connections": len(self._idle) + len(self._busy),
            "ok_total": self.ok_total,
        }

    def _abandon_outstanding(self) -> None:
        """Answers that did not come within the drain time are errors; their connections go."""
        for connection in list(self._busy):
            if self._in_window(connection.intended):
                self._count_error("timeout")
            self._busy.discard(connection)
            if connection.transport is not None:
                connection.transport.abort()
        for intended in self._waiting:
            if self._in_window(intended):
                self._count_error("timeout")
        self._waiting.clear()
        self._outstanding = 0


async def _serve(lines: asyncio.StreamReader) -> None:
    setup = Setup.parse(orjson.loads(await lines.readline()))
    generator = Generator(setup)
    await generator.open_pool()
    _reply({"ready": True, "requests": len(generator.requests)})
    while line := await lines.readline():
        step = Step(**orjson.loads(line))
        _reply(await generator.run_step(step))


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.buffer.flush()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await _serve(reader)


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main())
    else:
        uvloop.run(_main())


if __name__ == "__main__":
    main()
