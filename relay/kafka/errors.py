"""librdkafka's errors in relay's terms, translated here and nowhere else.

``translate`` reads a ``KafkaException`` or ``KafkaError`` once into a ``KafkaReason``
(its name and librdkafka's sentence); every caller (the CLI, preflight, the admin helpers,
the publisher) uses that. ``KafkaFailed`` and its two kinds are what a Kafka call that
failed raises to relay's own code: no raw ``KafkaException`` goes further than relay.kafka
(and relay.consumers, its reading side).

Per-record errors are also sorted once: worth retrying, or refused for good.

A record the broker refuses permanently would be refused by every retry, so retrying it
only stalls whatever waits behind it (the spool's drainer). Everything not listed as
permanent is treated as retriable: a wrong guess that way costs a retry loop an operator
sees in ``relay_produce_errors_total``, while a wrong guess the other way would set a good
record aside.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException


@dataclass(frozen=True, slots=True)
class KafkaReason:
    """One librdkafka error: its name (``_TRANSPORT``, ``TOPIC_AUTHORIZATION_FAILED``; empty
    when librdkafka gave only text) and its own sentence."""

    name: str
    text: str

    def __str__(self) -> str:
        return self.text


def translate(error: BaseException | KafkaError | None) -> KafkaReason:
    """What went wrong, from a ``KafkaException`` (whose first argument is usually the
    ``KafkaError``), a ``KafkaError`` itself, or any other exception."""
    if isinstance(error, KafkaException) and error.args:
        error = error.args[0] if isinstance(error.args[0], KafkaError) else error
    if isinstance(error, KafkaError):
        return KafkaReason(str(error.name()), str(error.str()))
    if error is None:
        return KafkaReason("", "no answer")
    return KafkaReason("", str(error) or type(error).__name__)


class KafkaFailed(Exception):
    """A Kafka call failed; the message is one line that says what and why."""


class KafkaUnreachable(KafkaFailed):
    """No broker answered within the time allowed."""

    def __init__(self, bootstrap: str, reason: str) -> None:
        super().__init__(f"cannot reach Kafka at {bootstrap}: {reason}")
        self.bootstrap = bootstrap
        self.reason = reason


class KafkaRefused(KafkaFailed):
    """A broker answered but refused or failed the request (ACLs, policy, bad arguments), or
    librdkafka refused the client's configuration."""


# Errors that concern the record or its topic and that no retry can change.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over the topic's max.message.bytes
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,  # e.g. refused by the broker's record validation
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,  # an invalid topic name
        KafkaError.POLICY_VIOLATION,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    }
)


def is_permanent(error: KafkaError) -> bool:
    """True if retrying this record can never succeed.

    A fatal error is not the record's fault but the producer's (it must be rebuilt), so it
    is never permanent for the record.
    """
    return error.code() in PERMANENT and not error.fatal()


def reason(error: KafkaError) -> str:
    """A bounded metric label: the error's name in lower case, without librdkafka's ``_``."""
    name: str = error.name()
    return name.lstrip("_").lower()
