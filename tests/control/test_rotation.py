"""rotate-credentials while deliveries keep flowing: relay never refuses one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.control.conftest import CliResult, Emulator, write_config
from tests.control.intake import Intake
from tests.support.waiting import wait_until

RunCli = Callable[..., CliResult]
OLD = "ultracart:old-password-123456"
# Deliveries relay must accept before the rotation starts, and again after it ended.
FLOWING = 5


def test_rotation_keeps_every_delivery_accepted(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    accepted = tmp_path / "relay-credentials"  # relay's [auth] basic_credentials_file
    accepted.write_text(OLD + "\n")
    accepted.chmod(0o600)
    secret = tmp_path / "ultracart-basic"  # the pair UltraCart should send
    secret.write_text(OLD + "\n")
    intake = Intake(accepted, reload_interval=0.2).start()
    try:
        config = str(
            write_config(
                tmp_path / "webhooks.toml",
                emulator,
                url=intake.url,
                basic_file=secret,
                maximum_events=2,
                control=(
                    f'relay_credentials_file = "{accepted}"\n'
                    "reload_wait_seconds = 0.6\ndrain_seconds = 0.5\n"
                ),
                events='[[webhook.events]]\nname = "item_update"\n',
            )
        )
        assert run_cli("webhooks", "apply", "--config", config).code == 0
        [webhook] = emulator.state.webhooks.values()

        # A steady trickle of events before, during and after the rotation.
        stop = threading.Event()
        sent = [0]

        def trickle() -> None:
            while not stop.is_set():
                emulator.admin(
                    "POST", "/_emulator/events", {"event_name": "item_update", "count": 1}
                )
                sent[0] += 1
                time.sleep(0.02)

        def accepted_more_than(count: int) -> Callable[[], bool]:
            return lambda: len(intake.sink.records) >= count + FLOWING

        producer = threading.Thread(target=trickle)
        producer.start()
        try:
            wait_until(accepted_more_than(0), message="deliveries did not flow before")
            result = run_cli("webhooks", "rotate-credentials", "--config", config)
            wait_until(
                accepted_more_than(len(intake.sink.records)),
                message="deliveries did not flow after the rotation",
            )
        finally:
            stop.set()
            producer.join(5)
        assert result.code == 0, result.err

        wait_until(
            lambda: not webhook.queue and len(intake.sink.records) >= sent[0],
            interval=0.02,
            message="the emulator did not deliver every event",
        )
        assert len(intake.sink.records) == sent[0]
        assert sent[0] > 20  # deliveries really flowed throughout
        assert set(webhook.statuses) == {200}, webhook.statuses  # not a single 401

        new_pair = secret.read_text().strip()
        assert new_pair != OLD
        assert webhook.settings["basic_username"] == new_pair.split(":")[0]
        lines = [line for line in accepted.read_text().splitlines() if not line.startswith("#")]
        assert lines == [new_pair]  # the old pair is gone
        assert accepted.stat().st_mode & 0o077 == 0
        assert new_pair.split(":", 1)[1] not in result.out + result.err
        for step in ("1/4", "2/4", "3/4", "4/4"):
            assert step in result.err
        # The desired state followed the rotation: nothing left to apply.
        assert run_cli("webhooks", "plan", "--config", config).code == 0
    finally:
        intake.stop()
