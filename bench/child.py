"""Child processes of the benchmark: started in their own process group, always reaped."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """A subprocess the benchmark owns. ``stop`` escalates SIGTERM -> SIGKILL to its group."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        pipes: bool = False,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.args = args
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else self._log,
            stderr=self._log,
            # Its own group, so stop() reaches everything it starts (workers included).
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the whole group. Returns the exit code."""
        code = self.process.poll()
        if code is None:
            self._signal_group(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                code = self.process.wait(10)
        # Whatever the group leader left behind (a worker it failed to reap) goes too.
        self._signal_group(signal.SIGKILL)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._log.close()
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


class LineChild(ChildProcess):
    """A child spoken to in JSON lines: one request line, one answer line."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, "-m", module], env, log_path, pipes=True)

    def send(self, payload: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(orjson.dumps(payload) + b"\n")
        stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        line = _readline(stdout, timeout)
        if not line:
            raise RuntimeError(f"{' '.join(self.args)} exited (code {self.process.poll()})")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def ask(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(payload)
        return self.receive(timeout)


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        # The child writes whole lines and flushes, so one readable event means a full line
        # (or EOF); readline() then returns without blocking for long.
        while not selector.select(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer within {timeout:g} s")
    return stream.readline()
