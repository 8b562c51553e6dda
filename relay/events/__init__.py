"""The event model: UltraCart events, the records relay makes of them, where they go, and
the port a record sink implements. Pure logic: no I/O, no Kafka, no HTTP."""
