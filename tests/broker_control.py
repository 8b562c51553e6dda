"""A private single-node broker a test may stop, kill or pause without disturbing others."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.relay_process import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka"


class LocalBroker:
    """Drives ``deploy/local/kafka`` for one port; its data dir is that port's own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        home = Path(os.environ.get("RELAY_KAFKA_HOME", REPO_ROOT / ".cache" / "kafka"))
        self._pid_file = home / f"data-{port}" / "kafka.pid"

    def _script(self, *args: str, timeout: float = 600) -> str:
        env = dict(os.environ, RELAY_KAFKA_PORT=str(self.port))
        env.pop("RELAY_KAFKA_CONTROLLER_PORT", None)
        result = subprocess.run(
            [str(KAFKA_SCRIPT), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def start(self, fresh: bool = False) -> None:
        self._script("start", *(["--fresh"] if fresh else []))

    def stop(self) -> None:
        self._script("stop")

    def pid(self) -> int:
        return int(self._pid_file.read_text().strip())

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid(), sig)

    def kill(self) -> None:
        """SIGKILL: the broker dies without flushing or closing anything."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            # Not our child (the script daemonised it): wait until it is gone.
            while _alive(pid):
                os.sched_yield()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def broker_of_its_own() -> Iterator[LocalBroker]:
    """A fresh broker on a free port, stopped afterwards: for tests that stop, kill or pause it."""
    broker = LocalBroker(free_port())
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()
