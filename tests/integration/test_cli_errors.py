"""Every failure of the ``relay`` command is one line on stderr and exit code 1: configuration
errors, and Kafka's (an unreachable cluster, a configuration librdkafka refuses), never a
traceback. Each command runs as a real process; the only Kafka address is a loopback port
nothing listens on, so no broker is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

UNREACHABLE = f"127.0.0.1:{free_port()}"
BASE = {"RELAY_AUTH__BASIC_CREDENTIALS": "u:p", "RELAY_KAFKA__BOOTSTRAP_SERVERS": UNREACHABLE}


def relay(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "relay", *argv],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CASES = [
    pytest.param({"RELAY_SERVER__PORTT": "1"}, ["check-config"], "unknown setting", id="unknown"),
    pytest.param({"RELAY_SERVER__PORT": "x"}, ["serve"], "must be an integer", id="type"),
    pytest.param(
        {"RELAY_AUTH__BASIC_CREDENTIALS_FILE": "/nonexistent"},
        ["serve"],
        "does not exist",
        id="preflight",
    ),
    pytest.param({}, ["check-config", "--connect", "--timeout", "1"], "cannot reach", id="check"),
    pytest.param({}, ["create-topics", "--timeout", "1"], "cannot reach", id="create-topics"),
    pytest.param(
        {"RELAY_KAFKA__LIBRDKAFKA__SOCKET_NOPE": "1"},
        ["create-topics", "--timeout", "1"],
        "librdkafka refused the configuration",
        id="refused",
    ),
    pytest.param({}, ["tail", "--last", "1"], "cannot reach", id="tail"),
    pytest.param({}, ["dead-letters", "list"], "cannot reach", id="dead-letters"),
    pytest.param({}, ["schemas", "export", "/proc/relay-no"], "No such file", id="file"),
    pytest.param(
        {}, ["webhooks", "list", "--config", "/nonexistent"], "no such file", id="webhooks"
    ),
]


@pytest.mark.parametrize(("env", "argv", "said"), CASES)
def test_a_failure_is_one_line_without_a_traceback(
    env: dict[str, str], argv: list[str], said: str
) -> None:
    done = relay({**BASE, **env}, *argv)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("relay: ") and said in lines[0]
    assert "Traceback" not in done.stderr


def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "relay.toml"
    bad.write_text("[server\n")
    done = relay(BASE, "check-config", "--config", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "is not valid TOML" in done.stderr
