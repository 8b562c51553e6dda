"""Where built tools and throwaway environments are cached: outside the clone.

The same place as deploy/tools/paths.sh gives the shell scripts, so a fresh clone on a
machine where another clone already built helm, promtool or the SDK venv reuses them.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``RELAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/relay``, else ``~/.cache/relay``."""
    if found := os.environ.get("RELAY_CACHE_DIR"):
        return Path(found)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "relay"


def tools_dir() -> Path:
    """``RELAY_TOOLS_DIR``, else ``<cache_dir>/tools``: helm, promtool, benthos, schemas."""
    if found := os.environ.get("RELAY_TOOLS_DIR"):
        return Path(found)
    return cache_dir() / "tools"
