"""HTTP intake: authenticate a delivery, read and parse it, publish its events."""
