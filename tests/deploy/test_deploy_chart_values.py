"""values.schema.json against relay's own settings, and HTTPS from a kubernetes.io/tls
Secret."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
import pytest

from relay.settings import ConfigError, Settings
from relay.settings.coerce import unwrap
from tests.deploy.chart import relay_container, workload
from tests.deploy.support import CHART_DIR, REPO_ROOT, Manifest, helm_template, pod_spec

# values.schema.json and relay's own settings.

# Keys relay has that the chart sets itself, so values.schema.json leaves them out of
# config: secrets come from Secrets, the spool's switch and path from spool.*.
CHART_OWNED_KEYS = {
    "auth.basic_credentials",
    "auth.basic_credentials_file",
    "auth.signature.secrets",
    "spool.enabled",
    "spool.directory",
}
# Tables whose keys are the user's (names of events, librdkafka options), not relay's.
OPEN_TABLES = {"kafka.librdkafka", "topics.events", "keys"}


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    assert node.get("additionalProperties") is False, f"config{prefix or ''} is open"
    for name, child in node["properties"].items():
        path = f"{prefix}.{name}".lstrip(".")
        keys.add(path)
        if child.get("type") == "object" and path not in OPEN_TABLES:
            keys |= _schema_keys(child, f".{path}")
    return keys


def _relay_keys() -> set[str]:
    """Every key relay's settings loader reads, from its schema."""
    keys: set[str] = set()

    def walk(node: mi.Type, prefix: str) -> None:
        node = unwrap(node)
        if not isinstance(node, mi.StructType):
            return
        for field in node.fields:
            path = f"{prefix}.{field.encode_name}".lstrip(".")
            keys.add(path)
            if path not in OPEN_TABLES:
                walk(field.type, path)

    walk(mi.type_info(Settings), "")
    return keys


def _unknown_to_relay(key: str) -> bool:
    """Does relay's loader call ``key`` unknown? Other complaints (types) do not count."""
    *tables, leaf = key.split(".")
    raw: dict[str, Any] = {leaf: {} if key in OPEN_TABLES else "x"}
    for table in reversed(tables):
        raw = {table: raw}
    if tables[:1] == ["ultracart"]:
        raw["ultracart"]["enabled"] = True  # relay checks [ultracart] keys only when on
    try:
        Settings.from_mapping(raw)
    except ConfigError as error:
        return "unknown" in str(error)
    return False


def test_the_values_schema_lists_exactly_relays_config_keys() -> None:
    """values.schema.json closes config with relay's own keys; this fails when relay gains,
    loses or renames a setting and the schema does not follow (or the other way round)."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    in_schema = _schema_keys(schema["properties"]["config"])
    in_relay = _relay_keys()
    example = tomllib.loads((REPO_ROOT / "config" / "relay.toml").read_text(encoding="utf-8"))

    def flatten(table: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for name, value in table.items():
            path = f"{prefix}{name}"
            found.add(path)
            if isinstance(value, dict) and path not in OPEN_TABLES:
                found |= flatten(value, f"{path}.")
        return found

    # The settings types and the documented example agree, and relay's loader takes them.
    assert flatten(example) <= in_relay, flatten(example) - in_relay
    assert CHART_OWNED_KEYS.issubset(in_relay)
    assert in_schema == in_relay - CHART_OWNED_KEYS, {
        "in the schema, not in relay": sorted(in_schema - in_relay),
        "in relay, not in the schema": sorted(in_relay - CHART_OWNED_KEYS - in_schema),
    }
    assert [k for k in sorted(in_schema) if _unknown_to_relay(k)] == []
    assert _unknown_to_relay("server.prot") and _unknown_to_relay("ultracart.oauth.client")


@pytest.mark.parametrize(
    "config",
    [
        {"server": {"prot": 8080}},
        {"kafka": {"bootstrap_server": "kafka:9092"}},
        {"spool": {"fsynk": "always"}},
        {"auth": {"signature": {"tolerance": 300}}},
        {"ultracart": {"oauth": {"client": "x"}}},
        {"topics": {"patterns": [{"match": "order_*", "topik": "orders"}]}},
        {"metrics": {}},
    ],
)
def test_a_misspelt_config_key_fails_helm(helm: Path, config: dict[str, Any]) -> None:
    result = helm_template(helm, {"config": config})
    assert result.returncode != 0
    assert "additional properties" in result.stderr and "not allowed" in result.stderr


# HTTPS from a kubernetes.io/tls Secret.


def test_tls_secret_is_mounted_and_named_to_relay(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["everything"]
    container = relay_container(manifests)
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["RELAY_SERVER__TLS_CERT_FILE"] == "/etc/relay/tls/tls.crt"
    assert env["RELAY_SERVER__TLS_KEY_FILE"] == "/etc/relay/tls/tls.key"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount == {"name": "tls", "mountPath": "/etc/relay/tls", "readOnly": True}  # no subPath
    volume = next(v for v in pod_spec(workload(manifests))["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "relay-tls"
    assert {i["key"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key"}
    # Same ports as plain HTTP; the probes stay on the plain-HTTP admin port.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "admin": 9090}
    assert container["readinessProbe"]["httpGet"]["port"] == "admin"
    assert not [
        m for m in relay_container(rendered["defaults"])["volumeMounts"] if m["name"] == "tls"
    ]


def test_tls_needs_a_secret_name(helm: Path) -> None:
    result = helm_template(helm, {"tls": {"enabled": True}})
    assert result.returncode != 0
    assert "tls.secretName is required when tls.enabled" in result.stderr
