"""``relay webhooks audit``: prove from UltraCart's delivery log that every delivered event is
in Kafka, and with ``--repair`` put back what is not.

UltraCart's API is reached with webhooks.toml's connection, Kafka and the routing with
relay's own settings (``--relay-config`` or ``$RELAY_CONFIG``, and ``RELAY_`` variables),
which must be those of the ``relay serve`` that received the deliveries: topics, keys and
ce_ids are computed from them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import msgspec

from relay.cli.control_common import Handler, find_webhook, load_config, on_wait, webhook_oid
from relay.cli.conventions import EXIT_USAGE, print_json, say
from relay.cli.times import is_span, moment, span
from relay.control.budget import DEFAULT_CALLS_PER_HOUR, CallBudget
from relay.control.factory import build_client
from relay.settings.errors import ConfigError

if TYPE_CHECKING:
    from relay.audit.outcome import AuditReport


def _moment(text: str) -> datetime:
    try:
        return moment(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _moment_text(text: str) -> str:
    """A valid --since, kept as text: with --every, a span is counted back from each run."""
    _moment(text)
    return text


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

    problem = _usage_problem(args)
    if problem:
        say(f"relay: error: {problem}")
        return EXIT_USAGE
    config = load_config(args)
    try:
        settings = Settings.load(args.relay_config)
    except ConfigError as error:
        raise ConfigError(f"relay settings (topics, keys, Kafka): {error}") from None
    if args.bootstrap:
        kafka = msgspec.structs.replace(settings.kafka, bootstrap_servers=args.bootstrap)
        settings = msgspec.structs.replace(settings, kafka=kafka)
    client = build_client(config.api, on_wait=on_wait)

    def run_once() -> AuditReport:
        # A fresh budget per run: --max-api-calls bounds each run, and runs are --every apart.
        budget = CallBudget(args.api_calls_per_hour, args.max_api_calls)
        client.budget = budget
        now = datetime.now(UTC)
        oid = webhook_oid(find_webhook(client, config))
        request = AuditRequest(
            window=Window(moment(args.since, now), args.until, args.pending_for, now),
            kafka_window=args.kafka_window,
            repair=args.repair,
            reflow=args.reflow,
        )
        report = audit(client, oid, settings, request, progress_line(budget, sys.stderr))
        report.api_calls = budget.spent
        return report

    if args.every is None:
        report = run_once()
        _output(report, args.json)
        return report.exit_code
    return _run_every(args, run_once)


def _usage_problem(args: argparse.Namespace) -> str | None:
    since = moment(args.since)
    if args.until is not None and args.until <= since:
        return "--until must be later than --since"
    if args.every is not None and (args.until is not None or not is_span(args.since)):
        return "--every audits a span back from each run (--since 25h), without --until"
    if args.metrics_port is not None and args.every is None:
        return "--metrics-port serves the metrics of --every runs"
    return None


def _run_every(args: argparse.Namespace, run_once: Callable[[], AuditReport]) -> int:
    import signal
    import threading

    from prometheus_client import start_http_server

    from relay.audit.continuous import run_every
    from relay.audit.metrics import AuditMetrics

    metrics = AuditMetrics()
    server = None
    if args.metrics_port is not None:
        server, _thread = start_http_server(
            args.metrics_port, addr=args.metrics_host, registry=metrics.registry
        )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    say(f"relay: auditing every {args.every}, over the last {args.since} each time")
    try:
        run_every(
            run_once,
            args.every.total_seconds(),
            metrics,
            stop,
            on_report=lambda report: _output(report, args.json, one_line=True),
        )
    finally:
        if server is not None:
            server.shutdown()
    return 0


def _output(report: AuditReport, as_json: bool, one_line: bool = False) -> None:
    if not as_json:
        _print(report)
    elif one_line:
        # --every --json: one document per run, one per line.
        print(json.dumps(report.to_json(), default=str), flush=True)
    else:
        print_json(report.to_json())


def _print(report: AuditReport) -> None:
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
        "--since",
        required=True,
        type=_moment_text,
        help="ISO date-time or a span back: 30m, 2h, 7d",
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
    parser.add_argument(
        "--every",
        type=_span,
        default=None,
        help="run until stopped: audit the last --since every SPAN (e.g. --since 25h --every "
        "1h), with the results as metrics",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="with --every, serve relay_audit_* metrics on this port (/metrics)",
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address for --metrics-port")
    parser.add_argument(
        "--json",
        action="store_true",
        help="the report as one JSON document (with --every, one per run, one per line)",
    )
