"""Fixtures of the deploy tests: helm and the chart rendered per value set; the compose
file, its services and the TLS overlay, parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import VALUE_SETS
from tests.deploy.compose_file import COMPOSE_FILE, TLS_OVERLAY
from tests.deploy.support import Manifest, find_tool, render_chart


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_tool("helm")


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    """Each value set rendered once, for the newest Kubernetes version."""
    return {name: render_chart(helm, values) for name, values in VALUE_SETS.items()}


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
