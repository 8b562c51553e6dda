"""``relay emulator``: run the UltraCart emulator (docker-compose's demo profile uses it)."""

from __future__ import annotations

import argparse
import logging
import os

from relay.cli.conventions import formatted
from relay.emulator.options import BODY_SHAPES, EmulatorOptions

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = formatted(
        commands.add_parser(
            "emulator",
            help="run an UltraCart emulator (webhook API, OAuth, deliveries) for tests and demos",
            description="Serves UltraCart's webhook API under /rest/v2 from memory and delivers "
            "webhooks like UltraCart. Not for production.",
        )
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on")
    parser.add_argument(
        "--simple-key",
        action="append",
        default=None,
        help="accepted simple key (repeatable; default $ULTRACART_SIMPLE_KEY or "
        "'emulator-simple-key')",
    )
    parser.add_argument(
        "--oauth-client-id",
        default="emulator-client",
        help="OAuth client id the token endpoint accepts",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="seconds an access token lives"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=1000, help="API calls per hour before 429"
    )
    parser.add_argument(
        "--rate-limit-burst",
        type=int,
        default=None,
        help="calls the leaky bucket holds before 429 (default: an hour's worth)",
    )
    parser.add_argument(
        "--api-latency", type=float, default=0.0, help="seconds added to each API call"
    )
    parser.add_argument("--items", type=int, default=50, help="seeded items (reflow)")
    parser.add_argument("--orders", type=int, default=20, help="seeded orders (reflow)")
    parser.add_argument("--merchant-id", default="DEMO", help="merchant id in deliveries")
    parser.add_argument(
        "--retry-base",
        type=float,
        default=1.0,
        help="seconds before the first delivery retry (doubling after)",
    )
    parser.add_argument(
        "--retry-max",
        type=float,
        default=60.0,
        help="longest wait between delivery retries, in seconds",
    )
    parser.add_argument(
        "--disable-after",
        type=int,
        default=50,
        help="consecutive failures before disabling the webhook",
    )
    parser.add_argument(
        "--body-shape",
        choices=BODY_SHAPES,
        default="object",
        help='delivery body: {"events": [...]} ("object", the sample receiver\'s) or a bare '
        "array (\"array\", the wiki's); UltraCart's own is unknown",
    )
    parser.add_argument(
        "--loopback-only", action="store_true", help="deliver only to 127.0.0.1/localhost (tests)"
    )
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> EmulatorOptions:
    keys = args.simple_key or [os.environ.get("ULTRACART_SIMPLE_KEY") or "emulator-simple-key"]
    return EmulatorOptions(
        simple_keys=tuple(keys),
        oauth_client_id=args.oauth_client_id,
        token_ttl_seconds=args.token_ttl,
        rate_limit_per_hour=args.rate_limit,
        rate_limit_burst=args.rate_limit_burst,
        api_latency_seconds=args.api_latency,
        items=args.items,
        orders=args.orders,
        merchant_id=args.merchant_id,
        retry_base_seconds=args.retry_base,
        retry_max_seconds=args.retry_max,
        disable_after_failures=args.disable_after,
        body_shape=args.body_shape,
        loopback_only=args.loopback_only,
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from relay.emulator.app import create_emulator_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = options_from(args)
    logger.info(
        "UltraCart emulator on http://%s:%d/rest/v2 with %d items and %d orders",
        args.host,
        args.port,
        options.items,
        options.orders,
    )
    uvicorn.run(create_emulator_app(options), host=args.host, port=args.port, log_level="warning")
    return 0
