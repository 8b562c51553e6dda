"""A 3-node Kafka cluster on 127.0.0.1, driven through ``deploy/local/kafka-cluster``.

The replicated fault scenarios kill, pause and restart single nodes of it; the helpers
here say which node leads a partition and when every partition is fully replicated again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from confluent_kafka.admin import AdminClient

from tests.support.broker import REPO_ROOT, SCRIPT_TIMEOUT_S, BrokerScriptError
from tests.support.waiting import wait_until

CLUSTER_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka-cluster"
NODES = (1, 2, 3)


class LocalCluster:
    """Nodes 1, 2 and 3, each broker and controller; ``bootstrap`` names all three."""

    def __init__(self) -> None:
        self.bootstrap = self._script("bootstrap").strip()

    def _script(self, *args: str) -> str:
        result = subprocess.run(
            [str(CLUSTER_SCRIPT), *args],
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerScriptError(
                f"`{CLUSTER_SCRIPT} {' '.join(args)}` failed (exit {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, *nodes: int, fresh: bool = False) -> None:
        """Start ``nodes`` (all if none) and wait until each accepts clients."""
        self._script("start", *(["--fresh"] if fresh else []), *map(str, nodes))

    def stop(self, *nodes: int) -> None:
        """SIGTERM: a clean shutdown, which moves leadership away first."""
        self._script("stop", *map(str, nodes))

    def kill(self, *nodes: int) -> None:
        """SIGKILL, returning once the JVMs are gone."""
        self._script("kill", *map(str, nodes))

    def pause(self, *nodes: int) -> None:
        self._script("pause", *map(str, nodes))

    def resume(self, *nodes: int) -> None:
        self._script("resume", *map(str, nodes))

    def pid(self, node: int) -> int:
        return int(self._script("pid", str(node)))

    def _admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id leading ``topic``'s ``partition`` right now."""
        metadata = self._admin().list_topics(topic, timeout=10)
        leader: int = metadata.topics[topic].partitions[partition].leader
        if leader not in NODES:
            raise RuntimeError(f"{topic}[{partition}] has no leader (metadata says {leader})")
        return leader

    def wait_fully_replicated(self, topics: Iterable[str], timeout: float = 60.0) -> None:
        """Until every partition of ``topics`` has a leader and all three replicas in sync.

        A scenario starts only from that state, so what it measures is its own fault and
        not the tail of the previous one.
        """
        names = list(topics)
        admin = self._admin()

        def replicated() -> bool:
            found = admin.list_topics(timeout=5).topics
            for name in names:
                topic = found.get(name)
                if topic is None or topic.error is not None or not topic.partitions:
                    return False
                for p in topic.partitions.values():
                    if p.error is not None or p.leader < 0 or len(p.isrs) < len(NODES):
                        return False
            return True

        wait_until(replicated, timeout, interval=0.25, message=f"not fully replicated: {names}")


@contextmanager
def cluster_of_its_own() -> Iterator[LocalCluster]:
    """The cluster, started empty and stopped afterwards (the tests own its ports)."""
    cluster = LocalCluster()
    cluster.start(fresh=True)
    try:
        yield cluster
    finally:
        cluster.stop()
