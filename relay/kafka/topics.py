"""Create the topics relay writes to, for clusters where auto-creation is off (most)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from relay.kafka.client_config import admin_config
from relay.routing import TopicRouter
from relay.settings import Settings


def ensure_topics(
    settings: Settings, *, partitions: int, replication_factor: int, timeout: float = 30.0
) -> list[str]:
    """Create the missing ones among every topic relay can route to; return those created."""
    admin = AdminClient(admin_config(settings.kafka))
    wanted = TopicRouter(settings.topics).all_known_topics()
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [t for t in wanted if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
            for t in missing
        ],
        operation_timeout=timeout,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result()
            created.append(topic)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                continue
            raise
    return sorted(created)
