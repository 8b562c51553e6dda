"""Moved to tests/support/relay.py; these names stay importable for tests not yet migrated."""

from tests.support.net import free_port
from tests.support.relay import CREDENTIALS, REPO_ROOT, RelayProcess, topic_env

__all__ = ["CREDENTIALS", "REPO_ROOT", "RelayProcess", "free_port", "topic_env"]
