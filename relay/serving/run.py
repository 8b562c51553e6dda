"""``relay serve``: one process, or a supervisor and its workers when server.workers > 1."""

from __future__ import annotations

from relay.serving.app import build_intake
from relay.serving.collector import tune_for_serving
from relay.serving.server import AppFactory, Servers, event_loop_runner
from relay.serving.supervisor import supervise
from relay.settings import Settings


def serve(settings: Settings, app_factory: AppFactory = build_intake) -> int:
    if settings.server.workers > 1:
        return supervise(settings, app_factory)
    servers = Servers(settings, app_factory)
    tune_for_serving()
    with event_loop_runner(settings) as runner:
        runner.run(servers.run())
    return 0 if servers.intake.started else 1
