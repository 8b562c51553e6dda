"""``python -m bench.bare_server [bare|bridge]``: serve a reference app as ``relay serve``
serves relay: the bare app (default) or the bridge floor."""

from __future__ import annotations

import sys

from bench.bare_app import create_bare_app
from bench.bridge_app import create_bridge_app
from relay.log_context import configure_logging
from relay.serving.run import serve
from relay.settings import Settings

_APPS = {"bare": create_bare_app, "bridge": create_bridge_app}


def main(argv: list[str]) -> int:
    factory = _APPS[argv[0] if argv else "bare"]
    settings = Settings.load()
    configure_logging(settings.server.log_level, settings.server.log_format)
    return serve(settings, factory)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
