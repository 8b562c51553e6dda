"""The one rule for holding bytes against ``intake.max_inflight_bytes``.

Two holdings use it, each counted apart: the records the publisher has handed to Kafka and
not had acknowledged (relay.kafka.publisher), and the request bodies the endpoint is
handling (relay.intake.admission). Both must refuse and admit alike, so the rule lives here.
"""

from __future__ import annotations


def over_byte_limit(held: int, size: int, limit: int | None) -> bool:
    """True if holding ``size`` more bytes beside ``held`` would go over ``limit``.

    Something larger than the limit is still admitted while nothing else is held: refusing
    it for good would make UltraCart retry it forever. ``None`` means no limit.
    """
    return limit is not None and held > 0 and held + size > limit
