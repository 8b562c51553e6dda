"""librdkafka's log, less the lines it repeats on every reconnect.

librdkafka logs a broker connection failure (refused credentials, a bad certificate) each
time it retries, which relay makes every second. ``RepeatSuppressingLog`` stands in for
the ``logging.Logger`` handed to confluent-kafka (which only calls ``log``) and passes a
line on only if the same line, numbers aside ("after 338ms"), was not passed on within
the last ``window`` seconds.
"""

from __future__ import annotations

import logging
import re
import threading
import time

_NUMBERS = re.compile(r"\d+")
# Bounds the memory of seen lines; librdkafka's distinct lines number in the dozens.
_MAX_REMEMBERED = 1000


class RepeatSuppressingLog:
    def __init__(self, logger: logging.Logger, window: float = 60.0) -> None:
        self._logger = logger
        self._window = window
        self._last: dict[str, float] = {}
        # librdkafka logs from its own threads.
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object) -> None:
        text = msg % args if args else msg
        shape = _NUMBERS.sub("#", text)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(shape)
            if last is not None and now - last < self._window:
                return
            if len(self._last) >= _MAX_REMEMBERED:
                self._last.clear()
            self._last[shape] = now
        self._logger.log(level, text)
