"""``relay webhooks logs`` and ``relay webhooks log``: UltraCart's record of its deliveries to
relay, with secret headers masked."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable

from relay.cli.control_common import (
    Handler,
    api_client,
    find_webhook,
    load_config,
    webhook_oid,
    with_json,
)
from relay.cli.conventions import EXIT_OK, print_json
from relay.cli.times import moment
from relay.control.models import WebhookLog
from relay.settings.errors import ConfigError

_MASKED_HEADERS = frozenset({"authorization", "x-ultracart-simple-key", "cookie"})


def _since(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return moment(text).isoformat(timespec="seconds")
    except ConfigError as error:
        raise ConfigError(f"--since {error}") from None


def cmd_logs(args: argparse.Namespace) -> int:
    config = load_config(args)
    client = api_client(config)
    oid = webhook_oid(find_webhook(client, config))
    chosen = []
    for summary in client.log_summaries(oid, since=_since(args.since)):
        if args.failed and summary.get("success"):
            continue
        chosen.append(summary)
        if len(chosen) >= args.limit:
            break
    if args.json:
        print_json(chosen)
        return EXIT_OK
    print(f"{'DELIVERED':32}  {'RESULT':7}  REQUEST ID")
    for summary in chosen:
        ok = bool(summary.get("success"))
        print(
            f"{summary.get('delivery_dts', ''):32}  {'ok' if ok else 'FAILED':7}  "
            f"{summary.get('request_id', '')}"
        )
    shown = len(chosen)
    print(
        f"{shown} deliver{'y' if shown == 1 else 'ies'}" + (" (failed only)" if args.failed else "")
    )
    return 0


def _masked_headers(log: WebhookLog, key: str) -> list[tuple[str, str]]:
    headers = []
    for header in log.get(key, []):  # type: ignore[attr-defined]
        name = str(header.get("name", ""))
        value = "********" if name.lower() in _MASKED_HEADERS else str(header.get("value", ""))
        headers.append((name, value))
    return headers


def _headers(log: WebhookLog, key: str) -> list[str]:
    return [f"    {name}: {value}" for name, value in _masked_headers(log, key)]


def _body(text: str, limit: int) -> str:
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2)
    if len(text) > limit:
        text = text[:limit] + f"\n    ... ({len(text) - limit} more characters; --body-chars)"
    return text


def cmd_log(args: argparse.Namespace) -> int:
    config = load_config(args)
    client = api_client(config)
    log = client.log(webhook_oid(find_webhook(client, config)), args.request_id)
    if args.json:
        document = dict(log)
        for key in ("request_headers", "response_headers"):
            document[key] = [
                {"name": name, "value": value} for name, value in _masked_headers(log, key)
            ]
        print_json(document)
        return EXIT_OK
    print(f"request id      {log.get('request_id')}")
    print(f"delivered       {log.get('delivery_dts')}  to {log.get('uri')}")
    print(f"status          {log.get('status_code')} ({'ok' if log.get('success') else 'FAILED'})")
    print(f"duration        {log.get('duration')} ms (queued {log.get('queue_delay')} ms)")
    print("request headers")
    print("\n".join(_headers(log, "request_headers")))
    print("request body")
    print(_body(str(log.get("request", "")), args.body_chars))
    print("response headers")
    print("\n".join(_headers(log, "response_headers")))
    print("response body")
    print(_body(str(log.get("response", "")), args.body_chars))
    return 0


def add_log_commands(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    logs = add("logs", cmd_logs, "recent deliveries")
    logs.add_argument("--failed", action="store_true", help="failed deliveries only")
    logs.add_argument("--since", help="ISO date-time or a span such as 30m, 2h, 7d")
    logs.add_argument("--limit", type=int, default=50, help="at most this many deliveries")
    with_json(logs, "UltraCart's delivery summaries")
    log = add("log", cmd_log, "one delivery: status, headers and bodies")
    log.add_argument("request_id", help="a request id from `relay webhooks logs`")
    log.add_argument(
        "--body-chars",
        type=int,
        default=4000,
        help="show at most this many characters of each body (not with --json)",
    )
    with_json(log, "the delivery in full (secret headers masked)")
