"""``relay auth login|status|logout``: UltraCart OAuth tokens for the control commands."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from relay.cli.control_common import (
    guarded,
    load_config,
    with_config,
)
from relay.cli.conventions import formatted, say
from relay.control.factory import token_endpoint
from relay.control.login import login
from relay.control.oauth import TokenStore
from relay.settings.errors import ConfigError


def cmd_login(args: argparse.Namespace) -> int:
    config = load_config(args)
    api = config.api
    endpoint = token_endpoint(api)
    assert api.oauth is not None
    port = args.port if args.port is not None else api.oauth.redirect_port
    login(endpoint, TokenStore(api.oauth.token_file), port=port, say=say, timeout=args.timeout)
    return 0


def cmd_auth_status(args: argparse.Namespace) -> int:
    config = load_config(args)
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
    config = load_config(args)
    if config.api.oauth is None:
        raise ConfigError('[ultracart] auth is not "oauth"')
    removed = TokenStore(config.api.oauth.token_file).delete()
    print("Token removed." if removed else "No token stored.")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``auth`` to relay's command line."""
    auth = formatted(
        commands.add_parser(
            "auth", help="UltraCart OAuth login", description="UltraCart OAuth tokens."
        )
    )
    auth_sub = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    login_parser = with_config(
        auth_sub.add_parser(
            "login", help="authorization-code login", description="authorization-code login"
        )
    )
    login_parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="local redirect port (default [ultracart.oauth] redirect_port)",
    )
    login_parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the browser's redirect"
    )
    login_parser.set_defaults(handler=guarded(cmd_login))
    auth_status = with_config(
        auth_sub.add_parser(
            "status",
            help="is a token stored and valid (exit 1 when not)",
            description="is a token stored and valid (exit 1 when not)",
        )
    )
    auth_status.set_defaults(handler=guarded(cmd_auth_status))
    logout = with_config(
        auth_sub.add_parser(
            "logout", help="delete the stored token", description="delete the stored token"
        )
    )
    logout.set_defaults(handler=guarded(cmd_logout))
