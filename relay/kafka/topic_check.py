"""Can Kafka take what relay will write? Routed topics present, and large enough records.

A routed topic that does not exist, on a cluster that does not create topics on first
write, turns every delivery for it into a timeout and a 503 until UltraCart disables the
webhook; a topic whose ``max.message.bytes`` is below relay's record limit refuses the
larger deliveries the same way. Both are cheaper to learn at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

# confluent_kafka.admin re-exports these without declaring them, which mypy --strict rejects.
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType

from relay.events.routing import TopicRouter
from relay.kafka.admin import Admin
from relay.kafka.client_config import max_message_bytes, producer_config
from relay.settings import Settings

# Apache Kafka's defaults, used when a broker does not say (it always should).
_KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


@dataclass(frozen=True)
class TopicReport:
    """The answer of one check. ``auto_create`` is None when the broker would not say."""

    bootstrap: str
    wanted: tuple[str, ...]
    missing: tuple[str, ...]
    auto_create: bool | None
    # relay's own limit on one record: librdkafka's message.max.bytes for the producer.
    record_limit: int
    # Topic -> its max.message.bytes (for a missing topic the broker default it would get),
    # for those below record_limit.
    too_small: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def blocking_missing(self) -> tuple[str, ...]:
        """Missing topics nothing will create: deliveries for them cannot succeed."""
        return () if self.auto_create else self.missing

    @property
    def ok(self) -> bool:
        return not self.blocking_missing and not self.too_small

    def problems(self) -> list[str]:
        lines = []
        if self.blocking_missing:
            why = (
                "the cluster does not create topics automatically"
                if self.auto_create is False
                else "auto.create.topics.enable could not be read, so relay assumes it is off"
            )
            lines.append(
                f"{len(self.blocking_missing)} routed topic(s) missing and {why}: "
                f"{', '.join(self.blocking_missing)} (run `relay create-topics`)"
            )
        for topic, limit in sorted(self.too_small.items()):
            lines.append(
                f"topic {topic}: max.message.bytes {limit} is below relay's record limit "
                f"{self.record_limit} (kafka.librdkafka.message.max.bytes); larger deliveries "
                "would be refused"
            )
        return lines

    def summary(self) -> str:
        text = f"{len(self.wanted) - len(self.missing)}/{len(self.wanted)} routed topics exist"
        if self.missing and self.auto_create:
            text += f"; {len(self.missing)} will be created on first write (auto-creation is on)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bootstrap": self.bootstrap,
            "topics": len(self.wanted),
            "missing": list(self.missing),
            "auto_create": self.auto_create,
            "record_limit": self.record_limit,
            "too_small": dict(self.too_small),
            "problems": self.problems(),
            "notes": list(self.notes),
        }


def check_topics(settings: Settings, timeout: float) -> TopicReport:
    """Ask the cluster, within about ``timeout`` seconds in all.

    Raises ``KafkaUnreachable`` when no broker answers. Reads only: never creates a topic.
    """
    deadline = time.monotonic() + timeout
    admin = Admin(settings.kafka)
    record_limit = max_message_bytes(producer_config(settings.kafka, settings.intake))
    wanted = tuple(TopicRouter(settings.topics).all_known_topics())
    metadata = admin.metadata(timeout)
    present = set(metadata.topics)
    missing = tuple(t for t in wanted if t not in present)
    notes: list[str] = []

    broker_config: dict[str, str] = {}
    broker_ids = sorted(metadata.brokers)
    if broker_ids:
        # Cluster-wide settings; any broker answers for the defaults it runs with.
        resource = ConfigResource(ResourceType.BROKER, str(broker_ids[0]))
        try:
            broker_config = _describe(admin, resource, deadline)
        except KafkaException as exc:
            notes.append(f"broker configuration not readable: {admin.reason(exc)}")
    auto_text = broker_config.get("auto.create.topics.enable")
    auto_create = None if auto_text is None else auto_text.lower() == "true"
    broker_default = int(broker_config.get("message.max.bytes", _KAFKA_DEFAULT_MAX_MESSAGE_BYTES))

    too_small: dict[str, int] = {}
    for topic in wanted:
        if topic in missing:
            if auto_create and broker_default < record_limit:
                too_small[topic] = broker_default
            continue
        try:
            config = _describe(admin, ConfigResource(ResourceType.TOPIC, topic), deadline)
        except KafkaException as exc:
            notes.append(f"topic {topic}: configuration not readable: {admin.reason(exc)}")
            continue
        limit = int(config.get("max.message.bytes", broker_default))
        if limit < record_limit:
            too_small[topic] = limit
    return TopicReport(
        bootstrap=settings.kafka.bootstrap_servers,
        wanted=wanted,
        missing=missing,
        auto_create=auto_create,
        record_limit=record_limit,
        too_small=too_small,
        notes=tuple(notes),
    )


def _describe(admin: Admin, resource: ConfigResource, deadline: float) -> dict[str, str]:
    left = max(0.5, deadline - time.monotonic())
    futures = admin.client.describe_configs([resource], request_timeout=left)
    entries = futures[resource].result(timeout=left)
    return {name: str(entry.value) for name, entry in entries.items() if entry.value is not None}
