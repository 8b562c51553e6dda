"""Fixtures of the Helm chart tests: helm itself, and the chart rendered per value set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.chart import (
    VALUE_SETS,
)
from tests.deploy.support import (
    Manifest,
    find_tool,
    render_chart,
)


@pytest.fixture(scope="module")
def helm() -> Path:
    return find_tool("helm")


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    """Each value set rendered once, for the newest Kubernetes version."""
    return {name: render_chart(helm, values) for name, values in VALUE_SETS.items()}
