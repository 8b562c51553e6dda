"""The topic check's verdicts, and how /readyz and the metric report them (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relay.deadlines import Deadlines
from relay.kafka.errors import KafkaUnreachable
from relay.kafka.topic_check import TopicReport
from relay.kafka.topic_status import TopicStatus
from relay.metrics import RelayMetrics
from relay.serving.app import Runtime, admin_routes
from relay.settings import Settings
from tests.support.fake_sink import FakeSink

SETTINGS = Settings.from_mapping({"auth": {"allow_unauthenticated": True}})
WANTED = ("ultracart.dead_letter", "ultracart.order_create", "ultracart.unknown")


def report(missing: tuple[str, ...], auto_create: bool | None, **extra: object) -> TopicReport:
    return TopicReport(
        bootstrap="kafka:9092",
        wanted=WANTED,
        missing=missing,
        auto_create=auto_create,
        record_limit=1_000_000,
        **extra,  # type: ignore[arg-type]
    )


def test_missing_topics_block_only_where_nothing_creates_them() -> None:
    missing = ("ultracart.order_create",)
    assert report(missing, auto_create=True).ok
    assert report(missing, auto_create=True).blocking_missing == ()
    off = report(missing, auto_create=False)
    assert not off.ok and off.blocking_missing == missing
    assert off.problems() == [
        "1 routed topic(s) missing and the cluster does not create topics automatically: "
        "ultracart.order_create (run `relay create-topics`)"
    ]
    # Not knowing (describe_configs refused) is treated as off, and says so.
    unknown = report(missing, auto_create=None)
    assert unknown.blocking_missing == missing
    assert "could not be read" in unknown.problems()[0]


def test_a_topic_below_relay_s_record_limit_fails_the_check_but_not_as_missing() -> None:
    small = report((), auto_create=False, too_small={"ultracart.order_create": 1000})
    assert not small.ok and small.blocking_missing == ()
    assert small.problems() == [
        "topic ultracart.order_create: max.message.bytes 1000 is below relay's record limit "
        "1000000 (kafka.librdkafka.message.max.bytes); larger deliveries would be refused"
    ]


class ScriptedCheck:
    """Answers the topic check from a list, one per call."""

    def __init__(self, *answers: TopicReport | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, settings: Settings, timeout: float) -> TopicReport:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def readiness(status: TopicStatus, metrics: RelayMetrics) -> tuple[int, dict[str, Any]]:
    runtime = Runtime(
        settings=SETTINGS,
        metrics=metrics,
        sink=FakeSink(),
        publisher=None,
        deadlines=Deadlines(),
        topics=status,
    )
    runtime.mark_started()
    with TestClient(Starlette(routes=admin_routes(runtime))) as client:
        response = client.get("/readyz")
    return response.status_code, response.json()


@pytest.mark.anyio
async def test_readyz_names_missing_topics_until_they_exist() -> None:
    metrics = RelayMetrics()
    check = ScriptedCheck(
        KafkaUnreachable("kafka:9092", "Connection refused"),
        report(("ultracart.order_create",), auto_create=False),
        report((), auto_create=False),
    )
    status = TopicStatus(SETTINGS, metrics.topics_missing, check)
    code, body = readiness(status, metrics)
    assert code == 200 and body["topics"] == {"checked": False, "error": None}

    assert await status.check_once() == 10.0  # unreachable: retry soon
    code, body = readiness(status, metrics)
    assert code == 200
    assert body["topics"] == {
        "checked": False,
        "error": "cannot reach Kafka at kafka:9092: Connection refused",
    }
    assert await status.check_once() == 30.0  # missing: check again later
    code, body = readiness(status, metrics)
    assert code == 503
    assert body["ready"] is False
    assert body["topics"]["missing"] == ["ultracart.order_create"]
    assert body["topics"]["auto_create"] is False
    assert b"relay_topics_missing 1.0" in generate_latest(metrics.registry)

    assert await status.check_once() is None  # all there: no more checks
    assert check.calls == 3
    code, body = readiness(status, metrics)
    assert code == 200 and body["topics"]["missing"] == []
    assert b"relay_topics_missing 0.0" in generate_latest(metrics.registry)


@pytest.mark.anyio
async def test_missing_topics_on_an_auto_creating_cluster_leave_relay_ready() -> None:
    metrics = RelayMetrics()
    status = TopicStatus(
        SETTINGS,
        metrics.topics_missing,
        ScriptedCheck(report(("ultracart.order_create",), auto_create=True)),
    )
    await status.run()  # returns: nothing to wait for
    code, body = readiness(status, metrics)
    assert code == 200
    assert body["topics"]["missing"] == ["ultracart.order_create"]
    assert body["topics"]["auto_create"] is True
    assert b"relay_topics_missing 0.0" in generate_latest(metrics.registry)
