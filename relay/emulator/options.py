"""Everything that shapes one emulator instance; tests shrink the timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The two delivery body shapes UltraCart's own sources show (docs/ultracart.md section 1): the
# sample receiver's {"events": [...]} and the wiki's top-level array [...].
BodyShape = Literal["object", "array"]
BODY_SHAPES: tuple[BodyShape, ...] = ("object", "array")


@dataclass(frozen=True)
class EmulatorOptions:
    simple_keys: tuple[str, ...] = ("emulator-simple-key",)
    oauth_client_id: str = "emulator-client"
    token_ttl_seconds: float = 3600.0
    # UltraCart's default budget: 1,000 calls an hour, leaky bucket.
    rate_limit_per_hour: int = 1000
    # How many calls the bucket holds before it answers 429 (None: an hour's worth). Tests
    # make it small so a client that does not pace itself is caught within seconds.
    rate_limit_burst: int | None = None
    # Artificial latency per API call, so overlapping calls really overlap (and earn a 429).
    api_latency_seconds: float = 0.0
    items: int = 50
    orders: int = 20
    merchant_id: str = "DEMO"
    # Delivery retries: exponential from base, capped; the webhook is disabled after this many
    # consecutive failures (UltraCart's own numbers are unknown).
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    disable_after_failures: int = 50
    delivery_timeout_seconds: float = 30.0
    delivery_tick_seconds: float = 0.05
    # Which shape deliveries take; with compress_events an "array" body is the base64 text
    # itself, as a top-level JSON string.
    body_shape: BodyShape = "object"
    # Tests set this so a webhook URL such as https://relay.example.com is never contacted.
    loopback_only: bool = False
