"""``relay webhooks reflow``: ask UltraCart to re-send every item or order, and with
``--wait`` count the records as they reach Kafka."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from relay.cli.control_common import (
    Handler,
    api_client,
    find_webhook,
    load_config,
    webhook_oid,
)
from relay.cli.conventions import say
from relay.control.catalog import supports_reflow
from relay.control.client import UltraCartClient
from relay.control.errors import ControlError
from relay.events.catalog import REFLOW_EVENTS
from relay.settings.errors import ConfigError


def _kafka_target(args: argparse.Namespace, event: str) -> tuple[str, str, dict[str, str]]:
    """(bootstrap, topic, extra consumer options), from flags or relay's own settings."""
    from relay.events.routing import TopicRouter
    from relay.settings import Settings

    if args.topic and args.bootstrap and not args.relay_config:
        return args.bootstrap, args.topic, {}
    try:
        settings = Settings.load(args.relay_config)
    except ConfigError as error:
        raise ConfigError(
            f"relay settings (for the topic and brokers; or pass --topic and --bootstrap): {error}"
        ) from None
    topic = args.topic or TopicRouter(settings.topics).topic_for(event)
    bootstrap = args.bootstrap or settings.kafka.bootstrap_servers
    # Only connection and security options make sense for a consumer.
    extra = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in settings.kafka.librdkafka.items()
        if key.startswith(("security.", "sasl.", "ssl.", "socket.", "client."))
    }
    return bootstrap, topic, extra


def cmd_reflow(args: argparse.Namespace) -> int:
    event = args.event
    if not supports_reflow(event):
        raise ControlError(
            f"{event} cannot be reflowed; UltraCart reflows only {', '.join(sorted(REFLOW_EVENTS))}"
        )
    config = load_config(args)
    client = api_client(config)
    webhook = find_webhook(client, config)
    oid = webhook_oid(webhook)
    watcher = None
    if args.wait:
        from relay.control.reflow_watch import TopicWatcher

        bootstrap, topic, extra = _kafka_target(args, event)
        watcher = TopicWatcher(bootstrap, topic, extra)
        watcher.mark()
    try:
        reflow = client.reflow(oid, event)
        if not reflow.get("queued"):
            print(f"UltraCart did not queue a reflow of {event} (nothing to send?).")
            return 0
        print(f"UltraCart queued a reflow of every {event.split('_')[0]} on webhook {oid}.")
        if watcher is None:
            return 0
        return _wait(args, client, oid, watcher)
    finally:
        if watcher is not None:
            watcher.close()


def _wait(args: argparse.Namespace, client: UltraCartClient, oid: int, watcher: Any) -> int:
    from relay.control.reflow_watch import wait_for_reflow

    def pending() -> int | None:
        webhook = client.find_by_oid(oid)
        return None if webhook is None else int(webhook.get("pending", 0))

    result = wait_for_reflow(
        watcher,
        pending,
        say=say,
        timeout=args.timeout,
        idle=args.idle,
        status_every=args.status_every,
        expect=args.expect,
    )
    print(
        f"{result.records} record(s) reached {watcher.topic} "
        f"({result.distinct_keys} distinct key(s)); "
        + ("complete." if result.complete else "incomplete.")
    )
    return 0 if result.complete else 1


def add_reflow_command(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    reflow = add("reflow", cmd_reflow, "ask UltraCart to re-send every item or order")
    reflow.add_argument("event", help="item_update or order_create")
    reflow.add_argument(
        "--wait", action="store_true", help="count the reflowed records as they reach Kafka"
    )
    reflow.add_argument(
        "--relay-config",
        default=None,
        help="relay.toml, for the topic and brokers (default: $RELAY_CONFIG)",
    )
    reflow.add_argument(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers (default: relay's kafka.bootstrap_servers)",
    )
    reflow.add_argument("--topic", default=None, help="topic to watch (default: relay's route)")
    reflow.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds to wait with --wait before giving up (exit 1)",
    )
    reflow.add_argument(
        "--idle",
        type=float,
        default=3.0,
        help="seconds without new records, once UltraCart is done, to finish",
    )
    reflow.add_argument(
        "--status-every",
        type=float,
        default=10.0,
        help="seconds between UltraCart status calls (each costs one API call)",
    )
    reflow.add_argument(
        "--expect", type=int, default=None, help="finish as soon as this many records arrived"
    )
