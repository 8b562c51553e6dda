"""Supervisor pieces that need no processes: worker settings, sockets, configuration."""

from __future__ import annotations

import pickle
import socket

import msgspec
import pytest

from relay.serving.supervisor import bind_sockets, worker_settings
from relay.settings import ConfigError, Settings, StatusPollSettings
from tests.support.settings import CREDENTIAL_ENV


def test_each_worker_enforces_its_share_of_relay_wide_limits() -> None:
    env = {
        **CREDENTIAL_ENV,
        "RELAY_SERVER__WORKERS": "4",
        "RELAY_SERVER__MAX_CONCURRENT_CONNECTIONS": "1001",
        "RELAY_INTAKE__MAX_INFLIGHT_EVENTS": "100000",
        "RELAY_INTAKE__MAX_INFLIGHT_BYTES": "4000001",
    }
    settings = worker_settings(Settings.load(env=env))
    assert settings.server.max_concurrent_connections == 251
    assert settings.intake.max_inflight_events == 25_000
    assert settings.intake.max_inflight_bytes == 1_000_000


def test_workers_leave_the_status_poller_to_the_supervisor() -> None:
    """The UltraCart status poller runs once, in the supervisor, never once per worker."""
    polling = StatusPollSettings(enabled=True, webhook_oid=7, poll_interval_seconds=30.0)
    settings = msgspec.structs.replace(
        Settings.load(env={**CREDENTIAL_ENV, "RELAY_SERVER__WORKERS": "2"}), ultracart=polling
    )
    assert settings.ultracart.enabled  # the supervisor's own settings keep it
    assert worker_settings(settings).ultracart.enabled is False


def test_a_worker_share_still_admits_the_largest_delivery() -> None:
    env = {
        **CREDENTIAL_ENV,
        "RELAY_SERVER__WORKERS": "8",
        "RELAY_INTAKE__MAX_INFLIGHT_EVENTS": "10000",
        "RELAY_INTAKE__MAX_EVENTS_PER_DELIVERY": "5000",
    }
    assert worker_settings(Settings.load(env=env)).intake.max_inflight_events == 5000


def test_settings_survive_the_trip_to_a_spawned_worker() -> None:
    settings = Settings.load(env={**CREDENTIAL_ENV, "RELAY_SERVER__WORKERS": "2"})
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_several_workers_need_the_admin_port() -> None:
    env = {**CREDENTIAL_ENV, "RELAY_SERVER__WORKERS": "2", "RELAY_SERVER__ADMIN_PORT": "0"}
    with pytest.raises(ConfigError, match="admin_port"):
        Settings.load(env=env)


def test_worker_sockets_share_one_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sockets = bind_sockets("127.0.0.1", port, 3)
    try:
        assert len(sockets) == 3
        assert {s.getsockname() for s in sockets} == {("127.0.0.1", port)}
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for sock in sockets:
            sock.close()
