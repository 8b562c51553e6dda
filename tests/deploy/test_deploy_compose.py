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

import json
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
from relay.kafka.client_config import admin_config, producer_config
from relay.settings import Settings, StatusPollSettings
from tests.deploy.support import REPO_ROOT, find_file, write_self_signed_pair

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
TLS_OVERLAY = REPO_ROOT / "docker-compose.tls.yml"
RELAY_ENV_EXAMPLE = REPO_ROOT / "relay.env.example"
WEBHOOKS_ENV_EXAMPLE = REPO_ROOT / "webhooks.env.example"
RELAY_IMAGE = "relay:local"
BASE_SERVICES = {"kafka", "relay-credentials", "kafka-topics", "relay", "prometheus", "grafana"}
DEMO_SERVICES = {"emulator", "demo-webhook", "demo-traffic"}
CONTROL_SERVICES = {"webhooks", "audit"}
ONE_SHOTS = {"relay-credentials", "kafka-topics", "demo-webhook", "webhooks"}
# The operator's files: optional, git-ignored, documented by the .example beside them.
OPERATOR_ENV_FILES = {"relay.env", "webhooks.env"}
# Compose's own variables: host paths to mount, never a relay setting.
HOST_VARIABLES = {"RELAY_CONFIG_DIR", "RELAY_TLS_DIR"}
# Containers that write the credentials volume; every other one mounts it read-only.
SECRET_WRITERS = {"relay-credentials", "webhooks", "demo-webhook"}
SECRETS_DIR = "/etc/relay/secrets"

_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")
_ASSIGNMENT = re.compile(r"([A-Z][A-Z0-9_]*)=(.*)")
_RELAY_SETTING = re.compile(r"RELAY_[A-Z0-9]+(__[A-Z0-9_]+)+")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default}, as `docker compose up` resolves it with VAR unset."""
    env = env or {}
    assert "${" not in _DEFAULTED.sub("", value), f"unsupported interpolation in {value!r}"
    return _DEFAULTED.sub(lambda m: env.get(m.group(1)) or m.group(2), value)


def _value(raw: str) -> str:
    # The subset of compose's env-file syntax the committed files use: NAME=value, with a
    # single-quoted value taken literally (compose does not expand "$" inside).
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    assert "$" not in raw and '"' not in raw, f"quote {raw!r} in single quotes"
    return raw


def read_env_file(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        assert match, f"{path.name}: not NAME=value: {line!r}"
        found[match.group(1)] = _value(match.group(2))
    return found


def commented_blocks(path: Path) -> list[dict[str, str]]:
    """Each run of `# NAME=value` lines in an example file, uncommented."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.fullmatch(line.removeprefix("# "))
        if line.startswith("# ") and match:
            current[match.group(1)] = _value(match.group(2))
        elif current:
            blocks.append(current)
            current = {}
    if current:
        blocks.append(current)
    return blocks


def block_setting(path: Path, name: str, value: str) -> dict[str, str]:
    (block,) = [b for b in commented_blocks(path) if b.get(name) == value]
    return block


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def tls_overlay() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(TLS_OVERLAY.read_text(encoding="utf-8"))
    return document


def env_files(service: dict[str, Any]) -> list[dict[str, Any]]:
    entries = service.get("env_file", [])
    assert all(isinstance(e, dict) for e in entries), "env_file entries name path and required"
    return list(entries)


def environment(
    service: dict[str, Any], operator: dict[str, dict[str, str]] | None = None
) -> dict[str, str]:
    """The container's environment as compose builds it: each env file in order, then
    ``environment``. ``operator`` stands in for relay.env / webhooks.env (absent if not
    given, as on a fresh clone)."""
    operator = operator or {}
    resolved: dict[str, str] = {}
    for entry in env_files(service):
        name = entry["path"]
        if name in OPERATOR_ENV_FILES:
            assert entry["required"] is False, f"{name} must be optional"
            resolved.update(operator.get(name, {}))
        else:
            assert entry.get("required", True) is True, name
            resolved.update(read_env_file(REPO_ROOT / name))
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "environment is written as a mapping throughout"
    for name, value in raw.items():
        assert "${" not in str(value), f"{name}: settings come from env files, not the host"
        resolved[name] = str(value)
    return resolved


def relay_argv(service: dict[str, Any]) -> list[str]:
    """relay's arguments: the command, after `relay webhooks` for the control services."""
    entrypoint: list[str] = service.get("entrypoint", ["relay"])
    assert entrypoint[0] == "relay", entrypoint
    command: list[str] = service["command"]
    return entrypoint[1:] + command


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a ./path) for the short syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = interpolate(str(entry)).split(":")
        assert target not in mounts, f"{target} mounted twice"
        mounts[target] = source
    return mounts


def read_only_mounts(service: dict[str, Any]) -> set[str]:
    return {
        interpolate(str(entry)).split(":")[1]
        for entry in service.get("volumes", [])
        if str(entry).endswith(":ro")
    }


def relay_settings(service: dict[str, Any], env: dict[str, str]) -> Settings:
    """Settings as the service loads them: its --config (or RELAY_CONFIG) from the config
    mount, read from the repository, then its environment."""
    args = build_parser().parse_args(relay_argv(service))
    in_container = Path(getattr(args, "config", None) or env["RELAY_CONFIG"])
    source = volume_mounts(service)[str(in_container.parent)]
    return Settings.load(REPO_ROOT / source / in_container.name, env=env)


def with_overlay(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """One service merged as compose merges files: mappings key by key, volumes by target."""
    merged = dict(base)
    merged["environment"] = {**base.get("environment", {}), **overlay.get("environment", {})}
    merged["volumes"] = list(base.get("volumes", [])) + list(overlay.get("volumes", []))
    for key, value in overlay.items():
        if key not in ("environment", "volumes"):
            merged[key] = value
    return merged


def _schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(find_file("compose-spec.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]


def test_compose_matches_the_compose_specification(
    compose: dict[str, Any], tls_overlay: dict[str, Any]
) -> None:
    assert not _schema_errors(compose), "\n".join(_schema_errors(compose))
    assert not _schema_errors(tls_overlay), "\n".join(_schema_errors(tls_overlay))


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
        assert _RELAY_SETTING.fullmatch(name), name
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


def test_relay_env_example_changes_nothing_until_uncommented() -> None:
    assert read_env_file(RELAY_ENV_EXAMPLE) == {}
    assert read_env_file(WEBHOOKS_ENV_EXAMPLE) == {}
    ignored = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    for name in ("/relay.env", "/webhooks.env", "/tls/"):
        assert name in ignored, f"{name} holds secrets: git-ignore it"


@pytest.mark.parametrize("block", commented_blocks(RELAY_ENV_EXAMPLE), ids=lambda b: next(iter(b)))
def test_each_relay_env_example_block_loads_in_relay_and_the_topic_job(
    services: dict[str, dict[str, Any]], block: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in block:
        assert _RELAY_SETTING.fullmatch(name) or name == "ULTRACART_SIMPLE_KEY", name
    if "ULTRACART_SIMPLE_KEY" in block:
        # The status poller reads its key from the process environment, as in the container.
        monkeypatch.setenv("ULTRACART_SIMPLE_KEY", block["ULTRACART_SIMPLE_KEY"])
    operator = {"relay.env": block}
    for name in ("relay", "kafka-topics", "webhooks"):
        service = services[name]
        env = environment(service, operator)
        settings = relay_settings(service, env)
        producer_config(settings.kafka, settings.intake)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_managed_kafka_by_environment_alone(
    services: dict[str, dict[str, Any]], mechanism: str
) -> None:
    """The managed-Kafka lines of relay.env.example reach relay's producer and the topic
    job's admin client alike, and the local broker is the one dependency that may be absent."""
    block = block_setting(RELAY_ENV_EXAMPLE, "RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM", mechanism)
    operator = {"relay.env": block}
    relay = relay_settings(services["relay"], environment(services["relay"], operator))
    topics = relay_settings(
        services["kafka-topics"], environment(services["kafka-topics"], operator)
    )
    assert relay.kafka == topics.kafka
    assert "kafka:" not in relay.kafka.bootstrap_servers
    for config in (producer_config(relay.kafka, relay.intake), admin_config(topics.kafka)):
        assert config["bootstrap.servers"] == block["RELAY_KAFKA__BOOTSTRAP_SERVERS"]
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == mechanism
        assert config["sasl.username"] and config["sasl.password"]
    assert services["kafka-topics"]["depends_on"]["kafka"]["required"] is False
    # docs/deploy.md shows the same lines.
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert f"RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM={mechanism}" in deploy
    assert "--scale kafka=0" in deploy


def test_every_env_block_in_the_deploy_guide_loads_in_relay(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The env lines docs/deploy.md tells operators to write, block by block, as relay.env."""
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = []
    for code in re.findall(r"^```[a-z]*\n(.*?)^```", deploy, flags=re.MULTILINE | re.DOTALL):
        lines = re.findall(r"^((?:RELAY|ULTRACART)_[A-Z0-9_]+)=(\S*)$", code, re.MULTILINE)
        if lines and not any(name.startswith("RELAY_SERVER__TLS_") for name, _ in lines):
            blocks.append({name: _value(value) for name, value in lines})
    assert any("RELAY_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL" in block for block in blocks)
    for block in blocks:
        for name in block:
            assert _RELAY_SETTING.fullmatch(name) or name == "ULTRACART_SIMPLE_KEY", name
        if "ULTRACART_SIMPLE_KEY" in block:
            monkeypatch.setenv("ULTRACART_SIMPLE_KEY", block["ULTRACART_SIMPLE_KEY"])
        relay = services["relay"]
        relay_settings(relay, environment(relay, {"relay.env": block}))


def test_relay_settings_load_from_the_compose_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    relay = services["relay"]
    settings = relay_settings(relay, environment(relay))
    # The credential file lives on the volume relay-credentials writes.
    credentials = Path(settings.auth.basic_credentials_file)
    assert str(credentials.parent) == SECRETS_DIR
    assert volume_mounts(relay)[SECRETS_DIR] == "relay-secrets"
    assert volume_mounts(services["relay-credentials"])[SECRETS_DIR] == "relay-secrets"
    # The healthcheck asks the admin port's /readyz; compose waits out the whole drain.
    check = " ".join(relay["healthcheck"]["test"])
    assert f"http://127.0.0.1:{settings.server.admin_port}/readyz" in check
    assert [str(settings.server.admin_port)] == relay["expose"]
    assert f"127.0.0.1:{settings.server.port}:{settings.server.port}" in relay["ports"]
    grace = int(relay["stop_grace_period"].removesuffix("s"))
    assert grace > settings.server.shutdown_grace_seconds
    topics = relay_settings(services["kafka-topics"], environment(services["kafka-topics"]))
    assert topics.kafka.bootstrap_servers == settings.kafka.bootstrap_servers


def test_relay_containers_are_hardened(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("image") != RELAY_IMAGE:
            continue
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["build"] == {"context": "."}, name
        assert "user" not in service, f"{name} runs as the image's uid 10001"
        mounts = volume_mounts(service)
        if mounts.get(SECRETS_DIR) == "relay-secrets":
            writable = SECRETS_DIR not in read_only_mounts(service)
            assert writable is (name in SECRET_WRITERS), f"{name} mounts {SECRETS_DIR}"
    assert SECRETS_DIR in read_only_mounts(services["relay"])


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
    admin_port = relay_settings(services["relay"], environment(services["relay"])).server.admin_port
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "relay"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["relay"] and discovery["port"] == admin_port
    for rule_file in config["rule_files"]:
        assert (config_dir / rule_file).is_file(), rule_file
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_audit_runs_continuously_and_prometheus_scrapes_it(
    services: dict[str, dict[str, Any]],
) -> None:
    audit = services["audit"]
    args = build_parser().parse_args(relay_argv(audit))
    assert args.webhooks_command == "audit" and args.repair
    assert args.every is not None and args.every < args.pending_for
    assert SECRETS_DIR in read_only_mounts(audit)
    port = audit["healthcheck"]["test"][-1].split("127.0.0.1:")[1].split("/")[0]
    assert int(port) == args.metrics_port
    config_dir = REPO_ROOT / volume_mounts(services["prometheus"])["/etc/prometheus"]
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "relay-audit"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["audit"] and discovery["port"] == args.metrics_port


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
    assert not _schema_errors({"services": {"relay": relay}, "volumes": {"relay-secrets": {}}})
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
