"""relay's benchmark: relay against the ceilings of its own stack, on one machine, in one run.

``python -m bench`` (``make bench``) starts a private Kafka broker, then for each scenario
measures three things with the same payloads and settings: a bare Starlette app under
relay's own server (the HTTP ceiling), relay itself, and confluent-kafka producing the same
records straight to the broker (the producer ceiling). See docs/performance.md.
"""
