"""The ``relay`` command. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from relay import __version__
from relay.control.cli import register as register_control
from relay.emulator.cli import register as register_emulator
from relay.log_context import configure_logging
from relay.settings import ConfigError, Settings


def _load_settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.config)


def _cmd_serve(args: argparse.Namespace) -> int:
    from relay.server import serve

    settings = _load_settings(args)
    configure_logging(settings.server.log_level, settings.server.log_format)
    return serve(settings)


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    from relay.kafka.client_config import producer_config

    producer_config(settings.kafka, settings.intake)
    print(f"configuration is valid: intake on :{settings.server.port}{settings.intake.path}")
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from relay.kafka.topics import ensure_topics

    settings = _load_settings(args)
    created = ensure_topics(
        settings, partitions=args.partitions, replication_factor=args.replication_factor
    )
    for topic in created:
        print(f"created {topic}")
    print(f"{len(created)} topic(s) created; the others already existed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="Bridge UltraCart webhooks onto Kafka."
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--config",
            "-c",
            default=None,
            help="relay.toml to read (default: $RELAY_CONFIG; RELAY_* env vars override it)",
        )
        return sub

    serve = with_config(commands.add_parser("serve", help="run the intake and admin servers"))
    serve.set_defaults(handler=_cmd_serve)

    check = with_config(commands.add_parser("check-config", help="validate the configuration"))
    check.set_defaults(handler=_cmd_check_config)

    topics = with_config(
        commands.add_parser("create-topics", help="create every topic relay may write to")
    )
    topics.add_argument("--partitions", type=int, default=3)
    topics.add_argument("--replication-factor", type=int, default=-1, help="-1: broker default")
    topics.set_defaults(handler=_cmd_topics)
    register_control(commands)  # webhooks, auth
    register_emulator(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"relay: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
