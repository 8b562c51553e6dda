"""An AdminClient for one-shot checks and commands: bounded waits, one-line errors, quiet logs.

With the broker down librdkafka logs a line per reconnect attempt (hundreds in half a
minute) and the admin call ends in an exception that says only "Broker transport failure".
Here its log lines go to Python logging at debug level, its error callback keeps the most
telling reason ("Connect to ... failed: Connection refused"), and callers get one
``KafkaUnreachable`` whose text is the whole message.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without declaring them, which mypy --strict rejects.
from confluent_kafka.admin._metadata import ClusterMetadata

from relay.kafka.client_config import admin_config
from relay.kafka.errors import KafkaRefused, KafkaUnreachable, translate
from relay.settings import KafkaSettings


class _DebugOnly(logging.LoggerAdapter[logging.Logger]):
    """Passes librdkafka's lines on at debug level whatever their syslog level.

    The caller reports the failure once, in words; librdkafka's per-attempt lines only
    help someone debugging with ``log_level = "debug"``.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


def quiet_librdkafka_logger() -> logging.LoggerAdapter[logging.Logger]:
    """For a client's ``logger`` option: its lines at debug level, under relay.librdkafka."""
    return _DebugOnly(logging.getLogger("relay.librdkafka"), {})


class Admin:
    """``AdminClient`` on relay's connection settings, with errors turned into sentences."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.bootstrap = kafka.bootstrap_servers
        self._errors: list[KafkaError] = []
        config = admin_config(kafka)
        config["logger"] = quiet_librdkafka_logger()
        config["error_cb"] = self._errors.append
        try:
            self.client = AdminClient(config)
        except KafkaException as exc:
            raise KafkaRefused(f"librdkafka refused the configuration: {translate(exc)}") from None

    def metadata(self, timeout: float) -> ClusterMetadata:
        """Every topic and broker; ``KafkaUnreachable`` when no broker answers in time.

        Asks for all topics, not some by name: naming a topic in a metadata request may
        auto-create it, and checking must not change the cluster.
        """
        try:
            return self.client.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise KafkaUnreachable(self.bootstrap, self.reason(exc)) from None

    def reason(self, exc: BaseException | None = None) -> str:
        """The most specific cause known: a connection error beats a generic timeout."""
        self.client.poll(0)  # delivers the error callbacks queued so far
        specific = [e for e in self._errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
        if specific:
            text = translate(specific[-1]).text
            # "host:port/bootstrap: Connect to ..." -> "Connect to ...": the caller names
            # the bootstrap servers already. (Trimming a prefix off librdkafka's sentence,
            # not reading anything out of it.)
            return text.split(": ", 1)[1] if "/bootstrap: " in text else text
        return translate(exc).text
