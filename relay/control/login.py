"""``relay auth login``: the authorization-code flow with a one-shot local redirect server.

relay prints UltraCart's authorize URL; the operator opens it and approves; UltraCart
redirects the browser to ``http://127.0.0.1:<port>/callback`` where a tiny server takes the
code (checking ``state`` against forgery), and relay exchanges it for tokens. The redirect
URI must be registered on the UltraCart developer application exactly as printed.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from relay.control.errors import OAuthError
from relay.control.oauth import TokenEndpoint, TokenSet, TokenStore


@dataclass
class _Callback:
    code: str | None = None
    error: str | None = None


def _handler(
    expected_state: str, result: _Callback, done: threading.Event
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            if url.path != "/callback":
                self.send_error(404)
                return
            if params.get("state") != expected_state:
                result.error = "the state parameter did not match (possible forgery); try again"
            elif "error" in params:
                result.error = f"UltraCart answered {params['error']}"
            elif not params.get("code"):
                result.error = "the redirect carried no code"
            else:
                result.code = params["code"]
            text = (
                "relay: login failed, see the terminal."
                if result.error
                else ("relay: logged in to UltraCart. You can close this window.")
            )
            body = text.encode()
            self.send_response(400 if result.error else 200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            done.set()

        def log_message(self, format: str, *args: object) -> None:
            # The default handler logs the request line, which holds the authorization code.
            return

    return Handler


def login(
    endpoint: TokenEndpoint,
    store: TokenStore,
    *,
    port: int,
    say: Callable[[str], None],
    timeout: float = 300.0,
) -> TokenSet:
    state = secrets.token_urlsafe(24)
    result = _Callback()
    done = threading.Event()
    server = http.server.HTTPServer(("127.0.0.1", port), _handler(state, result, done))
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": endpoint.app.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    thread = threading.Thread(target=server.serve_forever, name="oauth-callback", daemon=True)
    thread.start()
    try:
        say("Open this URL in a browser and approve relay's access:")
        say(f"  {endpoint.authorize_url}?{query}")
        say(f"Waiting up to {timeout:g} s for UltraCart to redirect to {redirect_uri} ...")
        if not done.wait(timeout):
            raise OAuthError(f"no redirect within {timeout:g} s; run `relay auth login` again")
    finally:
        server.shutdown()
        server.server_close()
    if result.error or result.code is None:
        raise OAuthError(result.error or "login failed")
    tokens = endpoint.exchange_code(result.code, redirect_uri)
    store.save(tokens)
    say(f"Logged in; token saved to {store.path} (mode 600).")
    return tokens
