"""The collector settings of a serving process (relay.serving.collector)."""

from __future__ import annotations

import subprocess
import sys

import orjson

from relay.serving.collector import YOUNG_THRESHOLD
from tests.support.relay import REPO_ROOT

_PROBE = """
import gc, json
from relay.serving.collector import tune_for_serving
before = gc.get_threshold()
tune_for_serving()
frozen = gc.get_freeze_count()
# A cycle made after tuning is still found: freezing kept only what existed before.
class Node: pass
node = Node(); node.me = node; del node
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": frozen,
                  "collected": gc.collect()}))
"""


def test_serving_freezes_start_up_and_collects_young_objects_less_often() -> None:
    # In a child: the settings are process-wide and must not leak into the test process.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO_ROOT, capture_output=True, check=True
    )
    seen = orjson.loads(done.stdout)
    assert seen["before"] == [700, 10, 10]
    assert seen["after"] == [YOUNG_THRESHOLD, 10, 10]
    assert seen["frozen"] > 1000
    assert seen["collected"] >= 1  # the node
