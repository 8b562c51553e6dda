"""What the compose tests share: the files' paths, the service sets they expect, and helpers
that resolve a service's environment, mounts and settings as compose and relay would (the
fixtures are in conftest.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from relay.cli import build_parser
from relay.settings import Settings
from tests.deploy.support import REPO_ROOT, find_file

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
RELAY_SETTING = re.compile(r"RELAY_[A-Z0-9]+(__[A-Z0-9_]+)+")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default}, as `docker compose up` resolves it with VAR unset."""
    env = env or {}
    assert "${" not in _DEFAULTED.sub("", value), f"unsupported interpolation in {value!r}"
    return _DEFAULTED.sub(lambda m: env.get(m.group(1)) or m.group(2), value)


def env_value(raw: str) -> str:
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
        found[match.group(1)] = env_value(match.group(2))
    return found


def commented_blocks(path: Path) -> list[dict[str, str]]:
    """Each run of `# NAME=value` lines in an example file, uncommented."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.fullmatch(line.removeprefix("# "))
        if line.startswith("# ") and match:
            current[match.group(1)] = env_value(match.group(2))
        elif current:
            blocks.append(current)
            current = {}
    if current:
        blocks.append(current)
    return blocks


def block_setting(path: Path, name: str, value: str) -> dict[str, str]:
    (block,) = [b for b in commented_blocks(path) if b.get(name) == value]
    return block


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


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(find_file("compose-spec.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]
