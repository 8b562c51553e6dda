"""librdkafka configuration: relay's safe defaults, then the operator's options."""

from __future__ import annotations

from typing import Any

from relay.settings import ConfigError, IntakeSettings, KafkaSettings

# Options that carry the delivery contract. An operator may tune anything else, but a
# 200 must keep meaning "every in-sync replica has it, with no duplicates from retries".
_REQUIRED = {"acks": {"all", "-1"}, "enable.idempotence": {"true"}}


def producer_config(kafka: KafkaSettings, intake: IntakeSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": kafka.client_id,
        "enable.idempotence": True,
        "acks": "all",
        # linger.ms is added to every answer at light load: 20 ms made a lone delivery wait
        # 23 ms where Benthos (franz-go, no linger) answered in 3. Under load records batch
        # anyway while earlier requests are in flight; docs/performance.md has the A/B of
        # 0, 1, 5 and 20 ms. Operators who prefer fewer, larger requests can raise it.
        "linger.ms": 1,
        "compression.type": "lz4",
        # Fail a record at about the time relay gives up on the delivery, so the
        # in-flight accounting does not outlive the answer by much.
        "message.timeout.ms": int(intake.ack_deadline_seconds * 1000) + 5000,
        # relay bounds the queue itself (intake.max_inflight_events); librdkafka's own
        # bound only has to be no smaller.
        "queue.buffering.max.messages": max(intake.max_inflight_events * 2, 100_000),
        "statistics.interval.ms": 1000,
        "socket.keepalive.enable": True,
        # librdkafka backs off up to 10 s between reconnects; while the broker is away
        # every delivery is refused, so retry each second to be back within ~1 s of it.
        "reconnect.backoff.max.ms": 1000,
    }
    config.update(kafka.librdkafka)
    for option, allowed in _REQUIRED.items():
        if str(config[option]).lower() not in allowed:
            raise ConfigError(
                f"kafka.librdkafka.{option} must stay {sorted(allowed)[0]!r}: relay answers "
                "200 only once Kafka durably holds every event",
                setting=f"kafka.librdkafka.{option}",
            )
    return config


def admin_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options only (security, SASL, SSL): producer tuning would be rejected."""
    connection_prefixes = ("security.", "sasl.", "ssl.", "socket.", "broker.", "client.")
    config: dict[str, Any] = {
        key: value for key, value in kafka.librdkafka.items() if key.startswith(connection_prefixes)
    }
    config["bootstrap.servers"] = kafka.bootstrap_servers
    config.setdefault("client.id", kafka.client_id + "-admin")
    return config


def max_message_bytes(config: dict[str, Any]) -> int:
    """librdkafka's client-side limit on one record (message.max.bytes, default 1 MB)."""
    return int(config.get("message.max.bytes", 1_000_000))
