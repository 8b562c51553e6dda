"""librdkafka's per-record errors sorted once: worth retrying, or refused for good.

A record the broker refuses permanently would be refused by every retry, so retrying it
only stalls whatever waits behind it (the spool's drainer). Everything not listed as
permanent is treated as retriable: a wrong guess that way costs a retry loop an operator
sees in ``relay_produce_errors_total``, while a wrong guess the other way would set a good
record aside.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

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
