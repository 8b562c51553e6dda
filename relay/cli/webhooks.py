"""``relay webhooks ...``: relay's UltraCart webhook as desired state (list, plan, apply,
delete, status, rotate-credentials; logs, reflow and audit live beside this module)."""

from __future__ import annotations

import argparse
import json

from relay.cli.audit import add_audit_command
from relay.cli.control_common import (
    Handler,
    api_client,
    find_webhook,
    guarded,
    load_config,
    webhook_oid,
    with_config,
    with_json,
)
from relay.cli.conventions import EXIT_CHANGES, EXIT_OK, formatted, print_json, say
from relay.cli.reflow import add_reflow_command
from relay.cli.webhook_logs import add_log_commands
from relay.control import apply as applying
from relay.control.errors import ControlError
from relay.control.rotate import rotate_credentials
from relay.control.state import OwnershipState


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args)
    webhooks = api_client(config).list_webhooks()
    if args.json:
        for webhook in webhooks:
            webhook.pop("basic_password", None)
        print(json.dumps(webhooks, indent=2))
        return 0
    print(f"{'OID':>8}  {'EVENTS':>6}  {'PENDING':>7}  {'STATE':8}  URL")
    for webhook in webhooks:
        events = sum(
            1
            for c in webhook.get("event_categories", [])
            for e in c.get("events", [])
            if e.get("subscribed", True)
        )
        state = "disabled" if webhook.get("disabled") else "active"
        print(
            f"{webhook_oid(webhook):>8}  {events:>6}  {webhook.get('pending', 0):>7}  {state:8}  "
            f"{webhook.get('webhook_url', '')}"
        )
    print(f"{len(webhooks)} webhook(s)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    config = load_config(args)
    state = OwnershipState(config.control.state_file)
    plan = applying.make_plan(api_client(config), config.webhook, state, prune=args.prune)
    if args.json:
        print_json(plan.to_json())
    else:
        print(plan.render())
    # Drift is a finding, not a failure: only scripts that ask get a distinct exit code.
    return EXIT_CHANGES if args.detailed_exitcode and plan.differs else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    config = load_config(args)
    state = OwnershipState(config.control.state_file)
    outcome = applying.apply(api_client(config), config.webhook, state, prune=args.prune)
    verb = "Created" if outcome.plan.action == "create" else "Updated"
    if args.json:
        print_json(
            {
                "plan": outcome.plan.to_json(),
                "result": verb.lower() if outcome.webhook is not None else "unchanged",
                "webhook_oid": webhook_oid(outcome.webhook)
                if outcome.webhook is not None
                else None,
            }
        )
        return EXIT_OK
    print(outcome.plan.render())
    if outcome.webhook is not None:
        print(f"{verb} webhook {webhook_oid(outcome.webhook)}.")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    config = load_config(args)
    client = api_client(config)
    state = OwnershipState(config.control.state_file)
    webhook = client.find_by_url(config.webhook.url)
    if webhook is None:
        print(f"No webhook for {config.webhook.url}; nothing to delete.")
        state.forget(config.webhook.url)
        return 0
    oid = webhook_oid(webhook)
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
    config = load_config(args)
    webhook = find_webhook(api_client(config), config)
    status = {
        "webhook_oid": webhook_oid(webhook),
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


def cmd_rotate(args: argparse.Namespace) -> int:
    config = load_config(args)
    result = rotate_credentials(api_client(config), config, say=say)
    print(f"Rotated webhook {result.webhook_oid}: {result.old_username} -> {result.new_username}.")
    return 0


_PRUNE_HELP = "also unsubscribe events an adopted webhook has but the config lacks"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks`` to relay's command line."""
    webhooks = formatted(
        commands.add_parser(
            "webhooks",
            help="manage UltraCart webhook subscriptions (plan/apply, logs, reflow)",
            description="Manage relay's UltraCart webhook from config/webhooks.toml.",
        )
    )
    sub = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")

    def add(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = with_config(sub.add_parser(name, help=help, description=help))
        parser.set_defaults(handler=guarded(handler))
        return parser

    listing = add("list", cmd_list, "list the account's webhooks")
    with_json(listing, "every webhook (passwords removed)")
    plan = add("plan", cmd_plan, "show what apply would change")
    plan.add_argument("--prune", action="store_true", help=_PRUNE_HELP)
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when apply would change something, 0 when in sync (as terraform plan)",
    )
    with_json(plan, "the plan (action, changes, kept events)")
    apply = add("apply", cmd_apply, "create or update the webhook to match the config")
    apply.add_argument("--prune", action="store_true", help=_PRUNE_HELP)
    with_json(apply, "the plan applied and the webhook's oid")
    delete = add("delete", cmd_delete, "delete the configured webhook (only if relay made it)")
    delete.add_argument("--force", action="store_true", help="delete even if relay adopted it")
    status = add(
        "status",
        cmd_status,
        "UltraCart's view: pending, consecutive_failures, next_retry_after, disabled",
    )
    with_json(status, "the status")
    add_log_commands(add)
    add_reflow_command(add)
    add_audit_command(add)
    add(
        "rotate-credentials",
        cmd_rotate,
        "new Basic pair for UltraCart, with relay accepting old and new during the switch",
    )
