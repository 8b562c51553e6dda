"""CPython's cyclic garbage collector, set for a serving process.

relay makes a few container objects per event (the Event, the Record, its header list, the
ce_id header), and while deliveries wait for Kafka's acknowledgements hundreds of them are
alive at once. With the default thresholds (700, 10, 10) a young collection ran every one
or two 100-event deliveries. Each collection that found the in-flight records alive pushed
them into an older generation. The full collections then also walked every object start-up
made: the modules, the app and the settings, about 40,000 objects. Counted with
gc.callbacks in one worker under wrk (100 small events per delivery, 32 connections, about
10 s): 1,100-1,700 young, 100-150 middle and 9-15 full collections, 0.8-0.9 s in all. The
full ones took 25-35 ms each, so they stalled every delivery on that worker.

Two changes, both only in the processes that serve (``relay serve`` and its workers):

- Start-up's objects are frozen (``gc.freeze``): they live as long as the process, and the
  collector no longer walks them.
- A young collection waits for 10,000 net new container objects, more than 32 in-flight
  100-event deliveries hold. Unreachable cycles (an exception's traceback and its frames,
  mostly) are still collected, only later: at most that many objects more are kept.

Under the same load this left 1-2 young collections and 1 full one, 0.015 s in all.
"""

from __future__ import annotations

import gc

# Net allocations of tracked objects between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Freeze what start-up built and collect young objects less often.

    For a process's entry point, after the app is built and before requests arrive: the
    settings are process-wide, so a library or a test process must not call this.
    """
    # Whatever start-up left unreachable goes first, so that freezing keeps only live objects.
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
