"""``relay schemas``, ``relay tail`` and ``relay dead-letters``: commands for consumers' people."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeAlias

from relay.cli.conventions import EXIT_FAILURE, EXIT_OK, formatted, print_json, say
from relay.consumers import dead_letters as dl
from relay.consumers.reading import ReadRecord
from relay.consumers.schema_store import SchemaStore
from relay.consumers.tail import TailOptions, render_text, tail
from relay.events.errors import DeliveryError
from relay.settings import CONFIG_PATH_VAR, ENV_PREFIX, Settings
from relay.settings.loader import load_document, read_toml

# The shell's convention for "ended by SIGINT" (128 + 2).
EXIT_INTERRUPTED = 130

if TYPE_CHECKING:
    # Subscriptable only in the type stubs, not at run time.
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def register(commands: _Commands) -> None:
    _register_schemas(commands)
    _register_tail(commands)
    _register_dead_letters(commands)


def _reading_settings(path: str | None) -> Settings:
    """relay's configuration as ``serve`` reads it (file, then RELAY_* variables), without
    the check that an intake credential is set: these commands read and write Kafka only,
    and whoever runs them need not hold UltraCart's Basic credentials."""
    chosen = path if path is not None else os.environ.get(CONFIG_PATH_VAR)
    raw = read_toml(Path(chosen)) if chosen else {}
    return load_document(Settings, raw, os.environ, prefix=ENV_PREFIX, file=chosen)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        help="relay.toml to read (default: $RELAY_CONFIG; RELAY_* env vars override it)",
    )


def _register_schemas(commands: _Commands) -> None:
    text = "JSON Schemas (draft 2020-12) of each event's value, from UltraCart's SDK models"
    parser = formatted(commands.add_parser("schemas", help=text, description=text))
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each event, its UltraCart model and schema URI")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(handler=_cmd_schemas_list)
    show = actions.add_parser("show", help="print one event's schema")
    show.add_argument("event", help="event name, e.g. order_create")
    show.set_defaults(handler=_cmd_schemas_show)
    export = actions.add_parser("export", help="write EVENT.json for every event into DIR")
    export.add_argument("directory", type=Path, help="where to write the files (created)")
    export.set_defaults(handler=_cmd_schemas_export)


def _cmd_schemas_list(args: argparse.Namespace) -> int:
    store = SchemaStore.load()
    rows = [
        {"event": e.event, "model": e.model, "dataschema": store.uri(e.event)}
        for e in store.events()
    ]
    if args.json:
        print_json({"sdk_version": store.sdk_version, "events": rows})
        return EXIT_OK
    for row in rows:
        print(f"{row['event']:<32} {row['model']:<18} {row['dataschema']}")
    return EXIT_OK


def _cmd_schemas_show(args: argparse.Namespace) -> int:
    store = SchemaStore.load()
    if store.get(args.event) is None:
        say(f"relay: no schema for {args.event!r}; `relay schemas list` names every event")
        return EXIT_FAILURE
    print(json.dumps(store.schema(args.event), indent=2))
    return EXIT_OK


def _cmd_schemas_export(args: argparse.Namespace) -> int:
    store = SchemaStore.load()
    directory: Path = args.directory
    directory.mkdir(parents=True, exist_ok=True)
    events = store.events()
    for entry in events:
        path = directory / f"{entry.event}.json"
        path.write_text(json.dumps(store.schema(entry.event), indent=2) + "\n")
    print(f"{len(events)} schemas written to {directory}")
    return EXIT_OK


def _register_tail(commands: _Commands) -> None:
    text = "print the records relay wrote: JSON lines (with headers) or a readable view"
    parser = formatted(
        commands.add_parser(
            "tail",
            help=text,
            description=text + ". "
            "Without --from-beginning or --last, waits for new records (implies --follow).",
        )
    )
    _config_option(parser)
    parser.add_argument(
        "--event",
        "-e",
        action="append",
        default=[],
        help="only this event (repeatable); also picks its topic",
    )
    parser.add_argument(
        "--key",
        "-k",
        action="append",
        default=[],
        help="only records with this key, e.g. an order id (repeatable)",
    )
    parser.add_argument(
        "--topic",
        "-t",
        action="append",
        default=[],
        help="read this topic (repeatable; default: every topic relay writes)",
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="every record from the start of each partition",
    )
    start.add_argument(
        "--last", "-n", type=int, default=None, metavar="N", help="the last N matching records"
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep waiting for new records until Ctrl-C"
    )
    parser.add_argument(
        "--output",
        "-o",
        choices=("json", "text"),
        default="json",
        help="json: one JSON object per line; text: a readable view",
    )
    parser.set_defaults(handler=_cmd_tail)


def _cmd_tail(args: argparse.Namespace) -> int:
    settings = _reading_settings(args.config)
    options = TailOptions(
        topics=tuple(args.topic),
        events=tuple(args.event),
        keys=tuple(args.key),
        from_beginning=args.from_beginning,
        last=args.last,
        follow=args.follow or (args.last is None and not args.from_beginning),
        output=args.output,
    )
    return _interruptible(lambda: tail(settings, options))


def _interruptible(run: Callable[[], object]) -> int:
    """Ctrl-C (or SIGTERM) ends the command quietly: the reader is closed by ``tail``'s
    ``finally``, and the exit code is 130 as for any command stopped by SIGINT."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        run()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `relay tail | head`: the reader went away; so do we, without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)


def _register_dead_letters(commands: _Commands) -> None:
    text = "the dead-letter topic: list rejected deliveries, show one, replay them"
    parser = formatted(commands.add_parser("dead-letters", help=text, description=text))
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = formatted(actions.add_parser("list", help="one line per dead letter"))
    _config_option(listing)
    listing.add_argument(
        "--last", "-n", type=int, default=None, metavar="N", help="only the last N per partition"
    )
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(handler=_cmd_dl_list)
    show = formatted(actions.add_parser("show", help="headers and body of dead letters"))
    _config_option(show)
    show.add_argument("ref", nargs="+", help="PARTITION:OFFSET (from list) or a ce_id")
    show.add_argument("--json", action="store_true", help="JSON lines, as relay tail prints")
    show.set_defaults(handler=_cmd_dl_show)
    replay = formatted(
        actions.add_parser(
            "replay",
            help="parse the kept bodies again and publish their events as relay serve would",
            description="Runs intake's decoding and parsing on each kept body with the current "
            "configuration and publishes the events with serve's record building and producer "
            "settings. Replaying again writes records with the same ce_id (consumers drop them).",
        )
    )
    _config_option(replay)
    replay.add_argument("ref", nargs="*", help="PARTITION:OFFSET or ce_id (see list)")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--dry-run", action="store_true", help="parse and report, publish nothing")
    replay.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka's acknowledgements"
    )
    replay.set_defaults(handler=_cmd_dl_replay)


def _cmd_dl_list(args: argparse.Namespace) -> int:
    records = dl.read_dead_letters(_reading_settings(args.config), last=args.last)
    rows = [dl.summary(r) for r in records]
    if args.json:
        print_json(rows)
        return EXIT_OK
    for row in rows:
        cut = " truncated" if row["truncated"] else ""
        print(
            f"{row['ref']:<10} {row['received_at']} {row['status']} {row['reason']:<20} "
            f"{row['original_size']} bytes{cut}  ce_id={row['ce_id']}"
        )
    print(f"{len(rows)} dead letter(s)", file=sys.stderr)
    return EXIT_OK


def _chosen(settings: Settings, refs: list[str], every: bool) -> list[ReadRecord] | None:
    records = dl.read_dead_letters(settings)
    if every:
        return records
    try:
        return dl.select(records, refs)
    except LookupError as exc:
        say(f"relay: {exc}")
        return None


def _cmd_dl_show(args: argparse.Namespace) -> int:
    chosen = _chosen(_reading_settings(args.config), args.ref, every=False)
    if chosen is None:
        return EXIT_FAILURE
    for record in chosen:
        if args.json:
            print(json.dumps(record.to_json()))
        else:
            print(render_text(record), end="")
    return EXIT_OK


def _cmd_dl_replay(args: argparse.Namespace) -> int:
    if not args.ref and not args.all:
        say("relay: name dead letters to replay (PARTITION:OFFSET or ce_id), or --all")
        return EXIT_FAILURE
    settings = _reading_settings(args.config)
    chosen = _chosen(settings, args.ref, every=args.all)
    if chosen is None:
        return EXIT_FAILURE
    builder = dl.builder_for(settings)
    refused = 0
    replayed: list[dl.Replayed] = []
    for record in chosen:
        try:
            replayed.append(dl.rebuild(settings, record, builder))
        except dl.ReplayRefused as exc:
            say(f"relay: {exc}")
            refused += 1
    records = [r for item in replayed for r in item.records]
    if records and not args.dry_run:
        try:
            dl.publish(settings, records, args.timeout)
        except DeliveryError as exc:
            say(f"relay: nothing confirmed: {exc.message}")
            return EXIT_FAILURE
    verb = "would publish" if args.dry_run else "published"
    for item in replayed:
        topics = sorted({r.topic for r in item.records})
        print(f"{item.ref}: {verb} {len(item.records)} event(s) to {', '.join(topics)}")
    print(f"{len(replayed)} replayed, {refused} refused; {len(records)} record(s)", file=sys.stderr)
    return EXIT_FAILURE if refused else EXIT_OK
