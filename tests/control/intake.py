"""relay's real intake app on a loopback port, publishing into a fake sink (no Kafka)."""

from __future__ import annotations

from pathlib import Path

from relay.serving.app import create_app
from relay.settings import Settings
from tests.support.fake_sink import FakeSink
from tests.support.server_thread import ServerThread


class Intake:
    def __init__(self, credentials_file: Path, reload_interval: float = 0.2) -> None:
        self.sink = FakeSink()
        settings = Settings.from_mapping(
            {
                "auth": {
                    "basic_credentials_file": str(credentials_file),
                    "reload_interval_seconds": reload_interval,
                },
                "server": {"admin_port": 0},
            }
        )
        self.server = ServerThread(create_app(settings, sink=self.sink))

    @property
    def url(self) -> str:
        return self.server.url + "/webhooks/ultracart"

    def start(self) -> Intake:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
