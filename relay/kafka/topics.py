"""Create the topics relay writes to, for clusters where auto-creation is off (most)."""

from __future__ import annotations

from confluent_kafka import KafkaException

# confluent_kafka.admin re-exports NewTopic without declaring it, which mypy --strict rejects.
from confluent_kafka.cimpl import NewTopic

from relay.events.routing import TopicRouter
from relay.kafka.admin import Admin
from relay.kafka.errors import KafkaRefused
from relay.settings import Settings


def ensure_topics(
    settings: Settings, *, partitions: int, replication_factor: int, timeout: float = 15.0
) -> list[str]:
    """Create the missing ones among every topic relay can route to; return those created.

    Raises ``KafkaUnreachable`` when no broker answers within ``timeout`` seconds, and
    ``KafkaRefused`` when the cluster refuses a creation (ACLs, policy, replication factor).
    """
    admin = Admin(settings.kafka)
    wanted = TopicRouter(settings.topics).all_known_topics()
    existing = set(admin.metadata(timeout).topics)
    missing = [t for t in wanted if t not in existing]
    if not missing:
        return []
    futures = admin.client.create_topics(
        [
            NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
            for t in missing
        ],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(topic)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                continue
            raise KafkaRefused(f"cannot create topic {topic}: {admin.reason(exc)}") from None
    return sorted(created)
