"""Driving the Docker engine and compose for tests/compose: commands with deadlines, and
the phase timings the conftest prints."""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.commands import run, timed

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_SCRIPTS = REPO_ROOT / "deploy" / "docker"
OVERRIDE = Path(__file__).resolve().parent / "compose.e2e.yml"
# Grafana is left out: its image cannot be built here (docs/deploy.md).
SERVICES = [
    "kafka",
    "relay-credentials",
    "kafka-topics",
    "relay",
    "prometheus",
    "emulator",
    "demo-webhook",
    "demo-traffic",
]
ONE_SHOTS = {"relay-credentials", "kafka-topics", "demo-webhook"}

PHASES: list[tuple[str, float]] = []
# What the checks saw (counts, versions), printed with the timings.
NOTES: list[str] = []


def phase(name: str) -> AbstractContextManager[None]:
    return timed(name, PHASES)


def script(name: str, *args: str, timeout: float) -> str:
    """A deploy/docker script; its last stdout line (a tag or a directory), if any."""
    out = run([str(DOCKER_SCRIPTS / name), *args], timeout=timeout).stdout.strip()
    return out.splitlines()[-1] if out else ""


@dataclass(frozen=True)
class Compose:
    project: str
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        command = ["docker", "compose", "--project-name", self.project]
        command += ["--file", "docker-compose.yml", "--file", str(OVERRIDE), "--profile", "demo"]
        return run([*command, *args], timeout=timeout, env=self.env, check=check).stdout

    def containers(self) -> list[dict[str, Any]]:
        out = self("ps", "--all", "--format", "json")
        # One JSON object per line (compose v2.21+), or one array from older versions.
        text = out.strip()
        if text.startswith("["):
            rows: list[dict[str, Any]] = json.loads(text)
            return rows
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def host_port(self, service: str, port: int) -> int:
        address = self("port", service, str(port)).strip()
        return int(address.rsplit(":", 1)[1])

    def exec_python(self, service: str, code: str, timeout: float = 30) -> str:
        return self("exec", "-T", service, "python", "-c", code, timeout=timeout)


def compose_env(docker_config: str, images: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, DOCKER_CONFIG=docker_config)
    # The legacy builder: there is no buildx plugin here, and BuildKit would try to pull the
    # Dockerfile's `# syntax=docker/dockerfile:1` frontend from a registry.
    env["DOCKER_BUILDKIT"] = "0"
    # The stack's host variables come from the environment; none leaks in from the caller.
    for name in list(env):
        if name.startswith(("RELAY_", "ULTRACART_")):
            del env[name]
    env.update(images)
    return env


def leftovers(project: str) -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={project}"
    found = {}
    for kind, command in {
        "containers": ["docker", "ps", "--all", "--quiet", "--filter", label],
        "networks": ["docker", "network", "ls", "--quiet", "--filter", label],
        "volumes": ["docker", "volume", "ls", "--quiet", "--filter", label],
    }.items():
        found[kind] = run(command, timeout=30).stdout.split()
    return found
