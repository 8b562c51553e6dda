"""``relay webhooks audit``: check Kafka against UltraCart's own delivery log, and repair it.

UltraCart logs every delivery it makes (``getWebhookLogSummaries``, ``getWebhookLog``). For
each logged delivery the audit recomputes, with relay's own parser and RecordBuilder, the
records relay would have written, and looks for each one's ``ce_id`` on its routed topic
near the delivery's time. Modules, one job each:

- ``outcome``: an audited event and the report (counts, JSON, exit code);
- ``rebuild``: a logged delivery -> relay's records, or why not (cut at 100,000 characters);
- ``collect``: the log over a window, full logs only where the summary cannot settle it;
- ``kafka_index``: which ce_ids and keys each topic holds, from offsets for times;
- ``judge``: the outcome of every event, from the log and the index (pure logic);
- ``repair``: republish missing events from the logged body; ask for reflows;
- ``run``: the whole audit, from a client and relay's settings.
"""
