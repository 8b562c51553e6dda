"""Durable spool: a local append-only log in front of Kafka, for deployments that opt in.

When Kafka cannot take a delivery in time, the spool writes it (fsynced) to disk and relay
answers 200; a drainer sends spooled deliveries to Kafka in order once it is back, and a
restarted relay replays whatever a crash left behind. Records leave the spool only after
Kafka acknowledged them. See docs/reliability.md for when (not) to use it.

  framing.py   length + CRC32 frames, so a torn or corrupt tail is detected on replay
  codec.py     a delivery's records <-> one frame's payload
  log.py       segment files, lock, checkpoint, recovery (blocking I/O, thread-safe)
  group_sync.py  one fsync shared by concurrent appends
  sink.py      the EventSink wrapper: Kafka first, the spool when Kafka fails, the drainer
"""
