"""A single-node Kafka broker on a port of its own, driven through ``deploy/local/kafka``.

The tests' session broker, the private brokers that fault tests stop, kill or pause, and
the benchmark's broker are all this one runner; each port has its own data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import free_ports
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka"
# A first start may resolve Kafka with Maven before the script's own 90 s readiness timeout.
SCRIPT_TIMEOUT_S = 600
# The script's per-broker settings: only what a LocalBroker is given may reach it.
_BROKER_ENV = (
    "RELAY_KAFKA_CONTROLLER_PORT",
    "RELAY_KAFKA_NODE_ID",
    "RELAY_KAFKA_QUORUM_VOTERS",
    "RELAY_KAFKA_CLUSTER_ID",
    "RELAY_KAFKA_REPLICATION",
    "RELAY_KAFKA_EXTRA_PROPERTIES",
    "RELAY_KAFKA_FORMAT_ARGS",
)


class BrokerScriptError(RuntimeError):
    """``deploy/local/kafka`` exited non-zero; the message ends with its stderr."""


class LocalBroker:
    """One broker on 127.0.0.1:``port``; its data dir is that port's own.

    ``env`` sets more of the script's variables (extra listeners, SCRAM users at format).
    """

    def __init__(self, port: int, env: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = dict(env or {})

    def run_script(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``deploy/local/kafka <args>`` for this port; the result is not checked."""
        # Derived from the port unless set; a value meant for another broker must not leak in.
        env = {k: v for k, v in os.environ.items() if k not in _BROKER_ENV}
        env |= {**self.env, "RELAY_KAFKA_PORT": str(self.port)}
        return subprocess.run(
            [str(KAFKA_SCRIPT), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )

    def _script(self, *args: str) -> str:
        result = self.run_script(*args)
        if result.returncode != 0:
            raise BrokerScriptError(
                f"`RELAY_KAFKA_PORT={self.port} {KAFKA_SCRIPT} {' '.join(args)}` failed "
                f"(exit {result.returncode}):\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def running(self) -> bool:
        return self.run_script("status").returncode == 0

    def start(self, fresh: bool = False) -> str:
        """Start (or find running) and return the bootstrap address the script printed.

        ``fresh`` empties the data dir first: topics of earlier runs would otherwise pile up
        and make every later start slower.
        """
        lines = self._script("start", *(["--fresh"] if fresh else [])).strip().splitlines()
        if not lines:
            raise BrokerScriptError(f"{KAFKA_SCRIPT} start printed no bootstrap address")
        self.bootstrap = lines[-1]
        return self.bootstrap

    def stop(self) -> None:
        self._script("stop")

    def pid(self) -> int:
        home = Path(os.environ.get("RELAY_KAFKA_HOME", REPO_ROOT / ".cache" / "kafka"))
        return int((home / f"data-{self.port}" / "kafka.pid").read_text().strip())

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
            wait_until(lambda: not _alive(pid), timeout=30, interval=0.01, message="broker lives")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def broker_of_its_own() -> Iterator[LocalBroker]:
    """A fresh broker on a free port, stopped afterwards: for tests that stop, kill or pause it."""
    # The controller's port is picked too: the script's default (port + 1) may be taken.
    port, controller = free_ports(2)
    broker = LocalBroker(port, {"RELAY_KAFKA_CONTROLLER_PORT": str(controller)})
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()
