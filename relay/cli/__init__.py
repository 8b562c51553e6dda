"""The ``relay`` command.

``serve``, ``check-config`` and ``create-topics`` (relay's own start-up and Kafka set-up) are
defined here; every other group of subcommands lives in its own module and registers itself
through ``register(commands)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from relay import __version__
from relay.cli import consumers, emulator, ultracart_auth, webhooks
from relay.cli.conventions import (
    EXIT_CODES_EPILOG,
    EXIT_FAILURE,
    EXIT_OK,
    HelpFormatter,
    formatted,
    print_json,
    say,
)
from relay.kafka.errors import KafkaFailed, KafkaUnreachable
from relay.log_context import configure_logging
from relay.serving.preflight import preflight
from relay.settings import ConfigError, Settings


def _load_settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.config)


def _cmd_serve(args: argparse.Namespace) -> int:
    from relay.serving.run import serve

    settings = _load_settings(args)
    problems = preflight(settings)
    for problem in problems:
        say(f"relay: cannot start: {problem}")
    if problems:
        return EXIT_FAILURE
    configure_logging(settings.server.log_level, settings.server.log_format)
    return serve(settings)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from relay.kafka.topic_check import check_topics

    document: dict[str, Any] = {"valid": False, "problems": [], "kafka": None}
    try:
        settings = _load_settings(args)
    except ConfigError as exc:
        return _check_failed(args, document, [exc], label="configuration error: ")
    problems = preflight(settings)
    document["intake"] = f":{settings.server.port}{settings.intake.path}"
    if problems:
        return _check_failed(args, document, problems)
    report = None
    if args.connect:
        try:
            report = check_topics(settings, args.timeout)
        except KafkaUnreachable as exc:
            return _check_failed(
                args, document, [ConfigError(str(exc), setting="kafka.bootstrap_servers")]
            )
        document["kafka"] = report.to_json()
        if not report.ok:
            problems = [
                ConfigError(f"topics: {line}", setting="topics") for line in report.problems()
            ]
            return _check_failed(args, document, problems, kafka_summary=report.summary())
    document["valid"] = True
    if args.json:
        print_json(document)
    else:
        print(f"configuration is valid: intake on {document['intake']}")
        if report is not None:
            print(f"kafka at {settings.kafka.bootstrap_servers}: {report.summary()}")
            for note in report.notes:
                print(f"  note: {note}")
    return EXIT_OK


def _check_failed(
    args: argparse.Namespace,
    document: dict[str, Any],
    problems: list[ConfigError],
    kafka_summary: str | None = None,
    label: str = "",
) -> int:
    if args.json:
        document["problems"] = [p.to_json() for p in problems]
        print_json(document)
        return EXIT_FAILURE
    if kafka_summary:
        say(f"relay: kafka: {kafka_summary}")
    for problem in problems:
        say(f"relay: {label}{problem}")
    return EXIT_FAILURE


def _cmd_topics(args: argparse.Namespace) -> int:
    from relay.events.routing import TopicRouter
    from relay.kafka.topics import ensure_topics

    settings = _load_settings(args)
    created = ensure_topics(
        settings,
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        timeout=args.timeout,
    )
    if args.json:
        wanted = TopicRouter(settings.topics).all_known_topics()
        print_json({"created": created, "existing": [t for t in wanted if t not in created]})
        return EXIT_OK
    for topic in created:
        print(f"created {topic}")
    print(f"{len(created)} topic(s) created; the others already existed")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="Bridge UltraCart webhooks onto Kafka.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = formatted(commands.add_parser(name, help=help, description=help))
        sub.add_argument(
            "--config",
            "-c",
            default=None,
            help="relay.toml to read (default: $RELAY_CONFIG; RELAY_* env vars override it)",
        )
        return sub

    serve = command(
        "serve",
        "check the configuration as check-config does, then run the intake and admin servers",
    )
    serve.set_defaults(handler=_cmd_serve)

    check = command(
        "check-config",
        "validate the configuration: settings, credentials file, librdkafka options, TLS files",
    )
    check.add_argument(
        "--connect",
        action="store_true",
        help="also reach Kafka: every routed topic exists (unless the cluster auto-creates "
        "topics) and admits relay's largest record",
    )
    check.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for Kafka with --connect"
    )
    check.add_argument("--json", action="store_true", help="the result as one JSON document")
    check.set_defaults(handler=_cmd_check_config)

    topics = command("create-topics", "create every topic relay may write to")
    topics.add_argument("--partitions", type=int, default=3, help="partitions per new topic")
    topics.add_argument(
        "--replication-factor",
        type=int,
        default=-1,
        help="replicas per new topic; -1 takes the broker's default",
    )
    topics.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait for Kafka, per step"
    )
    topics.add_argument(
        "--json", action="store_true", help="created and existing topics as one JSON document"
    )
    topics.set_defaults(handler=_cmd_topics)
    webhooks.register(commands)
    ultracart_auth.register(commands)
    consumers.register(commands)  # schemas, tail, dead-letters
    emulator.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        say(f"relay: configuration error: {exc}")
        return EXIT_FAILURE
    except KafkaFailed as exc:
        say(f"relay: {exc}")
        return EXIT_FAILURE
    except OSError as exc:
        # A file or socket the command was pointed at (schemas export DIR, a port in use).
        where = f": {exc.filename}" if exc.filename else ""
        say(f"relay: {exc.strerror or exc}{where}")
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
