"""What a benchmark step runs against: a server through the load generator, or raw producers.

Each step also records where the machine's CPU went during it (the server's process tree,
the load generator or producers, the broker, and everything else on the machine), so a
reader can tell a slow step from a step that shared the machine with something else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.child import LineChild
from bench.monitor import TreeMonitor
from bench.search import Step, Timing
from bench.stats import latency_summary


class CpuWindow:
    """Cores used by each party between ``open`` and ``close``."""

    def __init__(self, monitor: TreeMonitor | None, broker_pid: int | None) -> None:
        self._monitor = monitor
        self._broker_pid = broker_pid

    def open(self) -> None:
        self._wall = time.monotonic()
        self._machine = procstat.MachineCpu.read()
        self._server = self._monitor.cpu_seconds() if self._monitor else 0.0
        self._broker = self._broker_cpu()

    def _broker_cpu(self) -> float:
        if self._broker_pid is None:
            return 0.0
        try:
            return procstat.cpu_seconds(self._broker_pid)
        except OSError:
            return 0.0

    def close(self, generator_cpu_seconds: float) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        machine = procstat.MachineCpu.read().busy_cores_since(self._machine, wall)
        server = (self._monitor.cpu_seconds() - self._server) / wall if self._monitor else 0.0
        broker = (self._broker_cpu() - self._broker) / wall if self._broker_pid else 0.0
        generator = generator_cpu_seconds / wall
        return {
            "machine": round(machine, 3),
            "server": round(server, 3),
            "generator": round(generator, 3),
            "broker": round(broker, 3),
            "other": round(max(0.0, machine - server - generator - broker), 3),
        }


class HttpTarget:
    """A server (relay or the bare app) driven by one bench.loadgen process."""

    def __init__(
        self,
        loadgen: LineChild,
        monitor: TreeMonitor,
        broker_pid: int | None,
        timing: Timing,
    ) -> None:
        self._loadgen = loadgen
        self._cpu = CpuWindow(monitor, broker_pid)
        self._timing = timing

    def step(self, rate: float, duration: float | None = None) -> Step:
        timing = self._timing
        length = duration if duration is not None else timing.duration
        self._cpu.open()
        result = self._loadgen.ask(
            {"rate": rate, "warmup": timing.warmup, "duration": length, "drain": timing.drain},
            timeout=timing.warmup + length + timing.drain + 30,
        )
        result["cpu_cores"] = self._cpu.close(result["generator_cpu_seconds"])
        # Let a server that fell behind catch up before the next step is judged.
        time.sleep(0.5)
        return result


class ProducerTarget:
    """``count`` bench.producer processes sharing the offered rate equally."""

    def __init__(
        self,
        env: dict[str, str],
        bodies_file: Path,
        count: int,
        broker_pid: int | None,
        timing: Timing,
        log_dir: Path,
    ) -> None:
        self._timing = timing
        self._cpu = CpuWindow(None, broker_pid)
        self.children = [
            LineChild("bench.producer", env, log_dir / f"producer-{i}.log") for i in range(count)
        ]
        for child in self.children:
            child.send({"bodies_file": str(bodies_file), "env": env})
        for child in self.children:
            child.receive(timeout=60)

    def stop(self) -> None:
        for child in self.children:
            child.stop(timeout=40)

    def step(self, rate: float, duration: float | None = None) -> Step:
        timing = self._timing
        length = duration if duration is not None else timing.duration
        share = rate / len(self.children)
        self._cpu.open()
        for child in self.children:
            child.send(
                {"rate": share, "warmup": timing.warmup, "duration": length, "drain": timing.drain}
            )
        parts = [
            c.receive(timeout=timing.warmup + length + timing.drain + 30) for c in self.children
        ]
        merged = _merge(rate, length, parts)
        merged["cpu_cores"] = self._cpu.close(merged.pop("cpu_seconds"))
        time.sleep(0.5)
        return merged


def _merge(rate: float, duration: float, parts: list[dict[str, Any]]) -> Step:
    latencies = [v / 1000 for part in parts for v in part["latencies_ms"]]
    errors: dict[str, int] = {}
    for part in parts:
        for kind, count in part["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    answered = sum(p["answered"] for p in parts)
    return {
        "offered_rate": rate,
        "window_seconds": duration,
        "requests": sum(p["requests"] for p in parts),
        "answered": answered,
        "status": {"200": answered} if answered else {},
        "errors": errors,
        "latency": latency_summary(latencies),
        "cpu_seconds": sum(p["cpu_seconds"] for p in parts),
    }
