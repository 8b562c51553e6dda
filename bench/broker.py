"""The benchmark's Kafka: its own single-node broker (deploy/local/kafka), or one given."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports NewTopic without declaring it, which mypy --strict rejects.
from confluent_kafka.cimpl import NewTopic

from bench.child import REPO_ROOT

KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka"
# Not 9092 (make run) nor 19092 (tests): a benchmark must not share a broker with anything.
DEFAULT_PORT = 19392


class LocalBroker:
    """Starts a fresh broker on ``port`` and stops it again; its data dir is that port's own."""

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self.bootstrap = ""

    def _script(self, *args: str) -> str:
        env = dict(os.environ, RELAY_KAFKA_PORT=str(self.port))
        env.pop("RELAY_KAFKA_CONTROLLER_PORT", None)
        result = subprocess.run(
            [str(KAFKA_SCRIPT), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> str:
        # --fresh: topics of earlier runs would otherwise make every start slower.
        lines = self._script("start", "--fresh").strip().splitlines()
        self.bootstrap = lines[-1]
        return self.bootstrap

    def stop(self) -> None:
        self._script("stop")

    def pid(self) -> int | None:
        home = Path(os.environ.get("RELAY_KAFKA_HOME", REPO_ROOT / ".cache" / "kafka"))
        try:
            return int((home / f"data-{self.port}" / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def create_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 60) -> None:
    """Create ``names`` (existing ones are kept) and wait until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
        operation_timeout=timeout,
    )
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if not (exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS"):
                raise
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(
            n in topics
            and topics[n].error is None
            and all(p.leader >= 0 for p in topics[n].partitions.values())
            for n in names
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} not ready within {timeout:g} s")
        time.sleep(0.2)
