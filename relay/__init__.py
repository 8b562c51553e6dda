"""relay: UltraCart webhooks onto Kafka."""

__version__ = "0.1.0"
