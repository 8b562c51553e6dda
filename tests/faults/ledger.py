"""What the sender was told against what Kafka holds: the counts of a fault report.

- every event of every delivery answered 2xx must be in Kafka (``lost`` counts those that
  are not);
- every delivery must end with a 2xx after its retries (``unacknowledged``);
- an event found more than once is a duplicate. Copies made by UltraCart's retries carry
  different ``relay_delivery_id`` headers (one per attempt); copies with the same one were
  made by relay itself (the spool re-sending after a crash or a timed-out direct attempt).
  Every copy must carry the same ``ce_id`` and the same value.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tests.faults.sender import Delivery
from tests.support.kafka import ConsumedRecord


@dataclass(frozen=True)
class FaultReport:
    scenario: str
    spool: bool
    seconds: float
    deliveries_sent: int
    events_sent: int
    attempts: int
    failed_attempts: int
    retried_deliveries: int
    acknowledged: int
    unacknowledged: int
    events_expected: int
    found: int
    duplicates_from_retries: int
    duplicates_from_relay: int
    ce_id_mismatches: int
    unexpected: int
    dead_letters: int
    longest_gap_seconds: float
    lost: int
    # 503 answers among the non-2xx, and the brokers in the cluster (which table the row is in).
    unavailable: int = 0
    brokers: int = 1

    @property
    def duplicates(self) -> int:
        return self.duplicates_from_retries + self.duplicates_from_relay

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duplicates": self.duplicates}


def assert_every_event_once(report: FaultReport, *, settled: bool, exit_code: int) -> None:
    """What every scenario must show: each acknowledged event in Kafka with its ce_id,
    nothing unexpected, no dead letter, and relay settled and stopped cleanly."""
    assert settled, "some deliveries never got a 2xx within the settle time"
    assert exit_code == 0
    assert report.lost == 0
    assert report.unacknowledged == 0
    assert report.found == report.events_expected
    assert report.ce_id_mismatches == 0
    assert report.unexpected == 0
    assert report.dead_letters == 0


def reconcile(
    scenario: str,
    spool: bool,
    seconds: float,
    deliveries: Sequence[Delivery],
    records: Sequence[ConsumedRecord],
    dead_letter_topic: str,
    brokers: int = 1,
) -> FaultReport:
    copies: dict[bytes, list[ConsumedRecord]] = defaultdict(list)
    dead_letters = 0
    for record in records:
        if record.topic == dead_letter_topic:
            dead_letters += 1
        elif record.key is not None:
            copies[record.key].append(record)

    expected_keys = {e.key.encode() for d in deliveries for e in d.events}
    acknowledged = [d for d in deliveries if d.acknowledged]
    acked_keys = [e.key.encode() for d in acknowledged for e in d.events]

    from_retries = from_relay = mismatches = 0
    for found in copies.values():
        if len(found) < 2:
            continue
        if len({(r.headers.get("ce_id"), r.value) for r in found}) != 1:
            mismatches += 1
        attempts = {r.headers.get("relay_delivery_id") for r in found}
        # n copies from k distinct attempts: k - 1 are retries' doing, the rest relay's.
        from_retries += len(attempts) - 1
        from_relay += len(found) - len(attempts)

    return FaultReport(
        scenario=scenario,
        spool=spool,
        seconds=round(seconds, 1),
        deliveries_sent=len(deliveries),
        events_sent=sum(len(d.events) for d in deliveries),
        attempts=sum(len(d.attempts) for d in deliveries),
        failed_attempts=sum(not a.ok for d in deliveries for a in d.attempts),
        retried_deliveries=sum(len(d.attempts) > 1 for d in deliveries),
        acknowledged=len(acknowledged),
        unacknowledged=len(deliveries) - len(acknowledged),
        events_expected=len(acked_keys),
        found=sum(key in copies for key in acked_keys),
        duplicates_from_retries=from_retries,
        duplicates_from_relay=from_relay,
        ce_id_mismatches=mismatches,
        unexpected=sum(key not in expected_keys for key in copies),
        dead_letters=dead_letters,
        longest_gap_seconds=round(longest_gap(deliveries), 1),
        lost=sum(key not in copies for key in acked_keys),
        unavailable=sum(a.status == 503 for d in deliveries for a in d.attempts),
        brokers=brokers,
    )


def longest_gap(deliveries: Sequence[Delivery]) -> float:
    """The longest time the sender went without a 2xx: how long the fault was felt."""
    answered = sorted(a.started + a.seconds for d in deliveries for a in d.attempts if a.ok)
    return max((b - a for a, b in itertools.pairwise(answered)), default=0.0)
