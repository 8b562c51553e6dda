"""A load generator that behaves like UltraCart: steady deliveries, retried until a 2xx.

Each of a few senders (threads) owns a stream of deliveries and sends them one after the
other at a steady rate, the way UltraCart works through one webhook's queue: a delivery
that gets anything but a 2xx (or no answer at all) is sent again, byte for byte, after a
short backoff, and the sender moves on only once it got its 2xx. Every attempt is recorded.

Each event carries a key no other event has, so the checker can tell exactly which events
reached Kafka and how often.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2
import orjson

from tests.support.waiting import wait_until

_FILLER = "x" * 200  # a realistic few hundred bytes per event
# The field relay keys each event by (relay/events/routing.py defaults).
_KEY_FIELD = {"order_create": "order_id", "item_update": "merchant_item_id"}


@dataclass(frozen=True)
class ExpectedEvent:
    name: str
    key: str


@dataclass(frozen=True)
class Attempt:
    number: int
    request_id: str
    started: float
    seconds: float
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    sender: int
    index: int
    body: bytes
    events: tuple[ExpectedEvent, ...]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok


def build_delivery(tag: str, sender: int, index: int) -> Delivery:
    """1 to 3 events, orders and items alternating, each with a key of its own."""
    expected = []
    for n in range(1 + index % 3):
        name = "order_create" if n % 2 == 0 else "item_update"
        expected.append(ExpectedEvent(name, f"{tag}{sender}-{index}-{n}"))
    events = [{e.name: {_KEY_FIELD[e.name]: e.key, "note": _FILLER}} for e in expected]
    return Delivery(sender, index, orjson.dumps({"events": events}), tuple(expected))


class UltraCartSender:
    def __init__(
        self,
        url: str,
        auth: tuple[str, str],
        tag: str,
        *,
        senders: int = 4,
        rate: float = 40.0,
        request_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.1, 1.0),
    ) -> None:
        self._url = url
        self._auth = auth
        self._tag = tag
        self._senders = senders
        self._interval = senders / rate  # per sender
        self._timeout = request_timeout
        self._backoff = backoff
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._stop_issuing = threading.Event()
        self._give_up = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def now(self) -> float:
        """Seconds since start, on the clock attempts' ``started`` uses."""
        return time.monotonic() - self._t0

    def last_success(self) -> float:
        """When (seconds after start) the latest 2xx attempt began; -1 before any."""
        return max(
            (a.started for d in self.deliveries for a in list(d.attempts) if a.ok), default=-1.0
        )

    def start(self) -> None:
        self._t0 = time.monotonic()
        for sender in range(self._senders):
            thread = threading.Thread(target=self._run, args=(sender,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def around(
        self, fault: Callable[[], None], *, before: float, after: float, settle: float
    ) -> bool:
        """Start the load, apply ``fault`` after ``before`` seconds, keep the load on until
        relay answers 2xx again and ``after`` seconds more, then ``finish(settle)``."""
        self.start()
        try:
            time.sleep(before)
            fault()
            recovered = self.now()
            wait_until(
                lambda: self.last_success() > recovered,
                settle,
                interval=0.2,
                message="relay did not recover",
            )
            time.sleep(after)
        finally:
            settled = self.finish(settle)
        return settled

    def finish(self, settle_timeout: float) -> bool:
        """Stop issuing new deliveries; wait for the issued ones to get their 2xx.

        Returns False if some were still being retried at ``settle_timeout``.
        """
        self._stop_issuing.set()
        deadline = time.monotonic() + settle_timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        settled = not any(t.is_alive() for t in self._threads)
        if not settled:
            self._give_up.set()
            for thread in self._threads:
                thread.join(self._timeout + 5)
        return settled

    def _run(self, sender: int) -> None:
        with httpx2.Client(timeout=self._timeout) as client:
            due = self._t0 + sender * self._interval / self._senders
            index = 0
            while True:
                wait = due - time.monotonic()
                if self._stop_issuing.wait(max(0.0, wait)):
                    return
                delivery = build_delivery(self._tag, sender, index)
                with self._lock:
                    self._deliveries.append(delivery)
                self._deliver(client, delivery)
                index += 1
                due += self._interval

    def _deliver(self, client: httpx2.Client, delivery: Delivery) -> None:
        delay = self._backoff[0]
        number = 0
        while True:
            number += 1
            request_id = f"{self._tag}{delivery.sender}-{delivery.index}-a{number}"
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                response = client.post(
                    self._url,
                    content=delivery.body,
                    auth=self._auth,
                    headers={"content-type": "application/json", "x-request-id": request_id},
                )
                status = response.status_code
            except httpx2.HTTPError as exc:
                error = type(exc).__name__
            attempt = Attempt(
                number=number,
                request_id=request_id,
                started=started - self._t0,
                seconds=time.monotonic() - started,
                status=status,
                error=error,
            )
            delivery.attempts.append(attempt)
            if attempt.ok or self._give_up.is_set():
                return
            self._give_up.wait(delay)
            delay = min(delay * 2, self._backoff[1])
