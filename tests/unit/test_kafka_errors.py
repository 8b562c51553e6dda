"""librdkafka errors translated once, sorted into permanent and retriable; librdkafka's
repeats held back."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from relay.kafka.errors import KafkaReason, is_permanent, reason, translate
from relay.kafka.quiet_log import RepeatSuppressingLog


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
    ],
)
def test_refusals_no_retry_can_change_are_permanent(code: int) -> None:
    assert is_permanent(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    ],
)
def test_everything_else_is_retried(code: int) -> None:
    assert not is_permanent(KafkaError(code))


def test_a_fatal_error_is_the_producers_not_the_records() -> None:
    assert not is_permanent(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, fatal=True))


def test_reason_is_a_bounded_label() -> None:
    assert reason(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)) == "msg_size_too_large"
    assert reason(KafkaError(KafkaError._MSG_TIMED_OUT)) == "msg_timed_out"


def test_a_line_repeated_with_other_numbers_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RepeatSuppressingLog(logging.getLogger("test.librdkafka"), window=60)
    with caplog.at_level(logging.INFO, "test.librdkafka"):
        for ms in (338, 341, 344):
            log.log(logging.ERROR, "%s [%s] %s", "FAIL", "relay#producer-1", f"auth (after {ms}ms)")
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", "relay#producer-1", "something else")
    assert [r.getMessage() for r in caplog.records] == [
        "FAIL [relay#producer-1] auth (after 338ms)",
        "FAIL [relay#producer-1] something else",
    ]


def test_every_form_librdkafka_raises_is_translated_to_its_name_and_sentence() -> None:
    error = KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed")
    said = KafkaReason("_TRANSPORT", "Connect to ipv4#127.0.0.1:1 failed")
    assert translate(error) == said
    assert translate(KafkaException(error)) == said
    # A KafkaException built from text only, and anything else, keep their words.
    assert translate(KafkaException("no such thing")) == KafkaReason("", "no such thing")
    assert translate(TimeoutError()) == KafkaReason("", "TimeoutError")
    assert translate(None) == KafkaReason("", "no answer")
    assert str(said) == said.text
