"""``relay webhooks ...`` and ``relay auth ...``: the operator's side of the control plane.

Exit codes follow relay.cli_support: 0 done, 1 error, 2 usage error or, only with
``plan --detailed-exitcode``, differences. Progress and waits go to stderr; results to
stdout, so scripts can parse them (``--json``: one JSON document).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from relay.catalog import REFLOW_EVENTS
from relay.cli_support import EXIT_CHANGES, EXIT_FAILURE, EXIT_OK, formatted, print_json
from relay.control import apply as applying
from relay.control.catalog import supports_reflow
from relay.control.client import UltraCartClient
from relay.control.desired import ControlConfig, load
from relay.control.errors import ControlError
from relay.control.factory import build_client, token_endpoint
from relay.control.login import login
from relay.control.models import Webhook, WebhookLog
from relay.control.oauth import TokenStore
from relay.control.rotate import rotate_credentials
from relay.control.state import OwnershipState
from relay.settings.errors import ConfigError

_MASKED_HEADERS = frozenset({"authorization", "x-ultracart-simple-key", "cookie"})

Handler = Callable[[argparse.Namespace], int]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _on_wait(reason: str, seconds: float, attempt: int, attempts: int) -> None:
    _say(f"relay: {reason}; waiting {seconds:.1f} s before attempt {attempt}/{attempts}")


def _config(args: argparse.Namespace) -> ControlConfig:
    return load(Path(args.config) if args.config else None)


def _client(config: ControlConfig) -> UltraCartClient:
    return build_client(config.api, on_wait=_on_wait)


def _guard(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ControlError, ConfigError) as error:
            _say(f"relay: error: {error}")
            return EXIT_FAILURE

    return run


def _find(client: UltraCartClient, config: ControlConfig) -> Webhook:
    webhook = client.find_by_url(config.webhook.url)
    if webhook is None or not isinstance(webhook.get("webhook_oid"), int):
        raise ControlError(f"no webhook for {config.webhook.url} on UltraCart; run `apply`")
    return webhook


def _oid(webhook: Webhook) -> int:
    return int(webhook.get("webhook_oid", 0))


# ---- webhooks ----


def cmd_list(args: argparse.Namespace) -> int:
    config = _config(args)
    webhooks = _client(config).list_webhooks()
    if args.json:
        for webhook in webhooks:
            webhook.pop("basic_password", None)
        print(json.dumps(webhooks, indent=2))
        return 0
    print(f"{'OID':>8}  {'EVENTS':>6}  {'PENDING':>7}  {'STATE':8}  URL")
    for webhook in webhooks:
        events = sum(
            1 for c in webhook.get("event_categories", []) for e in c.get("events", [])
            if e.get("subscribed", True)
        )
        state = "disabled" if webhook.get("disabled") else "active"
        print(
            f"{_oid(webhook):>8}  {events:>6}  {webhook.get('pending', 0):>7}  {state:8}  "
            f"{webhook.get('webhook_url', '')}"
        )
    print(f"{len(webhooks)} webhook(s)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    config = _config(args)
    state = OwnershipState(config.control.state_file)
    plan = applying.make_plan(_client(config), config.webhook, state, prune=args.prune)
    if args.json:
        print_json(plan.to_json())
    else:
        print(plan.render())
    # Drift is a finding, not a failure: only scripts that ask get a distinct exit code.
    return EXIT_CHANGES if args.detailed_exitcode and plan.differs else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    config = _config(args)
    state = OwnershipState(config.control.state_file)
    outcome = applying.apply(_client(config), config.webhook, state, prune=args.prune)
    verb = "Created" if outcome.plan.action == "create" else "Updated"
    if args.json:
        print_json({
            "plan": outcome.plan.to_json(),
            "result": verb.lower() if outcome.webhook is not None else "unchanged",
            "webhook_oid": _oid(outcome.webhook) if outcome.webhook is not None else None,
        })
        return EXIT_OK
    print(outcome.plan.render())
    if outcome.webhook is not None:
        print(f"{verb} webhook {_oid(outcome.webhook)}.")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    config = _config(args)
    client = _client(config)
    state = OwnershipState(config.control.state_file)
    webhook = client.find_by_url(config.webhook.url)
    if webhook is None:
        print(f"No webhook for {config.webhook.url}; nothing to delete.")
        state.forget(config.webhook.url)
        return 0
    oid = _oid(webhook)
    if not state.owns(config.webhook.url, oid) and not args.force:
        raise ControlError(
            f"webhook {oid} was not created by relay (it was adopted or made elsewhere); "
            "pass --force to delete it anyway"
        )
    client.delete_webhook(oid)
    state.forget(config.webhook.url)
    print(f"Deleted webhook {oid} ({config.webhook.url}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    webhook = _find(_client(config), config)
    status = {
        "webhook_oid": _oid(webhook),
        "webhook_url": webhook.get("webhook_url"),
        "pending": webhook.get("pending", 0),
        "consecutive_failures": webhook.get("consecutive_failures", 0),
        "next_retry_after": webhook.get("next_retry_after"),
        "disabled": bool(webhook.get("disabled", False)),
    }
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    for key, value in status.items():
        shown = "-" if value is None else value
        if key == "disabled" and value:
            shown = "YES: UltraCart stopped delivering; fix relay, then `relay webhooks apply`"
        print(f"{key:22} {shown}")
    return 0


def _since(text: str | None) -> str | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        moment = datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
        return moment.isoformat(timespec="seconds")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: use an ISO date-time or 30m, 2h, 7d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def cmd_logs(args: argparse.Namespace) -> int:
    config = _config(args)
    client = _client(config)
    oid = _oid(_find(client, config))
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
    print(f"{shown} deliver{'y' if shown == 1 else 'ies'}"
          + (" (failed only)" if args.failed else ""))
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
    config = _config(args)
    client = _client(config)
    log = client.log(_oid(_find(client, config)), args.request_id)
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


def _kafka_target(args: argparse.Namespace, event: str) -> tuple[str, str, dict[str, str]]:
    """(bootstrap, topic, extra consumer options), from flags or relay's own settings."""
    from relay.routing import TopicRouter
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
    config = _config(args)
    client = _client(config)
    webhook = _find(client, config)
    oid = _oid(webhook)
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
        watcher, pending, say=_say, timeout=args.timeout, idle=args.idle,
        status_every=args.status_every, expect=args.expect,
    )
    print(
        f"{result.records} record(s) reached {watcher.topic} "
        f"({result.distinct_keys} distinct key(s)); "
        + ("complete." if result.complete else "incomplete.")
    )
    return 0 if result.complete else 1


def cmd_rotate(args: argparse.Namespace) -> int:
    config = _config(args)
    result = rotate_credentials(_client(config), config, say=_say)
    print(f"Rotated webhook {result.webhook_oid}: {result.old_username} -> {result.new_username}.")
    return 0


# ---- auth ----


def cmd_login(args: argparse.Namespace) -> int:
    config = _config(args)
    api = config.api
    endpoint = token_endpoint(api)
    assert api.oauth is not None
    port = args.port if args.port is not None else api.oauth.redirect_port
    login(endpoint, TokenStore(api.oauth.token_file), port=port, say=_say, timeout=args.timeout)
    return 0


def cmd_auth_status(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.api.oauth is None:
        print("auth: simple key" + (" (set)" if config.api.simple_key else " (NOT set)"))
        return 0 if config.api.simple_key else 1
    tokens = TokenStore(config.api.oauth.token_file).load()
    if tokens is None:
        print(f"auth: oauth, not logged in (no {config.api.oauth.token_file})")
        return 1
    left = tokens.expires_at - datetime.now(UTC).timestamp()
    state = f"expires in {left:.0f} s" if left > 0 else "expired (refreshed on next call)"
    print(f"auth: oauth, access token {state}, scope: {tokens.scope or '-'}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.api.oauth is None:
        raise ConfigError('[ultracart] auth is not "oauth"')
    removed = TokenStore(config.api.oauth.token_file).delete()
    print("Token removed." if removed else "No token stored.")
    return 0


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    formatted(parser)
    parser.add_argument(
        "--config", "-c", default=None,
        help="desired-state file (default: $RELAY_WEBHOOKS_CONFIG or config/webhooks.toml)",
    )
    return parser


def _with_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"{what} as one JSON document")


_PRUNE_HELP = "also unsubscribe events an adopted webhook has but the config lacks"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks`` and ``auth`` to relay's command line."""
    webhooks = formatted(commands.add_parser(
        "webhooks", help="manage UltraCart webhook subscriptions (plan/apply, logs, reflow)",
        description="Manage relay's UltraCart webhook from config/webhooks.toml.",
    ))
    sub = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")

    def add(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = _with_config(sub.add_parser(name, help=help, description=help))
        parser.set_defaults(handler=_guard(handler))
        return parser

    listing = add("list", cmd_list, "list the account's webhooks")
    _with_json(listing, "every webhook (passwords removed)")
    plan = add("plan", cmd_plan, "show what apply would change")
    plan.add_argument("--prune", action="store_true", help=_PRUNE_HELP)
    plan.add_argument(
        "--detailed-exitcode", action="store_true",
        help="exit 2 when apply would change something, 0 when in sync (as terraform plan)",
    )
    _with_json(plan, "the plan (action, changes, kept events)")
    apply = add("apply", cmd_apply, "create or update the webhook to match the config")
    apply.add_argument("--prune", action="store_true", help=_PRUNE_HELP)
    _with_json(apply, "the plan applied and the webhook's oid")
    delete = add("delete", cmd_delete, "delete the configured webhook (only if relay made it)")
    delete.add_argument("--force", action="store_true", help="delete even if relay adopted it")
    status = add("status", cmd_status,
                 "UltraCart's view: pending, consecutive_failures, next_retry_after, disabled")
    _with_json(status, "the status")
    logs = add("logs", cmd_logs, "recent deliveries")
    logs.add_argument("--failed", action="store_true", help="failed deliveries only")
    logs.add_argument("--since", help="ISO date-time or a span such as 30m, 2h, 7d")
    logs.add_argument("--limit", type=int, default=50, help="at most this many deliveries")
    _with_json(logs, "UltraCart's delivery summaries")
    log = add("log", cmd_log, "one delivery: status, headers and bodies")
    log.add_argument("request_id", help="a request id from `relay webhooks logs`")
    log.add_argument("--body-chars", type=int, default=4000,
                     help="show at most this many characters of each body (not with --json)")
    _with_json(log, "the delivery in full (secret headers masked)")
    reflow = add("reflow", cmd_reflow, "ask UltraCart to re-send every item or order")
    reflow.add_argument("event", help="item_update or order_create")
    reflow.add_argument("--wait", action="store_true",
                        help="count the reflowed records as they reach Kafka")
    reflow.add_argument("--relay-config", default=None,
                        help="relay.toml, for the topic and brokers (default: $RELAY_CONFIG)")
    reflow.add_argument("--bootstrap", default=None,
                        help="Kafka bootstrap servers (default: relay's kafka.bootstrap_servers)")
    reflow.add_argument("--topic", default=None, help="topic to watch (default: relay's route)")
    reflow.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait with --wait before giving up (exit 1)")
    reflow.add_argument("--idle", type=float, default=3.0,
                        help="seconds without new records, once UltraCart is done, to finish")
    reflow.add_argument("--status-every", type=float, default=10.0,
                        help="seconds between UltraCart status calls (each costs one API call)")
    reflow.add_argument("--expect", type=int, default=None,
                        help="finish as soon as this many records arrived")
    add("rotate-credentials", cmd_rotate,
        "new Basic pair for UltraCart, with relay accepting old and new during the switch")

    auth = formatted(commands.add_parser(
        "auth", help="UltraCart OAuth login", description="UltraCart OAuth tokens."
    ))
    auth_sub = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    login_parser = _with_config(auth_sub.add_parser(
        "login", help="authorization-code login", description="authorization-code login"
    ))
    login_parser.add_argument("--port", type=int, default=None,
                              help="local redirect port (default [ultracart.oauth] redirect_port)")
    login_parser.add_argument("--timeout", type=float, default=300.0,
                              help="seconds to wait for the browser's redirect")
    login_parser.set_defaults(handler=_guard(cmd_login))
    auth_status = _with_config(auth_sub.add_parser(
        "status", help="is a token stored and valid (exit 1 when not)",
        description="is a token stored and valid (exit 1 when not)",
    ))
    auth_status.set_defaults(handler=_guard(cmd_auth_status))
    logout = _with_config(auth_sub.add_parser(
        "logout", help="delete the stored token", description="delete the stored token"
    ))
    logout.set_defaults(handler=_guard(cmd_logout))


def main(argv: list[str] | None = None) -> int:
    """Entry point for these commands alone (tests, and before relay's CLI includes them)."""
    parser = argparse.ArgumentParser(prog="relay")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code
