"""The spool as configured: settings, and the intake app answering from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from relay.events.errors import Unavailable
from relay.serving.app import build_intake, create_app
from relay.settings import ConfigError, Settings
from tests.support.fake_sink import FakeSink
from tests.support.settings import settings_with
from tests.support.waiting import wait_until

AUTH = ("ultracart", "s3cret")
DELIVERY = {"events": [{"order_create": {"order_id": "SP-1"}}]}


def settings(**spool: object) -> Settings:
    return settings_with(spool=spool)


def test_spool_is_off_by_default_and_configurable_from_the_environment(tmp_path: Path) -> None:
    assert Settings().spool.enabled is False
    loaded = Settings.load(
        env={
            "RELAY_AUTH__BASIC_CREDENTIALS": "u:p",
            "RELAY_SPOOL__ENABLED": "true",
            "RELAY_SPOOL__DIRECTORY": str(tmp_path),
            "RELAY_SPOOL__MAX_BYTES": "2097152",
            "RELAY_SPOOL__FSYNC": "never",
        }
    )
    assert loaded.spool.enabled
    assert (loaded.spool.directory, loaded.spool.max_bytes) == (str(tmp_path), 2097152)
    assert loaded.spool.fsync == "never"


@pytest.mark.parametrize(
    ("spool", "server", "message"),
    [
        ({"fsync": "sometimes"}, {}, "spool.fsync"),
        ({"enabled": True, "max_bytes": 1000}, {}, "spool.max_bytes"),
        ({"enabled": True, "directory": ""}, {}, "spool.directory"),
        ({"enabled": True}, {"workers": 2}, "server.workers"),
        ({"enabeld": True}, {}, "spool.enabeld"),
    ],
)
def test_bad_spool_settings_are_refused(
    spool: dict[str, object], server: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping(
            {"auth": {"allow_unauthenticated": True}, "spool": spool, "server": server}
        )


def test_intake_answers_200_from_the_spool_while_kafka_is_down(tmp_path: Path) -> None:
    kafka = FakeSink()
    kafka.failure = Unavailable("down", code="kafka_unavailable")
    app = create_app(settings(enabled=True, directory=str(tmp_path)), sink=kafka)
    with TestClient(app) as client:
        response = client.post("/webhooks/ultracart", json=DELIVERY, auth=AUTH)
        assert response.status_code == 200, response.text
        ready = client.get("/readyz").json()
        assert ready["ready"] is True
        assert ready["spool"] is True
        metrics = client.get("/metrics").text
        assert "relay_spool_records 1.0" in metrics
        assert 'relay_spooled_deliveries_total{reason="kafka_unavailable"} 1.0' in metrics
    assert kafka.published == []
    # The next start finds it and sends it.
    kafka.failure = None
    intake = build_intake(settings(enabled=True, directory=str(tmp_path)), sink=kafka)
    spool = intake.runtime.spool
    assert spool is not None
    with TestClient(intake.app):
        wait_until(
            lambda: spool.pending_records == 0,
            interval=0.01,
            message="the spool was not replayed",
        )
    assert [r.key for r in kafka.records] == [b"SP-1"]
