"""What the compose stack's one-shot jobs do, run here without Docker: credentials generated
once, rotation through the control profile, the demo registering with the emulator, the
status poller, and HTTPS from the TLS overlay."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from relay.cli import build_parser
from relay.control import desired
from relay.settings import StatusPollSettings
from tests.deploy.compose_file import (
    COMPOSE_FILE,
    RELAY_ENV_EXAMPLE,
    SECRETS_DIR,
    WEBHOOKS_ENV_EXAMPLE,
    block_setting,
    commented_blocks,
    environment,
    read_only_mounts,
    relay_argv,
    relay_settings,
    schema_errors,
    volume_mounts,
    with_overlay,
)
from tests.deploy.support import REPO_ROOT, write_self_signed_pair


def _credentials_script(services: dict[str, dict[str, Any]], directory: Path) -> list[str]:
    service = services["relay-credentials"]
    assert service["entrypoint"] == ["python", "-c"]
    (script,) = service["command"]
    assert f'"{SECRETS_DIR}"' in script
    return [sys.executable, "-c", script.replace(SECRETS_DIR, str(directory))]


def _control_config(
    service: dict[str, Any], secrets_dir: Path, state_dir: Path, operator: dict[str, str]
) -> desired.ControlConfig:
    """`relay webhooks`' configuration in ``service``, its volumes mapped to directories."""
    env = environment(service, {"webhooks.env": operator})
    mounts = volume_mounts(service)
    assert mounts[SECRETS_DIR] == "relay-secrets"
    state_parent = str(Path(env["WEBHOOKS_CONTROL__STATE_FILE"]).parent)
    for name, value in env.items():
        if value.startswith(SECRETS_DIR + "/"):
            env[name] = str(secrets_dir / Path(value).name)
        elif name == "WEBHOOKS_CONTROL__STATE_FILE" and state_parent != "/tmp":
            assert mounts[state_parent] == "relay-control"
            env[name] = str(state_dir / Path(value).name)
    config_file = Path(env["RELAY_WEBHOOKS_CONFIG"])
    source = REPO_ROOT / mounts[str(config_file.parent)] / config_file.name
    return desired.load(source, env=env)


def test_control_profile_rotates_the_file_relay_reads(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """`docker compose run --rm webhooks rotate-credentials`: the pair UltraCart sends and
    the file relay reads are both on relay-secrets, writable here only; the state file is
    on a volume of its own."""
    webhooks = services["webhooks"]
    secrets_dir, state_dir = tmp_path / "secrets", tmp_path / "state"
    secrets_dir.mkdir()
    subprocess.run(
        _credentials_script(services, secrets_dir), check=True, capture_output=True, timeout=30
    )
    operator: dict[str, str] = {}
    for block in commented_blocks(WEBHOOKS_ENV_EXAMPLE):
        operator |= block
    for name in operator:
        assert name.startswith("WEBHOOKS_") or name == "ULTRACART_SIMPLE_KEY", name
    config = _control_config(webhooks, secrets_dir, state_dir, operator)
    assert config.webhook.url == operator["WEBHOOKS_WEBHOOK__URL"]
    assert config.api.simple_key is not None
    assert config.api.simple_key.reveal() == operator["ULTRACART_SIMPLE_KEY"]
    # rotate-credentials' preconditions (relay/control/rotate.py): the pair comes from a file
    # it can rewrite, and it knows the file relay reads, which is relay's own.
    assert config.webhook.basic is not None and config.webhook.basic.file is not None
    assert config.control.relay_credentials_file is not None
    relay = relay_settings(services["relay"], environment(services["relay"]))
    relay_file = Path(relay.auth.basic_credentials_file)
    assert config.control.relay_credentials_file == secrets_dir / relay_file.name
    assert config.webhook.basic.file != config.control.relay_credentials_file, (
        "rotation writes the pair UltraCart sends as one line; relay's file holds several"
    )
    sent = config.webhook.basic.file.read_text(encoding="utf-8").strip()
    assert f"{config.webhook.basic.username}:{config.webhook.basic.password.reveal()}" == sent
    assert sent in config.control.relay_credentials_file.read_text(encoding="utf-8")
    assert config.control.state_file.parent == state_dir
    # relay re-reads its file well within the time rotation waits for it.
    assert config.control.reload_wait_seconds > relay.auth.reload_interval_seconds
    assert SECRETS_DIR not in read_only_mounts(webhooks)
    assert "/etc/relay/config" in read_only_mounts(webhooks)
    # The state volume starts as the image's /var/lib/relay, which belongs to uid 10001.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"install -d -o relay -g relay [^\n]*/var/lib/relay\b", dockerfile)
    assert "relay-control" in yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["volumes"]


def test_demo_registers_relay_with_the_emulator(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The demo's `relay webhooks apply`: the control service, pointed at the emulator."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    subprocess.run(
        _credentials_script(services, secrets_dir), check=True, capture_output=True, timeout=30
    )
    demo = services["demo-webhook"]
    assert relay_argv(demo) == ["webhooks", "apply"]
    assert "env_file" not in demo, "the demo must not pick up the operator's UltraCart"
    config = _control_config(demo, secrets_dir, tmp_path, {})
    settings = relay_settings(services["relay"], environment(services["relay"]))
    intake = urlsplit(config.webhook.url)
    assert (intake.hostname, intake.port, intake.path) == (
        "relay",
        settings.server.port,
        settings.intake.path,
    )
    emulator_args = build_parser().parse_args(relay_argv(services["emulator"]))
    api = urlsplit(config.api.base_url)
    assert (api.hostname, api.port) == ("emulator", emulator_args.port)
    assert emulator_args.host == "0.0.0.0"
    assert config.api.simple_key is not None
    assert (
        config.api.simple_key.reveal() == environment(services["emulator"])["ULTRACART_SIMPLE_KEY"]
    )
    assert config.webhook.basic is not None
    assert config.webhook.basic.username == "ultracart"
    traffic = environment(services["demo-traffic"])
    assert urlsplit(traffic["EMULATOR_URL"]).port == emulator_args.port
    subscribed = {event.name for event in config.webhook.events}
    assert set(traffic["DEMO_EVENTS"].split(",")) <= subscribed


def test_status_poller_is_opt_in_and_polls_the_emulator(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = services["relay"]
    assert not relay_settings(relay, environment(relay)).ultracart.enabled
    block = block_setting(RELAY_ENV_EXAMPLE, "RELAY_ULTRACART__ENABLED", "true")
    env = environment(relay, {"relay.env": block})
    # The poller reads its API key from the process environment.
    monkeypatch.setenv("ULTRACART_SIMPLE_KEY", env["ULTRACART_SIMPLE_KEY"])
    poller = relay_settings(relay, env).ultracart
    assert poller.enabled
    assert isinstance(poller, StatusPollSettings) and poller.api is not None
    emulator_port = build_parser().parse_args(relay_argv(services["emulator"])).port
    api = urlsplit(poller.api.base_url)
    assert (api.hostname, api.port) == ("emulator", emulator_port)
    assert poller.webhook_url == environment(services["demo-webhook"])["WEBHOOKS_WEBHOOK__URL"]


def test_tls_overlay_serves_https_from_a_mounted_directory(
    services: dict[str, dict[str, Any]], tls_overlay: dict[str, Any], tmp_path: Path
) -> None:
    assert set(tls_overlay["services"]) == {"relay"}
    relay = with_overlay(services["relay"], tls_overlay["services"]["relay"])
    assert not schema_errors({"services": {"relay": relay}, "volumes": {"relay-secrets": {}}})
    env = environment(relay)
    mounts = volume_mounts(relay)
    cert_dir = str(Path(env["RELAY_SERVER__TLS_CERT_FILE"]).parent)
    assert str(Path(env["RELAY_SERVER__TLS_KEY_FILE"]).parent) == cert_dir
    assert mounts[cert_dir] == "./tls" and cert_dir in read_only_mounts(relay)
    # A certificate made here stands in for ./tls: relay loads the pair at start.
    cert, key = write_self_signed_pair(tmp_path)
    local = dict(env)
    local["RELAY_SERVER__TLS_CERT_FILE"] = cert
    local["RELAY_SERVER__TLS_KEY_FILE"] = key
    settings = relay_settings(relay, local)
    assert settings.server.tls_enabled
    # Probes and Prometheus stay on the plain-HTTP admin port; the intake port is unchanged.
    assert relay["healthcheck"] == services["relay"]["healthcheck"]
    assert f"http://127.0.0.1:{settings.server.admin_port}/readyz" in " ".join(
        relay["healthcheck"]["test"]
    )
    assert relay["ports"] == services["relay"]["ports"]
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    https = deploy[deploy.index("\n## HTTPS") :]
    assert "### Docker Compose" in https and "docker-compose.tls.yml" in https


def test_credentials_are_generated_once_and_private(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    argv = _credentials_script(services, tmp_path)
    accepted, sent = tmp_path / "basic", tmp_path / "ultracart-basic"
    result = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
    first = accepted.read_text(encoding="utf-8")
    user, _, password = first.strip().partition(":")
    assert user == "ultracart" and len(password) >= 24
    # UltraCart sends the pair relay accepts.
    assert sent.read_text(encoding="utf-8") == first
    for path in (accepted, sent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert password not in result.stdout
    again = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
    assert accepted.read_text(encoding="utf-8") == first, "a restart must keep the credential"
    assert password not in again.stdout
    # After a rotation relay's file has a comment and several pairs: both are kept as written.
    rotated = "# managed by relay rotate-credentials\nultracart:old\nrelay-1:new\n"
    accepted.write_text(rotated, encoding="utf-8")
    sent.write_text("relay-1:new\n", encoding="utf-8")
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    assert accepted.read_text(encoding="utf-8") == rotated
    assert sent.read_text(encoding="utf-8") == "relay-1:new\n"
    # A volume from before ultracart-basic: relay's only pair is the one UltraCart sends.
    sent.unlink()
    accepted.write_text("# chosen by hand\nops:chosen-password\n", encoding="utf-8")
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    assert sent.read_text(encoding="utf-8") == "ops:chosen-password\n"
    assert stat.S_IMODE(sent.stat().st_mode) == 0o600
    assert not any(p.name.endswith(".new") for p in tmp_path.iterdir())
