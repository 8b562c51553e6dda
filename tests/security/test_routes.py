"""Every intake route is authenticated; metrics and probes live on their own port."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from relay.serving.app import build_intake, create_admin_app, create_app
from relay.settings import ServerSettings, Settings
from tests.support.fake_sink import FakeSink

ADMIN_PATHS = {"/metrics", "/healthz", "/readyz"}
AUTH_MODES = {
    "basic": {"basic_credentials": ["ultracart:s3cret"]},
    "signature": {"signature": {"secrets": ["whsec_c2VjcmV0LXNpZ25pbmcta2V5"]}},
    "basic+signature": {
        "basic_credentials": ["ultracart:s3cret"],
        "signature": {"secrets": ["whsec_c2VjcmV0LXNpZ25pbmcta2V5"]},
    },
}


def routes_of(app: Starlette) -> list[Route]:
    routes = []
    for route in app.routes:
        # Anything that is not a plain Route (a Mount, a WebSocket route) would need its own
        # check; fail loudly so whoever adds one writes it.
        assert isinstance(route, Route), f"unchecked route type {type(route).__name__}"
        routes.append(route)
    return routes


@pytest.mark.parametrize("admin_port", [9090, 0], ids=["admin-apart", "admin-on-intake"])
@pytest.mark.parametrize("mode", list(AUTH_MODES))
def test_every_intake_route_refuses_unauthenticated_requests(mode: str, admin_port: int) -> None:
    settings = Settings.from_mapping(
        {"auth": AUTH_MODES[mode], "server": {"admin_port": admin_port}}
    )
    sink = FakeSink()
    app = create_app(settings, sink=sink)
    intake = [r for r in routes_of(app) if r.path not in ADMIN_PATHS]
    assert intake, "no intake route found"
    with TestClient(app) as client:
        for route in intake:
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                response = client.request(method, route.path, json={"events": []})
                assert response.status_code == 401, (mode, method, route.path)
    assert sink.published == []


def test_admin_is_on_its_own_port_by_default() -> None:
    defaults = ServerSettings()
    assert defaults.admin_port not in (0, defaults.port)
    settings = Settings.from_mapping({"auth": AUTH_MODES["basic"]})
    intake = build_intake(settings, sink=FakeSink())
    assert {r.path for r in routes_of(intake.app)} == {settings.intake.path}
    with TestClient(intake.app) as client:
        for path in ADMIN_PATHS:
            assert client.get(path).status_code == 404, path
    admin_app = create_admin_app(intake.runtime)
    assert {r.path for r in routes_of(admin_app)} == ADMIN_PATHS
    assert all(r.methods == {"GET", "HEAD"} for r in routes_of(admin_app))
