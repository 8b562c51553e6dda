"""Kafka side of relay: producer configuration and the asyncio bridge to librdkafka."""
