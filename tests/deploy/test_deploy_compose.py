"""docker-compose.yml and docker-compose.tls.yml, checked without a Docker engine.

The files are validated against the Compose Specification's JSON schema (from compose-go,
fetched by deploy/tools/install); then their services, ports, healthchecks and
dependencies are checked, and every relay command and environment in them is fed to
relay's own argument parser and settings loaders, so the files cannot drift from the code.
Environments are resolved as compose resolves them: env files in order, then the service's
`environment`, which wins; relay.env and webhooks.env are the operator's (optional), so the
examples committed for them are loaded block by block.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from relay.cli import build_parser
from relay.settings import Settings
from tests.deploy.compose_file import (
    BASE_SERVICES,
    COMPOSE_FILE,
    CONTROL_SERVICES,
    DEMO_SERVICES,
    HOST_VARIABLES,
    ONE_SHOTS,
    RELAY_IMAGE,
    RELAY_SETTING,
    TLS_OVERLAY,
    env_files,
    environment,
    read_env_file,
    read_only_mounts,
    relay_argv,
    relay_settings,
    schema_errors,
    volume_mounts,
)
from tests.deploy.support import REPO_ROOT


def test_compose_matches_the_compose_specification(
    compose: dict[str, Any], tls_overlay: dict[str, Any]
) -> None:
    assert not schema_errors(compose), "\n".join(schema_errors(compose))
    assert not schema_errors(tls_overlay), "\n".join(schema_errors(tls_overlay))


def test_services_and_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == BASE_SERVICES | DEMO_SERVICES | CONTROL_SERVICES
    for name in BASE_SERVICES:
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"
    for names, profile in ((DEMO_SERVICES, "demo"), (CONTROL_SERVICES, "control")):
        for name in names:
            assert services[name]["profiles"] == [profile], name
            for dependency in services[name].get("depends_on", {}):
                assert dependency in services
    for name in BASE_SERVICES | CONTROL_SERVICES:
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
            # Only the local broker may be missing (a managed Kafka: --scale kafka=0).
            assert spec.get("required", True) is (dependency != "kafka"), (name, dependency)
    # Topics exist before relay takes a delivery; the credential before anything reads it.
    assert "kafka-topics" in services["relay"]["depends_on"]
    assert "kafka" not in services["relay"]["depends_on"], "relay waits for Kafka via the job"
    assert "kafka" in services["kafka-topics"]["depends_on"]
    for name in ("kafka-topics", "webhooks", "demo-webhook"):
        assert "relay-credentials" in services[name]["depends_on"], name
    assert "relay" in services["demo-webhook"]["depends_on"]


def test_published_ports_are_loopback_only(
    services: dict[str, dict[str, Any]], tls_overlay: dict[str, Any]
) -> None:
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
    for overlay_service in tls_overlay["services"].values():
        assert "ports" not in overlay_service and "expose" not in overlay_service


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
    for client in ("relay", "kafka-topics", "webhooks"):
        settings = relay_settings(services[client], environment(services[client]))
        assert settings.kafka.bootstrap_servers == advertised["INTERNAL"], client
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert volume_mounts(kafka)[env["KAFKA_LOG_DIRS"]] == "kafka-data"


def test_relay_commands_are_accepted_by_relay(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    commands = {}
    for name, service in services.items():
        if service.get("image") == RELAY_IMAGE and service.get("entrypoint", ["relay"])[0] == (
            "relay"
        ):
            args = parser.parse_args(relay_argv(service))
            commands[name] = (args.command, getattr(args, "webhooks_command", None))
    assert {name: command for name, (command, _) in commands.items()} == {
        "kafka-topics": "create-topics",
        "relay": "serve",
        "emulator": "emulator",
        "demo-webhook": "webhooks",
        "webhooks": "webhooks",
        "audit": "webhooks",
    }
    # `docker compose run --rm webhooks <subcommand> ...` replaces the command only.
    for subcommand in (["apply"], ["rotate-credentials"], ["status", "--json"]):
        parser.parse_args(["webhooks", *subcommand])
    assert services["webhooks"]["entrypoint"] == ["relay", "webhooks"]
    # The topic job leaves the replication factor to the cluster: 1 on the local broker,
    # while managed clusters refuse less than their own minimum.
    topics = parser.parse_args(relay_argv(services["kafka-topics"]))
    assert topics.replication_factor == -1


def test_relay_reads_the_env_files_and_the_mounted_config(
    services: dict[str, dict[str, Any]],
) -> None:
    """relay and the topic job: this stack's defaults, then the optional relay.env, and
    relay.toml from the read-only config directory; no setting pinned in the file."""
    for name in ("relay", "kafka-topics"):
        service = services[name]
        assert [e["path"] for e in env_files(service)] == [
            "deploy/compose/relay.defaults.env",
            "relay.env",
        ], name
        assert "environment" not in service, f"{name}: a pinned setting would beat relay.env"
        args = build_parser().parse_args(relay_argv(service))
        config = Path(args.config)
        assert volume_mounts(service)[str(config.parent)] == "./config", name
        assert str(config.parent) in read_only_mounts(service), name
        assert (REPO_ROOT / "config" / config.name).is_file()
    # The control services read the same files, and webhooks.env that only they need.
    webhooks = services["webhooks"]
    assert [e["path"] for e in env_files(webhooks)] == [
        "deploy/compose/relay.defaults.env",
        "relay.env",
        "webhooks.env",
    ]
    for name, service in services.items():
        if name not in CONTROL_SERVICES:
            assert "webhooks.env" not in [e["path"] for e in env_files(service)], name
    # Whatever relay.env says wins over the defaults, in relay and in the topic job alike.
    chosen = {"relay.env": {"RELAY_KAFKA__BOOTSTRAP_SERVERS": "broker.example:9092"}}
    assert env_files(services["audit"]) == env_files(webhooks)
    for name in ("relay", "kafka-topics", "webhooks", "audit"):
        settings = relay_settings(services[name], environment(services[name], chosen))
        assert settings.kafka.bootstrap_servers == "broker.example:9092", name


def test_only_relays_own_setting_names(services: dict[str, dict[str, Any]]) -> None:
    """No second naming scheme: the defaults and relay's environment hold only
    RELAY_<SECTION>__<KEY> names, each one a setting relay accepts."""
    defaults = read_env_file(REPO_ROOT / "deploy" / "compose" / "relay.defaults.env")
    for name in ("relay", "kafka-topics"):
        env = environment(services[name])
        assert env == defaults, name
    for name in defaults:
        assert RELAY_SETTING.fullmatch(name), name
    # relay refuses unknown settings, so loading them proves it knows each one.
    settings = Settings.load(REPO_ROOT / "config" / "relay.toml", env=defaults)
    assert settings.kafka.bootstrap_servers == defaults["RELAY_KAFKA__BOOTSTRAP_SERVERS"]
    # ${...} only for compose's own host paths, never inside an environment.
    text = COMPOSE_FILE.read_text(encoding="utf-8") + TLS_OVERLAY.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used <= HOST_VARIABLES, used - HOST_VARIABLES
    for name, service in services.items():
        for value in service.get("environment", {}).values():
            assert "${" not in str(value), name
