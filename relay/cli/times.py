"""Times on the command line: an ISO date-time, or a span back from now (30m, 2h, 7d)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from relay.settings.errors import ConfigError

_SPAN = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def is_span(text: str) -> bool:
    return bool(_SPAN.fullmatch(text.strip()))


def span(text: str) -> timedelta:
    match = _SPAN.fullmatch(text.strip())
    if not match:
        raise ConfigError(f"{text!r}: use a span such as 90s, 30m, 2h, 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def moment(text: str, now: datetime | None = None) -> datetime:
    """An ISO date-time (UTC unless it says otherwise), or that span before ``now``."""
    if _SPAN.fullmatch(text.strip()):
        return (now or datetime.now(UTC)) - span(text)
    try:
        found = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r}: use an ISO date-time or 30m, 2h, 7d") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
