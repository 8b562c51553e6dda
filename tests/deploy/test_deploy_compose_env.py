"""The compose stack's environments: the operator's env examples block by block, managed
Kafka by environment alone, the deploy guide's blocks, and what the containers mount and
run with (hardening, Prometheus, Grafana)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.cli import build_parser
from relay.kafka.client_config import admin_config, producer_config
from tests.deploy.compose_file import (
    RELAY_ENV_EXAMPLE,
    RELAY_IMAGE,
    RELAY_SETTING,
    SECRET_WRITERS,
    SECRETS_DIR,
    WEBHOOKS_ENV_EXAMPLE,
    block_setting,
    commented_blocks,
    env_value,
    environment,
    read_env_file,
    read_only_mounts,
    relay_argv,
    relay_settings,
    volume_mounts,
)
from tests.deploy.support import REPO_ROOT


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
        assert RELAY_SETTING.fullmatch(name) or name == "ULTRACART_SIMPLE_KEY", name
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
            blocks.append({name: env_value(value) for name, value in lines})
    assert any("RELAY_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL" in block for block in blocks)
    for block in blocks:
        for name in block:
            assert RELAY_SETTING.fullmatch(name) or name == "ULTRACART_SIMPLE_KEY", name
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
