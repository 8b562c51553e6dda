"""serve's topic check: run in the background at start-up, kept for /readyz and metrics.

Start-up never waits for it: Kafka may be slow or away, and the producer has its own
readiness. Until a check succeeds nothing is known and readiness does not depend on it.
Routed topics missing on a cluster that does not create them make relay not ready (every
delivery for them would time out into a 503 anyway); the check then repeats, so creating
the topics (``relay create-topics``) makes relay ready without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Gauge

from relay.kafka.errors import KafkaUnreachable
from relay.kafka.topic_check import TopicReport, check_topics
from relay.settings import Settings

logger = logging.getLogger(__name__)

Check = Callable[[Settings, float], TopicReport]


class TopicStatus:
    """The latest answer of the topic check, and the loop that gets it."""

    def __init__(
        self,
        settings: Settings,
        missing_gauge: Gauge,
        check: Check = check_topics,
        *,
        # Short: a check still running in its thread at shutdown holds the process that long.
        timeout: float = 5.0,
        unreachable_retry: float = 10.0,
        missing_retry: float = 30.0,
    ) -> None:
        self._settings = settings
        self._gauge = missing_gauge
        self._check = check
        self._timeout = timeout
        self._unreachable_retry = unreachable_retry
        self._missing_retry = missing_retry
        self.report: TopicReport | None = None
        self.error: str | None = None

    @property
    def blocking(self) -> bool:
        """True when the last check found routed topics that nothing will create."""
        return self.report is not None and bool(self.report.blocking_missing)

    def to_json(self) -> dict[str, Any]:
        if self.report is None:
            return {"checked": False, "error": self.error}
        return {
            "checked": True,
            "missing": list(self.report.missing),
            "auto_create": self.report.auto_create,
            "problems": self.report.problems(),
        }

    async def run(self) -> None:
        """Check until the topics are known to be fine; never raises."""
        while True:
            retry = await self.check_once()
            if retry is None:
                return
            await asyncio.sleep(retry)

    async def check_once(self) -> float | None:
        """One check; the seconds to wait before the next, or None when none is needed."""
        try:
            report = await asyncio.to_thread(self._check, self._settings, self._timeout)
        except KafkaUnreachable as exc:
            self.error = str(exc)
            logger.warning(
                "topic check: Kafka not reachable; will retry", extra={"error": self.error}
            )
            return self._unreachable_retry
        except Exception as exc:  # a bug or an odd broker must not end serve
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("topic check failed; will retry")
            return self._missing_retry
        self._record(report)
        # A too small max.message.bytes is logged once: checking again will not fix it.
        return self._missing_retry if report.blocking_missing else None

    def _record(self, report: TopicReport) -> None:
        self.report = report
        self.error = None
        self._gauge.set(len(report.blocking_missing))
        if report.ok:
            logger.info(
                "topic check: %s",
                report.summary(),
                extra={"missing": list(report.missing), "auto_create": report.auto_create},
            )
            return
        for problem in report.problems():
            logger.error("topic check: %s", problem)
