"""The schema tests' tools, from ``make tools``: the UltraCart SDK venv and ajv.

Both live in the cache outside the clone. A test that needs one and cannot find it fails
with the command that installs it; it never skips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from relay.consumers.schema_store import SchemaStore
from tests.support.cache import cache_dir, tools_dir
from tests.support.relay import REPO_ROOT

SDK_OBJECTS = REPO_ROOT / "tools" / "sdk_objects.py"
AJV_CHECK = tools_dir() / "ajv" / "check-schemas.js"
HINT = "run make tools"


def sdk_python() -> Path:
    version = SchemaStore.load().sdk_version
    home = cache_dir() / "ultracart-sdk" / version
    if not (home / ".installed").exists():
        pytest.fail(f"the UltraCart SDK venv is not in {home}: {HINT}", pytrace=False)
    return home / "bin" / "python"


def sdk_objects(models: list[str], depth: int) -> dict[str, Any]:
    """One object per SDK model, every field set, nested ``depth`` levels (tools/sdk_objects.py)."""
    result = subprocess.run(
        [str(sdk_python()), str(SDK_OBJECTS), "--depth", str(depth), *models],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    built: dict[str, Any] = json.loads(result.stdout)
    return built


def run_ajv(schema_files: list[Path], instances: Path | None = None) -> dict[str, Any]:
    """ajv (strict, draft 2020-12) on the files; its JSON summary, whatever the outcome."""
    node = shutil.which("node")
    if node is None or not AJV_CHECK.is_file():
        pytest.fail(f"node or {AJV_CHECK} is missing: {HINT}", pytrace=False)
    extra = ["--instances", str(instances)] if instances is not None else []
    result = subprocess.run(
        [node, str(AJV_CHECK), *map(str, schema_files), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary
