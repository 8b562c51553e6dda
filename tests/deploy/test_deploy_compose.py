"""docker-compose.yml, checked without a Docker engine.

The file is validated against the Compose Specification's JSON schema (from compose-go,
fetched by deploy/tools/install); then its services, ports, healthchecks and
dependencies are checked, and every relay command and environment in it is fed to
relay's own argument parser and settings loaders, so the file cannot drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from relay.cli import build_parser
from relay.control import desired
from relay.settings import Settings, StatusPollSettings
from tests.deploy.support import REPO_ROOT, find_file

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
RELAY_IMAGE = "relay:local"
BASE_SERVICES = {"kafka", "relay-credentials", "kafka-topics", "relay", "prometheus", "grafana"}
DEMO_SERVICES = {"emulator", "demo-webhook", "demo-traffic"}
ONE_SHOTS = {"relay-credentials", "kafka-topics", "demo-webhook"}

_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default}, as `docker compose up` resolves it with VAR unset."""
    env = env or {}
    assert "${" not in _DEFAULTED.sub("", value), f"unsupported interpolation in {value!r}"
    return _DEFAULTED.sub(lambda m: env.get(m.group(1)) or m.group(2), value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any], host_env: dict[str, str] | None = None) -> dict[str, str]:
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "environment is written as a mapping throughout"
    return {name: interpolate(str(value), host_env) for name, value in raw.items()}


def relay_argv(service: dict[str, Any]) -> list[str]:
    assert "entrypoint" not in service
    command: list[str] = service["command"]
    return command


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a ./path) for the short syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = str(entry).split(":")
        mounts[target] = source
    return mounts


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(find_file("compose-spec.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_services_and_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == BASE_SERVICES | DEMO_SERVICES
    for name in BASE_SERVICES:
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"
    for name in DEMO_SERVICES:
        assert services[name]["profiles"] == ["demo"], name
        for dependency in services[name].get("depends_on", {}):
            assert dependency in services
    for name in BASE_SERVICES:
        for dependency in services[name].get("depends_on", {}):
            assert dependency in BASE_SERVICES, f"{name} must not need the demo profile"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
            continue
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        assert not check.get("disable"), name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck.{key}"


def test_dependencies_wait_for_the_right_state(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if dependency in ONE_SHOTS:
                assert condition == "service_completed_successfully", (name, dependency)
            else:
                assert condition == "service_healthy", (name, dependency)
                assert "healthcheck" in services[dependency], dependency
    # Topics exist before relay takes a delivery; the credential before anything reads it.
    assert "kafka-topics" in services["relay"]["depends_on"]
    assert "relay-credentials" in services["kafka-topics"]["depends_on"]
    assert "relay" in services["demo-webhook"]["depends_on"]


def test_published_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    published: dict[str, list[str]] = {}
    for name, service in services.items():
        for entry in service.get("ports", []):
            text = str(entry)
            assert text.startswith("127.0.0.1:"), f"{name} publishes {text} beyond the host"
            published.setdefault(name, []).append(text)
    assert published == {
        "kafka": ["127.0.0.1:9092:9092"],
        "relay": ["127.0.0.1:8080:8080"],
        "prometheus": ["127.0.0.1:9091:9090"],
        "grafana": ["127.0.0.1:3000:3000"],
    }
    # relay's admin port (metrics, probes) stays on the compose network.
    assert services["relay"]["expose"] == ["9090"]


def test_kafka_is_single_node_kraft_with_two_listeners(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert re.fullmatch(r"4\.\d+\.\d+", tag), f"pin an apache/kafka 4.x release, not {tag!r}"
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == {"INTERNAL", "EXTERNAL", "CONTROLLER"} == set(protocols)
    assert set(advertised) == {"INTERNAL", "EXTERNAL"}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    # Containers reach the broker by its service name, the host through the published port.
    assert advertised["INTERNAL"] == "kafka:" + listeners["INTERNAL"].lstrip(":")
    external_port = listeners["EXTERNAL"].lstrip(":")
    assert advertised["EXTERNAL"] == f"localhost:{external_port}"
    assert f"127.0.0.1:{external_port}:{external_port}" in kafka["ports"]
    for client in ("relay", "kafka-topics"):
        bootstrap = environment(services[client])["RELAY_KAFKA__BOOTSTRAP_SERVERS"]
        assert bootstrap == advertised["INTERNAL"], client
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert volume_mounts(kafka)[env["KAFKA_LOG_DIRS"]] == "kafka-data"


def test_relay_commands_are_accepted_by_relay(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    commands = {}
    for name, service in services.items():
        if service.get("image") == RELAY_IMAGE and "entrypoint" not in service:
            args = parser.parse_args(relay_argv(service))
            commands[name] = args.command
    assert commands == {
        "kafka-topics": "create-topics",
        "relay": "serve",
        "emulator": "emulator",
        "demo-webhook": "webhooks",
    }


def test_relay_settings_load_from_the_compose_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    relay = services["relay"]
    env = environment(relay)
    settings = Settings.load(REPO_ROOT / "config" / "relay.toml", env=env)
    assert relay_argv(relay)[1:] == ["--config", "/etc/relay/relay.toml"]
    # The credential file lives on the volume relay-credentials writes.
    credentials = Path(settings.auth.basic_credentials_file)
    assert volume_mounts(relay)[str(credentials.parent)] == "relay-secrets"
    assert volume_mounts(services["relay-credentials"])[str(credentials.parent)] == "relay-secrets"
    # The healthcheck asks the admin port's /readyz; compose waits out the whole drain.
    check = " ".join(relay["healthcheck"]["test"])
    assert f"http://127.0.0.1:{settings.server.admin_port}/readyz" in check
    assert [str(settings.server.admin_port)] == relay["expose"]
    assert f"127.0.0.1:{settings.server.port}:{settings.server.port}" in relay["ports"]
    grace = int(relay["stop_grace_period"].removesuffix("s"))
    assert grace > settings.server.shutdown_grace_seconds
    topics = Settings.load(
        REPO_ROOT / "config" / "relay.toml", env=environment(services["kafka-topics"])
    )
    assert topics.kafka.bootstrap_servers == settings.kafka.bootstrap_servers


def test_relay_containers_are_hardened(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("image") != RELAY_IMAGE:
            continue
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["build"] == {"context": "."}, name
        for target, source in volume_mounts(service).items():
            if source == "relay-secrets" and name != "relay-credentials":
                assert any(str(entry).endswith(":ro") for entry in service["volumes"]), (
                    f"{name} mounts {target} writable"
                )


def test_bind_mounts_exist_in_the_repository(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source in volume_mounts(service).values():
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name}: {source} is missing"


def test_prometheus_scrapes_relay_and_loads_the_alerts(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    config_dir = REPO_ROOT / volume_mounts(prometheus)["/etc/prometheus"]
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text(encoding="utf-8"))
    admin_port = Settings.load(
        REPO_ROOT / "config" / "relay.toml", env=environment(services["relay"])
    ).server.admin_port
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "relay"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["relay"] and discovery["port"] == admin_port
    for rule_file in config["rule_files"]:
        assert (config_dir / rule_file).is_file(), rule_file
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_grafana_is_provisioned_and_read_only(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    mounts = volume_mounts(grafana)
    provisioning = REPO_ROOT / mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    (datasource,) = datasources["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    providers = yaml.safe_load(
        (provisioning / "dashboards" / "relay.yml").read_text(encoding="utf-8")
    )
    (provider,) = providers["providers"]
    dashboards_dir = provider["options"]["path"]
    assert (REPO_ROOT / mounts[dashboards_dir] / "relay.json").is_file()
    env = environment(grafana)
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert str(home.parent) == dashboards_dir
    # Anonymous viewers only: no admin account to guess, no sign-in form.
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION"] == "true"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"


def test_demo_registers_relay_with_the_emulator(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The demo's `relay webhooks apply` environment, through relay's own loader."""
    env = environment(services["demo-webhook"])
    credentials = tmp_path / "basic"
    credentials.write_text("ultracart:generated\n", encoding="utf-8")
    relay_file = env["WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE"]
    env["WEBHOOKS_WEBHOOK__BASIC__CREDENTIALS_FILE"] = str(credentials)
    config = desired.load(REPO_ROOT / "config" / "webhooks.toml", env=env)
    settings = Settings.load(
        REPO_ROOT / "config" / "relay.toml", env=environment(services["relay"])
    )
    assert relay_file == settings.auth.basic_credentials_file
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
    traffic = environment(services["demo-traffic"])
    assert urlsplit(traffic["EMULATOR_URL"]).port == emulator_args.port
    subscribed = {event.name for event in config.webhook.events}
    assert set(traffic["DEMO_EVENTS"].split(",")) <= subscribed


def test_status_poller_is_opt_in_and_polls_the_emulator(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = REPO_ROOT / "config" / "relay.toml"
    assert not Settings.load(config, env=environment(services["relay"])).ultracart.enabled
    env = environment(services["relay"], {"RELAY_ULTRACART_STATUS": "true"})
    # The poller reads its API key from the process environment.
    monkeypatch.setenv("ULTRACART_SIMPLE_KEY", env["ULTRACART_SIMPLE_KEY"])
    poller = Settings.load(config, env=env).ultracart
    assert poller.enabled
    assert isinstance(poller, StatusPollSettings) and poller.api is not None
    emulator_port = build_parser().parse_args(relay_argv(services["emulator"])).port
    api = urlsplit(poller.api.base_url)
    assert (api.hostname, api.port) == ("emulator", emulator_port)
    assert poller.webhook_url == environment(services["demo-webhook"])["WEBHOOKS_WEBHOOK__URL"]


def _credentials_script(services: dict[str, dict[str, Any]], path: Path) -> list[str]:
    service = services["relay-credentials"]
    assert service["entrypoint"] == ["python", "-c"]
    (script,) = service["command"]
    assert '"/etc/relay/secrets/basic"' in script
    return [sys.executable, "-c", script.replace("/etc/relay/secrets/basic", str(path))]


def test_credentials_are_generated_once_and_private(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "basic"
    argv = _credentials_script(services, path)
    env = {k: v for k, v in os.environ.items() if k != "RELAY_BASIC_CREDENTIALS"}
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
    first = path.read_text(encoding="utf-8")
    user, _, password = first.strip().partition(":")
    assert user == "ultracart" and len(password) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    result = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=30)
    assert path.read_text(encoding="utf-8") == first, "a restart must keep the credential"
    assert password not in result.stdout
    chosen = dict(env, RELAY_BASIC_CREDENTIALS="ops:chosen-password")
    subprocess.run(argv, env=chosen, check=True, capture_output=True, timeout=30)
    assert path.read_text(encoding="utf-8") == "ops:chosen-password\n"
    bad = dict(env, RELAY_BASIC_CREDENTIALS="no-colon")
    refused = subprocess.run(argv, env=bad, capture_output=True, timeout=30, check=False)
    assert refused.returncode != 0
