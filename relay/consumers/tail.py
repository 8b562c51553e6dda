"""``relay tail``: print what relay wrote, as JSON lines or a readable view.

Topics come from relay's own routing (``--event``) or are named (``--topic``); by default
every topic relay may write. Filters apply to each record: its event (from ``ce_type``)
and its key. ``--last N`` keeps the last N matching records (scanning from the beginning
when a filter is given, since the last N of a partition may hold none of them).
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

import orjson

from relay.consumers.reading import ReadRecord, Start, TopicReader
from relay.events.routing import TopicRouter
from relay.settings import Settings


@dataclass(frozen=True, slots=True)
class TailOptions:
    topics: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    from_beginning: bool = False
    last: int | None = None
    follow: bool = False
    output: str = "json"  # or "text"


def topics_for(settings: Settings, options: TailOptions) -> list[str]:
    if options.topics:
        return list(options.topics)
    router = TopicRouter(settings.topics)
    if options.events:
        return sorted({router.topic_for(event) for event in options.events})
    return router.all_known_topics()


def matcher(settings: Settings, options: TailOptions) -> Callable[[ReadRecord], bool]:
    types = {settings.cloudevents.type_prefix + event for event in options.events}
    keys = {key.encode() for key in options.keys}

    def matches(record: ReadRecord) -> bool:
        if keys and record.key not in keys:
            return False
        return not types or record.header("ce_type") in types

    return matches


def tail(
    settings: Settings,
    options: TailOptions,
    out: TextIO = sys.stdout,
    reader: TopicReader | None = None,
) -> int:
    """Print the chosen records; returns how many were printed. Closes the reader."""
    reader = reader or TopicReader(settings.kafka)
    matches = matcher(settings, options)
    printed = 0
    try:
        topics = reader.existing(topics_for(settings, options))
        if not topics:
            print("relay tail: none of the topics exists yet", file=sys.stderr)
            return 0
        filtered = bool(options.events or options.keys)
        if options.last is not None:
            reader.assign(topics, Start(last=None if filtered else options.last))
            # The last N overall are among each partition's last N matching records;
            # partitions are then interleaved by time, as they were written.
            per_partition: dict[tuple[str, int], collections.deque[ReadRecord]] = {}
            for record in reader.records(follow=False):
                if matches(record):
                    where = (record.topic, record.partition)
                    kept = per_partition.setdefault(where, collections.deque(maxlen=options.last))
                    kept.append(record)
            merged = sorted((r for kept in per_partition.values() for r in kept), key=_when)
            printed += _emit(merged[len(merged) - options.last :], options.output, out)
            if not options.follow:
                return printed
        elif options.from_beginning:
            reader.assign(topics, Start())
        else:
            reader.assign(topics, Start(last=0))
        if options.follow or options.from_beginning:
            stream = (r for r in reader.records(follow=options.follow) if matches(r))
            printed += _emit(stream, options.output, out)
        return printed
    finally:
        reader.close()


def _when(record: ReadRecord) -> tuple[int, str, int, int]:
    return (record.timestamp_ms or 0, record.topic, record.partition, record.offset)


def _emit(records: Iterable[ReadRecord], output: str, out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(render_json(record) if output == "json" else render_text(record))
        out.flush()
        count += 1
    return count


def render_json(record: ReadRecord) -> str:
    return orjson.dumps(record.to_json()).decode() + "\n"


def render_text(record: ReadRecord) -> str:
    when = (
        datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
        if record.timestamp_ms is not None
        else "-"
    )
    key = "-" if record.key is None else record.key.decode("utf-8", "replace")
    kind = record.header("ce_type") or record.header("relay_reason") or "-"
    lines = [
        f"{when} {record.topic}[{record.partition}]@{record.offset} key={key} {kind}",
        *(f"  {name}: {value.decode('utf-8', 'replace')}" for name, value in record.headers),
    ]
    try:
        body = orjson.dumps(orjson.loads(record.value), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        body = f"<{len(record.value)} bytes, not JSON>"
    lines.extend("  " + line for line in body.splitlines())
    return "\n".join(lines) + "\n\n"
