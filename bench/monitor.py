"""Watch a server's process tree while it is under load: CPU per window, RSS every second."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bench import procstat


def role_of(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        command = procstat.cmdline(pid)
    except OSError:
        return "gone"
    # multiprocessing's resource tracker is a helper of the supervisor, not a worker.
    return "helper" if "resource_tracker" in command else "worker"


@dataclass
class RssSeries:
    """One process's resident set size, sampled once per interval."""

    pid: int
    role: str
    started: float
    samples: list[int] = field(default_factory=list)
    peak: int = 0


class TreeMonitor:
    """Samples the RSS of every process under ``root`` on a thread, once per ``interval``.

    CPU is read on demand (``cpu_seconds``) so each measurement window takes its own
    difference; a process that exits between two readings loses at most its last interval.
    """

    def __init__(self, root: int, interval: float = 1.0) -> None:
        self.root = root
        self.interval = interval
        self.series: dict[int, RssSeries] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in procstat.descendants(self.root):
            try:
                total += procstat.cpu_seconds(pid)
            except OSError:
                continue
        return total

    def pids(self, role: str) -> list[int]:
        with self._lock:
            return [s.pid for s in self.series.values() if s.role == role]

    def peak_rss(self, role: str) -> int:
        """Highest RSS (VmHWM where still readable) among processes of ``role``."""
        with self._lock:
            return max((s.peak for s in self.series.values() if s.role == role), default=0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        for pid in procstat.descendants(self.root):
            try:
                rss = procstat.rss_bytes(pid)
                peak = procstat.peak_rss_bytes(pid)
            except OSError:
                continue
            with self._lock:
                series = self.series.get(pid)
                if series is None:
                    series = self.series[pid] = RssSeries(pid, role_of(pid, self.root), now)
                series.samples.append(rss)
                series.peak = max(series.peak, peak, rss)
