"""Moved to tests/support/kafka.py; this name stays importable for tests not yet migrated."""

from tests.support.kafka import ConsumedRecord, consume_all, create_topics

__all__ = ["ConsumedRecord", "consume_all", "create_topics"]
