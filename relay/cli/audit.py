"""``relay webhooks audit``: prove from UltraCart's delivery log that every delivered event is
in Kafka, and with ``--repair`` put back what is not.

UltraCart's API is reached with webhooks.toml's connection, Kafka and the routing with
relay's own settings (``--relay-config`` or ``$RELAY_CONFIG``, and ``RELAY_`` variables),
which must be those of the ``relay serve`` that received the deliveries: topics, keys and
ce_ids are computed from them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from relay.cli.control_common import Handler, find_webhook, load_config, on_wait, say, webhook_oid
from relay.cli.conventions import EXIT_USAGE, print_json
from relay.cli.times import moment, span
from relay.control.budget import DEFAULT_CALLS_PER_HOUR, CallBudget
from relay.control.factory import build_client
from relay.settings.errors import ConfigError


def _moment(text: str) -> datetime:
    try:
        return moment(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _span(text: str) -> object:
    try:
        return span(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def progress_line(budget: CallBudget, stream: TextIO) -> Callable[[int, int], None] | None:
    """A progress line on a terminal (none when stderr is a file or a pipe)."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        waiting = budget.next_in()
        tail = f", next call in {waiting:.1f} s" if waiting >= 0.5 and done < total else ""
        stream.write(
            f"\rrelay audit: {done}/{total} deliveries read, {budget.spent} API call(s){tail}"
            + ("\n" if done >= total else "")
        )
        stream.flush()

    return show


def cmd_audit(args: argparse.Namespace) -> int:
    from relay.audit.collect import Window
    from relay.audit.run import AuditRequest, audit
    from relay.settings import Settings

    now = datetime.now(UTC)
    if args.until is not None and args.until <= args.since:
        say("relay: error: --until must be later than --since")
        return EXIT_USAGE
    config = load_config(args)
    try:
        settings = Settings.load(args.relay_config)
    except ConfigError as error:
        raise ConfigError(f"relay settings (topics, keys, Kafka): {error}") from None
    if args.bootstrap:
        kafka = msgspec.structs.replace(settings.kafka, bootstrap_servers=args.bootstrap)
        settings = msgspec.structs.replace(settings, kafka=kafka)
    budget = CallBudget(args.api_calls_per_hour, args.max_api_calls)
    client = build_client(config.api, on_wait=on_wait, budget=budget)
    oid = webhook_oid(find_webhook(client, config))
    request = AuditRequest(
        window=Window(args.since, args.until, args.pending_for, now),
        kafka_window=args.kafka_window,
        repair=args.repair,
        reflow=args.reflow,
    )
    report = audit(client, oid, settings, request, progress_line(budget, sys.stderr))
    report.api_calls = budget.spent
    if args.json:
        print_json(report.to_json())
    else:
        _print(report)
    return report.exit_code


def _print(report: object) -> None:
    from relay.audit.outcome import AuditReport

    assert isinstance(report, AuditReport)
    counts = report.counts()
    for event in report.events:
        if event.outcome == "in_kafka":
            continue
        print(
            f"{event.outcome.upper():12} {event.delivery_dts}  log {event.log_request_id}  "
            f"{event.event_name} -> {event.topic or '-'} key {event.key or '-'}  "
            f"ce_id {event.ce_id or '-'}" + ("  (repaired)" if event.repaired else "")
        )
        if event.reason:
            print(f"{'':13}{event.reason}")
        if event.order_ids:
            print(f"{'':13}order ids: {', '.join(event.order_ids)}")
        if event.advice and not event.repaired:
            print(f"{'':13}to do: {event.advice}")
    for reflow in report.reflows:
        state = "queued" if reflow["queued"] else "NOT queued"
        print(f"reflow of {reflow['event_name']}: {state}")
    for note in report.notes:
        print(f"note: {note}")
    print(
        f"webhook {report.webhook_oid}, since {report.since}: "
        + ", ".join(f"{value} {name}" for name, value in counts.items())
        + f"; {report.api_calls} API call(s)"
        + ("" if report.complete else "; INCOMPLETE: the log was not read to its end")
    )


def add_audit_command(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    parser = add(
        "audit",
        cmd_audit,
        "check every delivery in UltraCart's log against Kafka; --repair what is missing",
    )
    parser.add_argument(
        "--since", required=True, type=_moment, help="ISO date-time or a span back: 30m, 2h, 7d"
    )
    parser.add_argument("--until", type=_moment, default=None, help="end of the window")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="republish each missing event from the logged body (same bytes and ce_id, plus "
        "relay_repaired_from: ultracart-log:<log request id>)",
    )
    parser.add_argument(
        "--reflow",
        action="store_true",
        help="ask UltraCart to reflow item_update / order_create when a delivery of them was "
        "cut at 100,000 characters in the log (UltraCart re-sends every item / order)",
    )
    parser.add_argument(
        "--max-api-calls",
        type=_positive,
        default=None,
        help="stop calling UltraCart after this many calls (what is left is unverifiable)",
    )
    parser.add_argument(
        "--api-calls-per-hour",
        type=_positive,
        default=DEFAULT_CALLS_PER_HOUR,
        help="pace calls to this rate (UltraCart's budget is 1,000/h per application and IP, "
        "shared with every other client)",
    )
    parser.add_argument(
        "--pending-for",
        type=_span,
        default=span("24h"),
        help="a failed delivery younger than this is pending (UltraCart will retry it), "
        "not missing (default: 24h)",
    )
    parser.add_argument(
        "--kafka-window",
        type=_span,
        default=span("1h"),
        help="how far from its delivery's time an event's record may be (default: 1h)",
    )
    parser.add_argument(
        "--relay-config",
        default=None,
        help="relay.toml, for topics, keys and Kafka (default: $RELAY_CONFIG)",
    )
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers (default: relay's kafka.bootstrap_servers)",
    )
    parser.add_argument("--json", action="store_true", help="the report as one JSON document")
