"""Moved to tests/support/broker.py; these names stay importable for tests not yet migrated."""

from tests.support.broker import LocalBroker, broker_of_its_own

__all__ = ["LocalBroker", "broker_of_its_own"]
