"""What the UltraCart commands (``webhooks``, ``auth``) share: webhooks.toml, the API
client, errors as one line, and their common options.

Exit codes follow relay.cli.conventions: 0 done, 1 error, 2 usage error or, only with
``plan --detailed-exitcode``, differences. Progress and waits go to stderr; results to
stdout, so scripts can parse them (``--json``: one JSON document).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from relay.cli.conventions import EXIT_FAILURE, formatted, say
from relay.control.client import UltraCartClient
from relay.control.desired import ControlConfig, load
from relay.control.errors import ControlError
from relay.control.factory import build_client
from relay.control.models import Webhook
from relay.settings.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


def on_wait(reason: str, seconds: float, attempt: int, attempts: int) -> None:
    say(f"relay: {reason}; waiting {seconds:.1f} s before attempt {attempt}/{attempts}")


def load_config(args: argparse.Namespace) -> ControlConfig:
    return load(Path(args.config) if args.config else None)


def api_client(config: ControlConfig) -> UltraCartClient:
    return build_client(config.api, on_wait=on_wait)


def guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ControlError, ConfigError) as error:
            say(f"relay: error: {error}")
            return EXIT_FAILURE

    return run


def find_webhook(client: UltraCartClient, config: ControlConfig) -> Webhook:
    webhook = client.find_by_url(config.webhook.url)
    if webhook is None or not isinstance(webhook.get("webhook_oid"), int):
        raise ControlError(f"no webhook for {config.webhook.url} on UltraCart; run `apply`")
    return webhook


def webhook_oid(webhook: Webhook) -> int:
    return int(webhook.get("webhook_oid", 0))


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    formatted(parser)
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        help="desired-state file (default: $RELAY_WEBHOOKS_CONFIG or config/webhooks.toml)",
    )
    return parser


def with_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"{what} as one JSON document")
