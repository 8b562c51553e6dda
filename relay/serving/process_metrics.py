"""``process_*`` series for every process of a multi-worker relay, labelled ``worker``.

prometheus_client's ``ProcessCollector`` reads one process's /proc entry at scrape time, and
its multiprocess mode has no way to carry those readings from the workers: only counters,
gauges and histograms go through the files. The supervisor, which serves the one scrape,
knows every worker's pid, so it reads each worker's /proc entry itself and labels the series
``worker="0"``, ``"1"``, ... and its own ``worker="supervisor"``. ``sum without (worker)``
gives the whole relay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

SUPERVISOR = "supervisor"


class WorkerProcessCollector(Collector):
    def __init__(self, pids: Callable[[], Mapping[str, int]]) -> None:
        """``pids`` gives, at each scrape, the ``worker`` label value -> pid of live processes."""
        self._pids = pids
        # One reader per pid: each reads the boot time once when made. Readers of pids that
        # are gone are dropped at the next scrape.
        self._readers: dict[int, ProcessCollector] = {}

    def describe(self) -> Iterable[Metric]:
        # The families depend on which processes are alive; nothing to check at registration.
        return []

    def collect(self) -> Iterable[Metric]:
        pids = dict(self._pids())
        self._readers = {pid: self._readers.get(pid) or _reader(pid) for pid in pids.values()}
        merged: dict[str, Metric] = {}
        for worker, pid in pids.items():
            # A process that exits between the two lines yields no families (OSError inside).
            for family in self._readers[pid].collect():
                target = merged.get(family.name)
                if target is None:
                    target = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    target.add_sample(
                        sample.name,
                        {**sample.labels, "worker": worker},
                        sample.value,
                        sample.timestamp,
                    )
        return list(merged.values())


def _reader(pid: int) -> ProcessCollector:
    return ProcessCollector(pid=lambda: pid, registry=None)
