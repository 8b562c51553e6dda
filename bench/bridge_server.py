"""``python -m bench.bridge_server``: serve the bridge floor as ``relay serve`` serves relay."""

from __future__ import annotations

import sys

from bench.bridge_app import create_bridge_app
from relay.log_context import configure_logging
from relay.server import serve
from relay.settings import Settings


def main() -> int:
    settings = Settings.load()
    configure_logging(settings.server.log_level, settings.server.log_format)
    return serve(settings, create_bridge_app)


if __name__ == "__main__":
    sys.exit(main())
