"""One benchmark run: broker, then per scenario the bare app, relay, Benthos, the bridge floor
and the raw producers.

Everything listens on 127.0.0.1 and every process started here is stopped again in a
``finally``, whatever happens: servers and generators by process group, the broker by its
script. Scenarios run one after another on a fresh server each, so a scenario's peak RSS
and CPU are its own.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import benthos
from bench import scenarios as sc
from bench.bridge_app import BODIES_FILE_ENV
from bench.child import LineChild
from bench.monitor import RssSeries, TreeMonitor
from bench.scrape import ok_deliveries
from bench.search import Criteria, SearchResult, Step, Timing, search
from bench.servers import CREDENTIALS, Server, ServerSpec
from bench.targets import HttpTarget, ProducerTarget
from tests.support.broker import LocalBroker
from tests.support.kafka import create_topics
from tests.support.net import free_port

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# Not 9092 (make run) nor 19092 (tests): a benchmark must not share a broker with anything.
DEFAULT_BROKER_PORT = 19392


@dataclass(frozen=True)
class Options:
    scenarios: tuple[sc.Scenario, ...]
    workers: int
    out_dir: Path
    bootstrap: str | None = None
    broker_port: int = DEFAULT_BROKER_PORT
    partitions: int = 6
    criteria: Criteria = field(default_factory=Criteria)
    timing: Timing = field(default_factory=Timing)
    half_rate_seconds: float = 10.0
    soak_seconds: float = 0.0
    soak_scenario: str = "order-10"
    connections: int = 32
    max_connections: int = 512
    smoke: bool = False
    overrides: tuple[tuple[str, str], ...] = ()
    # Start rates for the search, deliveries/s; well below any machine's capacity.
    start_rates: dict[str, float] = field(
        default_factory=lambda: {
            "small-1": 250,
            "small-10": 100,
            "small-100": 20,
            "order-1": 200,
            "order-10": 50,
            "order-100": 8,
        }
    )


@dataclass
class _Served:
    server: Server
    monitor: TreeMonitor
    loadgen: LineChild
    exit_code: int | None = None


class Run:
    def __init__(self, options: Options, progress: Callable[[str], None]) -> None:
        self.options = options
        self.progress = progress
        self.work = Path(tempfile.mkdtemp(prefix="relay-bench-"))
        self.broker: LocalBroker | None = None
        self.broker_pid: int | None = None
        self.bootstrap = options.bootstrap or ""
        self.spec: ServerSpec | None = None

    def execute(self) -> dict[str, Any]:
        options = self.options
        # Cached: a second call only compares a hash (deploy/tools/install-benthos).
        self.progress("checking the Benthos binary (built once, cached outside the clone)")
        subprocess.run([str(benthos.INSTALLER)], check=True, stdout=subprocess.DEVNULL)
        try:
            if not self.bootstrap:
                self.progress(f"starting Kafka on 127.0.0.1:{options.broker_port}")
                self.broker = LocalBroker(options.broker_port)
                # fresh: topics of earlier runs would otherwise make every start slower.
                self.bootstrap = self.broker.start(fresh=True)
                self.broker_pid = self.broker.pid()
            prefix = f"bench{int(time.time())}."
            self.spec = ServerSpec(
                bootstrap=self.bootstrap,
                port=free_port(),
                admin_port=free_port(),
                workers=options.workers,
                topic_prefix=prefix,
                overrides=options.overrides,
            )
            create_topics(
                self.bootstrap,
                [prefix + "order_create", prefix + "unknown", prefix + "dead_letter"],
                options.partitions,
                timeout=60,
                exist_ok=True,
            )
            self._warm_up()
            results = [self._scenario(s) for s in options.scenarios]
            soak = self._soak(results) if options.soak_seconds > 0 else None
            return {"scenarios": results, "soak": soak, "work_dir": str(self.work)}
        finally:
            if self.broker is not None:
                self.progress("stopping Kafka")
                self.broker.stop()

    def _warm_up(self) -> None:
        """Load the broker before measuring: a fresh JVM compiles its hot paths in the
        first seconds of traffic, and whichever party came first would pay for that."""
        assert self.spec is not None
        scenario = sc.BY_NAME["small-10"]
        seconds = 3.0 if self.options.smoke else 15.0
        self.progress(f"warming the broker up for {seconds:g} s")
        bodies_file, _ = self._bodies(scenario)
        timing = Timing(warmup=0.0, duration=seconds, drain=10.0)
        target = ProducerTarget(
            self.spec.env(), bodies_file, self.options.workers, None, timing, self.work
        )
        try:
            target.step(500.0)
        finally:
            target.stop()

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def _bodies(self, scenario: sc.Scenario) -> tuple[Path, list[bytes]]:
        bodies = sc.delivery_bodies(scenario)
        path = self.work / f"{scenario.name}.bodies"
        sc.write_bodies(path, bodies)
        return path, bodies

    def _scenario(self, scenario: sc.Scenario) -> dict[str, Any]:
        options = self.options
        bodies_file, bodies = self._bodies(scenario)
        start = options.start_rates.get(scenario.name, 10.0)
        self.progress(f"[{scenario.name}] bare Starlette ceiling")
        bare = self._http("bare", scenario, bodies_file, start, ceiling=None)
        self.progress(f"[{scenario.name}] relay")
        relay_start = min(start, max(1.0, bare["max_rate"] / 4))
        relay = self._http(
            "relay",
            scenario,
            bodies_file,
            relay_start,
            ceiling=None,
            half_rate=True,
            quarter_rate=True,
        )
        self.progress(f"[{scenario.name}] Benthos")
        # Its latency is compared with relay's at 25% and 50% of relay's maximum.
        benthos = self._http(
            "benthos",
            scenario,
            bodies_file,
            relay_start,
            ceiling=None,
            half_rate=True,
            half_rate_at=relay["max_rate"] / 2,
            quarter_rate=True,
            quarter_rate_at=relay["max_rate"] / 4,
        )
        self.progress(f"[{scenario.name}] bridge floor")
        # Its latency is compared with relay's at relay's half-max rate, like the producer's.
        bridge = self._http(
            "bridge",
            scenario,
            bodies_file,
            relay_start,
            ceiling=None,
            half_rate=True,
            half_rate_at=relay["max_rate"] / 2,
        )
        self.progress(f"[{scenario.name}] raw producer ceiling")
        producer = self._producer(scenario, bodies_file, start, relay["max_rate"])
        return {
            "name": scenario.name,
            "events": scenario.events,
            "shape": scenario.shape,
            "object_bytes": sc.object_bytes(scenario.shape),
            "body_bytes": round(sum(len(b) for b in bodies) / len(bodies)),
            "bare": bare,
            "relay": relay,
            "bridge": bridge,
            "benthos": benthos,
            "producer": producer,
        }

    def _loadgen(self, log: Path, bodies_file: Path) -> LineChild:
        assert self.spec is not None
        loadgen = LineChild("bench.loadgen", self.spec.env(), log)
        loadgen.ask(
            {
                "host": "127.0.0.1",
                "port": self.spec.port,
                "path": "/webhooks/ultracart",
                "bodies_file": str(bodies_file),
                "username": CREDENTIALS[0],
                "password": CREDENTIALS[1],
                "connections": self.options.connections,
                "max_connections": self.options.max_connections,
            },
            timeout=30,
        )
        return loadgen

    def _http(
        self,
        kind: str,
        scenario: sc.Scenario,
        bodies_file: Path,
        start: float,
        ceiling: float | None,
        half_rate: bool = False,
        half_rate_at: float | None = None,
        quarter_rate: bool = False,
        quarter_rate_at: float | None = None,
    ) -> dict[str, Any]:
        assert self.spec is not None
        options = self.options
        logs = self.work / f"{scenario.name}-{kind}"
        extra_env = {BODIES_FILE_ENV: str(bodies_file)} if kind == "bridge" else None
        with self._serving(kind, logs, bodies_file, extra_env) as served:
            target = HttpTarget(served.loadgen, served.monitor, self.broker_pid, options.timing)
            found = search(target.step, start, options.criteria, options.timing, ceiling)
            result = _search_summary(found)
            last_step = found.steps[-1] if found.steps else None
            quarter_rate_at = quarter_rate_at or found.max_rate / 4
            if quarter_rate and quarter_rate_at:
                # Light load: what a delivery waits when nothing queues in front of it.
                quarter = target.step(quarter_rate_at, duration=options.half_rate_seconds)
                result["quarter_rate"] = _step_summary(quarter)
            half_rate_at = half_rate_at or found.max_rate / 2
            if half_rate and half_rate_at:
                half = target.step(half_rate_at, duration=options.half_rate_seconds)
                result["half_rate"] = _step_summary(half)
                last_step = half
            if kind == "relay" and last_step is not None:
                # Every 200 the generator saw must be counted once in the scraped metrics.
                result["metrics_check"] = {
                    "generator_ok": last_step["ok_total"],
                    "relay_deliveries_ok": ok_deliveries(served.server.metrics()),
                }
        result["exit_code"] = served.exit_code
        result["processes"] = _process_summary(served.monitor)
        return result

    @contextmanager
    def _serving(
        self, kind: str, logs: Path, bodies_file: Path, extra_env: dict[str, str] | None = None
    ) -> Iterator[_Served]:
        """A ready server of ``kind`` with its process monitor and a load generator; all
        three stopped when the block ends, the server's exit code kept in the result."""
        assert self.spec is not None
        server = Server(kind, self.spec, logs.with_suffix(".server.log"), extra_env)
        monitor: TreeMonitor | None = None
        loadgen: LineChild | None = None
        served: _Served | None = None
        try:
            server.wait_ready()
            monitor = TreeMonitor(server.pid)
            monitor.start()
            loadgen = self._loadgen(logs.with_suffix(".loadgen.log"), bodies_file)
            served = _Served(server, monitor, loadgen)
            yield served
        finally:
            if loadgen is not None:
                loadgen.stop()
            code = server.stop()
            if monitor is not None:
                monitor.stop()
            if served is not None:
                served.exit_code = code

    def _producer(
        self, scenario: sc.Scenario, bodies_file: Path, start: float, relay_max: float
    ) -> dict[str, Any]:
        assert self.spec is not None
        options = self.options
        target = ProducerTarget(
            self.spec.env(),
            bodies_file,
            options.workers,
            self.broker_pid,
            options.timing,
            self.work,
        )
        try:
            found = search(target.step, start, options.criteria, options.timing)
            result = _search_summary(found)
            if relay_max:
                # The same delivery rate relay's half-rate run had, for the p99 comparison.
                half = target.step(relay_max / 2, duration=options.half_rate_seconds)
                result["half_rate"] = _step_summary(half)
        finally:
            target.stop()
        return result

    def _soak(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.spec is not None
        options = self.options
        scenario = sc.BY_NAME[options.soak_scenario]
        bodies_file, _ = self._bodies(scenario)
        measured = next((r["relay"] for r in results if r["name"] == scenario.name), None)
        if measured is None:
            self.progress(f"[soak] relay's max rate for {scenario.name}")
            start = options.start_rates.get(scenario.name, 10.0)
            measured = self._http("relay", scenario, bodies_file, start, None)
        if not measured["max_rate"]:
            raise RuntimeError(f"relay passed no step of {scenario.name}; nothing to soak at")
        rate = measured["max_rate"] / 2
        self.progress(f"[soak] relay at {rate:g} deliveries/s for {options.soak_seconds:g} s")
        with self._serving("relay", self.work / "soak", bodies_file) as served:
            timing = Timing(warmup=0.0, duration=options.soak_seconds, drain=options.timing.drain)
            target = HttpTarget(served.loadgen, served.monitor, self.broker_pid, timing)
            step = target.step(rate)
        monitor = served.monitor
        return {
            "scenario": scenario.name,
            "rate": rate,
            "seconds": options.soak_seconds,
            "step": _step_summary(step),
            "rss": [_rss_trend(s) for s in monitor.series.values() if s.role != "helper"],
        }


def _step_summary(step: Step) -> dict[str, Any]:
    keep = ("offered_rate", "requests", "status", "errors", "latency", "cpu_cores", "verdict")
    summary = {k: step[k] for k in keep if k in step}
    if "dispatch_lag" in step:
        summary["dispatch_lag_p99_ms"] = step["dispatch_lag"].get("p99")
        summary["connections"] = step.get("connections")
    return summary


def _search_summary(found: SearchResult) -> dict[str, Any]:
    return {
        "max_rate": found.max_rate,
        "at_max": _step_summary(found.best) if found.best else None,
        "steps": [_step_summary(s) for s in found.steps],
    }


def _process_summary(monitor: TreeMonitor | None) -> dict[str, Any]:
    if monitor is None:
        return {}
    return {
        role: {
            "count": len(monitor.pids(role)),
            "peak_rss_mb": round(monitor.peak_rss(role) / MB, 1),
        }
        for role in ("main", "worker", "helper")
        if monitor.pids(role)
    }


def _rss_trend(series: RssSeries) -> dict[str, Any]:
    """First and last minute of a process's RSS, and its least-squares slope after minute 1."""
    samples = [s / MB for s in series.samples]
    head = sorted(samples[:60])
    tail = sorted(samples[-60:])
    settled = samples[60:] if len(samples) > 120 else samples
    slope = 0.0
    if len(settled) > 2:
        n = len(settled)
        mean_x = (n - 1) / 2
        mean_y = sum(settled) / n
        var = sum((x - mean_x) ** 2 for x in range(n))
        slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(settled)) / var * 60
    return {
        "pid": series.pid,
        "role": series.role,
        "samples": len(samples),
        "first_minute_median_mb": round(head[len(head) // 2], 1) if head else None,
        "last_minute_median_mb": round(tail[len(tail) // 2], 1) if tail else None,
        "max_mb": round(max(samples), 1) if samples else None,
        "slope_mb_per_min": round(slope, 3),
        # Every 10th sample (one per 10 s), enough to plot.
        "series_mb": [round(v, 1) for v in samples[::10]],
    }
