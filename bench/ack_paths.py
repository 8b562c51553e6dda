"""``python -m bench.ack_paths``: acknowledgement paths and linger policies, A/B in one session.

Each variant is a server (the bridge floor with one ack path, or relay with one setting)
measured the same way, the variants taking turns round after round so that load from
elsewhere on the machine falls on all of them alike: the maximum rate (the benchmark's
search, shorter steps) and latency at fixed light rates. Results go to
bench/results/ack-paths.{json,md}.

python -m bench.ack_paths --bootstrap 127.0.0.1:19092 --scenario small-1 --rounds 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bench import scenarios as sc
from bench.bridge_app import ACK_PATH_ENV, BODIES_FILE_ENV
from bench.broker import bench_broker
from bench.child import REPO_ROOT, LineChild
from bench.monitor import TreeMonitor
from bench.run import DEFAULT_BROKER_PORT
from bench.search import Criteria, Timing, search
from bench.servers import CREDENTIALS, Server, ServerSpec
from bench.targets import HttpTarget
from tests.support.kafka import create_topics
from tests.support.net import free_port

LINGER = "RELAY_KAFKA__LIBRDKAFKA__LINGER_MS"
REPORTS = "RELAY_KAFKA__DELIVERY_REPORTS"
# name -> (server kind, extra environment)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "floor thread (per-delivery hop)": ("bridge", {ACK_PATH_ENV: "thread"}),
    "floor thread, batched wake-ups": ("bridge", {ACK_PATH_ENV: "thread-batched"}),
    "floor loop (relay's)": ("bridge", {ACK_PATH_ENV: "loop"}),
    "floor spin": ("bridge", {ACK_PATH_ENV: "spin"}),
    "relay thread, linger 20": ("relay", {REPORTS: "thread", LINGER: "20"}),
    "relay loop, linger 20": ("relay", {REPORTS: "loop", LINGER: "20"}),
    "relay loop, linger 5": ("relay", {REPORTS: "loop", LINGER: "5"}),
    "relay loop, linger 1": ("relay", {REPORTS: "loop", LINGER: "1"}),
    "relay loop, linger 0": ("relay", {REPORTS: "loop", LINGER: "0"}),
    "Benthos": ("benthos", {}),
}


def measure(
    kind: str,
    spec: ServerSpec,
    extra: dict[str, str],
    bodies: Path,
    work: Path,
    start: float,
    light_rates: Sequence[float],
    timing: Timing,
    broker_pid: int | None,
) -> dict[str, Any]:
    env = {BODIES_FILE_ENV: str(bodies), **extra}
    server = Server(kind, spec, work / f"{kind}-{time.monotonic_ns()}.log", env)
    loadgen: LineChild | None = None
    monitor: TreeMonitor | None = None
    try:
        server.wait_ready()
        monitor = TreeMonitor(server.pid)
        monitor.start()
        loadgen = LineChild("bench.loadgen", spec.env(), work / "loadgen.log")
        loadgen.ask(
            {
                "host": "127.0.0.1",
                "port": spec.port,
                "path": "/webhooks/ultracart",
                "bodies_file": str(bodies),
                "username": CREDENTIALS[0],
                "password": CREDENTIALS[1],
                "connections": 32,
                "max_connections": 512,
            },
            timeout=30,
        )
        target = HttpTarget(loadgen, monitor, broker_pid, timing)
        light = {}
        for rate in light_rates:
            step = target.step(rate)
            light[f"{rate:g}"] = {
                "latency": step["latency"],
                "errors": step["requests"] - step["status"].get("200", 0),
                "server_cpu_us": round(step["cpu_cores"]["server"] / rate * 1e6),
                "other_cores": step["cpu_cores"]["other"],
            }
        found = search(target.step, start, Criteria(), timing)
        best = found.best or {}
        cpu = best.get("cpu_cores", {})
        workers = monitor.pids("worker") or monitor.pids("main")
        return {
            "max_rate": found.max_rate,
            # Peak over the whole run, overload steps of the search included.
            "peak_rss_mb": round(max(monitor.peak_rss(r) for r in ("main", "worker")) / 2**20, 1)
            if workers
            else None,
            "cpu_us_at_max": round(cpu["server"] / found.max_rate * 1e6) if cpu else None,
            "other_cores_at_max": cpu.get("other"),
            "light": light,
        }
    finally:
        if loadgen is not None:
            loadgen.stop()
        server.stop()
        if monitor is not None:
            monitor.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_paths", description=__doc__)
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--scenario", default="small-1", choices=sorted(sc.BY_NAME))
    parser.add_argument("--variants", default="", help="comma-separated subset (by index)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--light", default="250,1000", help="fixed rates for latency")
    parser.add_argument("--start", type=float, default=1000)
    parser.add_argument("--step-seconds", type=float, default=2.0)
    parser.add_argument("--name", default="ack-paths")
    args = parser.parse_args(argv)
    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    work = Path(tempfile.mkdtemp(prefix="relay-ackpaths-"))
    with bench_broker(args.bootstrap, DEFAULT_BROKER_PORT) as (bootstrap, broker_pid):
        prefix = f"ack{int(time.time())}."
        spec = ServerSpec(bootstrap, free_port(), free_port(), args.workers, prefix)
        create_topics(
            bootstrap,
            [prefix + "order_create", prefix + "dead_letter"],
            6,
            timeout=60,
            exist_ok=True,
        )
        scenario = sc.BY_NAME[args.scenario]
        bodies = work / "bodies"
        sc.write_bodies(bodies, sc.delivery_bodies(scenario))
        timing = Timing(warmup=0.5, duration=args.step_seconds, drain=5.0, refinements=3)
        light = [float(r) for r in args.light.split(",") if r]
        results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for round_ in range(args.rounds):
            for name in names:
                kind, extra = VARIANTS[name]
                print(f"round {round_ + 1}: {name}", file=sys.stderr, flush=True)
                results[name].append(
                    measure(
                        kind,
                        replace(spec),
                        extra,
                        bodies,
                        work,
                        args.start,
                        light,
                        timing,
                        broker_pid,
                    )
                )
        report = {"scenario": args.scenario, "workers": args.workers, "results": results}
        out = REPO_ROOT / "bench" / "results" / f"{args.name}.json"
        out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        text = markdown(report, light)
        out.with_suffix(".md").write_text(text)
        print(text)
    return 0


def markdown(report: dict[str, Any], light: Sequence[float]) -> str:
    head = "".join(f" p50 / p99 at {r:g}/s (ms) | CPU µs at {r:g}/s |" for r in light)
    lines = [
        f"# Ack paths and linger, {report['scenario']}, {report['workers']} workers",
        "",
        f"| variant | max deliv/s | CPU µs/delivery at max | peak RSS/process (MB) |{head}",
        "|---|--:|--:|--:|" + "--:|--:|" * len(light),
    ]
    for name, runs in report["results"].items():
        for run in runs:
            cells = ""
            for r in light:
                step = run["light"][f"{r:g}"]
                lat = step["latency"]
                cells += f" {lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} |"
                cells += f" {step['server_cpu_us']} |"
            lines.append(
                f"| {name} | {run['max_rate']:,.0f} | {run['cpu_us_at_max']} "
                f"| {run.get('peak_rss_mb')} |{cells}"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
