"""``python -m bench.closed_loop``: parties side by side under wrk, at several connection counts.

A cross-check of the benchmark and a quick A/B tool. wrk (a C load generator no one here
wrote; Debian package ``wrk``) keeps N keep-alive connections busy, one request at a time
each, for a fixed time: closed loop, so it finds what a party serves at N connections and
the latency at that load, with the generator's own CPU measured apart (wrk is a child of
this process). The parties take turns, round after round, so that load from elsewhere on
the shared machine falls on all of them alike; every row carries the load average and the
cores that processes outside the benchmark used meanwhile.

With ``--loadgen`` each party also gets bench.loadgen's search (the open-loop generator of
``make bench``, pool capped at the same connections), so its maximum and its CPU per
request can be read next to wrk's on the same server in the same minute.

Parties (``--parties``, comma-separated): bare, floor, relay, benthos; floor-loop and
relay-loop (``kafka.delivery_reports = "loop"``, where the others use the default poll
thread); and ``<label>=<dir>``: relay as checked out in <dir> (a ``git archive`` of another
commit, for before/after in one run), polling on the loop if the label ends in -loop, with
settings after it if given (``small=.+RELAY_INTAKE__MAX_INFLIGHT_BYTES=33554432``).

python -m bench.closed_loop --bootstrap 127.0.0.1:19092 --parties bare,relay --connections 4,32,128
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import procstat
from bench import scenarios as sc
from bench.bridge_app import ACK_PATH_ENV, BODIES_FILE_ENV
from bench.broker import bench_broker
from bench.child import REPO_ROOT, LineChild
from bench.monitor import TreeMonitor
from bench.run import DEFAULT_BROKER_PORT
from bench.search import Criteria, Timing, search
from bench.servers import CREDENTIALS, Server, ServerSpec
from bench.targets import CpuWindow, HttpTarget
from tests.support.kafka import create_topics
from tests.support.net import free_port

REPORTS = "RELAY_KAFKA__DELIVERY_REPORTS"
PATH = "/webhooks/ultracart"

# Each request from the pool of bodies in turn, with relay's Basic header, as bench.loadgen.
_WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES_FILE")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local headers = {
  ["Authorization"] = os.getenv("BENCH_AUTHORIZATION"),
  ["Content-Type"] = "application/json",
}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", os.getenv("BENCH_PATH"), headers, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Party:
    name: str
    kind: str  # a bench.servers kind: relay, bare, bridge, benthos
    env: dict[str, str] = field(default_factory=dict)
    # Where relay's code comes from (the server runs with this as its working directory).
    root: Path = REPO_ROOT


def party(text: str) -> Party:
    name, _, where = text.partition("=")
    parties = {
        "bare": Party("bare", "bare"),
        "floor": Party("floor", "bridge", {ACK_PATH_ENV: "thread"}),
        "floor-loop": Party("floor-loop", "bridge", {ACK_PATH_ENV: "loop"}),
        "relay": Party("relay", "relay", {REPORTS: "thread"}),
        "relay-loop": Party("relay-loop", "relay", {REPORTS: "loop"}),
        "benthos": Party("benthos", "benthos"),
    }
    if where:
        # relay from another checkout, under any label; a label ending in -loop polls on
        # the event loop. Settings may follow the directory as +RELAY_X=value, so that two
        # values of one limit take turns in the same run.
        where, *settings = where.split("+")
        reports = "loop" if name.endswith("-loop") else "thread"
        env = {REPORTS: reports, **dict(item.split("=", 1) for item in settings)}
        return Party(name, "relay", env, Path(where).resolve())
    if name not in parties:
        raise SystemExit(f"unknown party {text!r}; one of {', '.join(parties)}, <label>=<dir>")
    return parties[name]


def run_wrk(
    port: int, bodies: Path, connections: int, seconds: float, threads: int
) -> dict[str, Any]:
    """One wrk run; its result line and its own CPU (user + system) in seconds."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(_WRK_SCRIPT)
    token = base64.b64encode(f"{CREDENTIALS[0]}:{CREDENTIALS[1]}".encode()).decode()
    env = {
        **os.environ,
        "BENCH_BODIES_FILE": str(bodies),
        "BENCH_AUTHORIZATION": f"Basic {token}",
        "BENCH_PATH": PATH,
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}{PATH}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        script.unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = orjson.loads(line.removeprefix("RESULT "))
    result["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def measure(
    p: Party,
    spec: ServerSpec,
    bodies: Path,
    work: Path,
    connections: Sequence[int],
    seconds: float,
    threads: int,
    broker_pid: int | None,
    loadgen_at: int | None,
) -> dict[str, Any]:
    env = {BODIES_FILE_ENV: str(bodies), **p.env}
    server = Server(p.kind, spec, work / f"{p.name}-{time.monotonic_ns()}.log", env, root=p.root)
    monitor: TreeMonitor | None = None
    try:
        server.wait_ready()
        monitor = TreeMonitor(server.pid)
        monitor.start()
        # A short warm-up: the first requests pay for imports, connections and caches.
        run_wrk(spec.port, bodies, min(connections), 1.0, threads)
        rows = {}
        for count in connections:
            window = CpuWindow(monitor, broker_pid)
            load = procstat.load_average()
            window.open()
            result = run_wrk(spec.port, bodies, count, seconds, threads)
            cores = window.close(result["cpu_seconds"])
            wall = result["duration_us"] / 1e6
            done = result["requests"]
            errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
            rows[str(count)] = {
                "rate": round(done / wall, 1),
                # Answers other than 2xx/3xx (here the 503s of admission) are in rate too.
                "ok_rate": round((done - result["status"]) / wall, 1),
                "p50_ms": result["p50_us"] / 1000,
                "p99_ms": result["p99_us"] / 1000,
                "errors": errors,
                "server_cpu_us": round(cores["server"] * wall / done * 1e6) if done else None,
                "generator_cpu_us": round(result["cpu_seconds"] / done * 1e6) if done else None,
                "cores": cores,
                "load_average": load,
            }
        found = None
        if loadgen_at is not None:
            found = _loadgen_search(spec, bodies, work, monitor, broker_pid, loadgen_at)
        return {
            "wrk": rows,
            "loadgen": found,
            "peak_rss_mb": round(max(monitor.peak_rss(r) for r in ("main", "worker")) / 2**20, 1),
        }
    finally:
        server.stop()
        if monitor is not None:
            monitor.stop()


def _loadgen_search(
    spec: ServerSpec,
    bodies: Path,
    work: Path,
    monitor: TreeMonitor,
    broker_pid: int | None,
    connections: int,
) -> dict[str, Any]:
    loadgen = LineChild("bench.loadgen", spec.env(), work / "loadgen.log")
    try:
        loadgen.ask(
            {
                "host": "127.0.0.1",
                "port": spec.port,
                "path": PATH,
                "bodies_file": str(bodies),
                "username": CREDENTIALS[0],
                "password": CREDENTIALS[1],
                "connections": connections,
                "max_connections": connections,
            },
            timeout=30,
        )
        timing = Timing(warmup=0.5, duration=2.0, drain=5.0, refinements=3)
        target = HttpTarget(loadgen, monitor, broker_pid, timing)
        found = search(target.step, 1000.0, Criteria(), timing)
    finally:
        loadgen.stop()
    best = found.best or {}
    cores = best.get("cpu_cores", {})
    answered = best.get("answered") or 0
    wall = best.get("window_seconds") or 0
    return {
        "connections": connections,
        "max_rate": found.max_rate,
        "p50_ms": best.get("latency", {}).get("p50"),
        "p99_ms": best.get("latency", {}).get("p99"),
        "server_cpu_us": round(cores["server"] / found.max_rate * 1e6) if cores else None,
        "generator_cpu_us": (
            round(best["generator_cpu_seconds"] / answered * 1e6) if answered else None
        ),
        "window_seconds": wall,
        "cores": cores,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Closed loop (wrk), {report['scenario']}, {report['workers']} workers, "
        f"{report['seconds']:g} s per run",
        "",
        "| round | party | connections | answers/s | 2xx/s | p50 / p99 (ms) | errors "
        "| server CPU µs/deliv | wrk CPU µs/req | other cores | load avg | peak RSS (MB) |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in report["runs"]:
        for count, row in run["wrk"].items():
            lines.append(
                f"| {run['round']} | {run['party']} | {count} | {row['rate']:,.0f} "
                f"| {row.get('ok_rate', row['rate']):,.0f} "
                f"| {row['p50_ms']:.1f} / {row['p99_ms']:.1f} | {row['errors']} "
                f"| {row['server_cpu_us']} | {row['generator_cpu_us']} "
                f"| {row['cores']['other']:.2f} | {row['load_average']:.1f} "
                # Peak over the party's whole run (every connection count), the largest
                # of its processes: the same figure on each of its rows.
                f"| {run['peak_rss_mb']} |"
            )
    found = [r for r in report["runs"] if r.get("loadgen")]
    if found:
        lines += [
            "",
            "bench.loadgen's search on the same servers (open loop, pool capped at the "
            "connections shown):",
            "",
            "| round | party | connections | max deliv/s | p50 / p99 at max (ms) "
            "| server CPU µs/deliv | loadgen CPU µs/req | other cores |",
            "|--:|---|--:|--:|--:|--:|--:|--:|",
        ]
        for run in found:
            g = run["loadgen"]
            lines.append(
                f"| {run['round']} | {run['party']} | {g['connections']} | {g['max_rate']:,.0f} "
                f"| {g['p50_ms'] or 0:.1f} / {g['p99_ms'] or 0:.1f} | {g['server_cpu_us']} "
                f"| {g['generator_cpu_us']} | {g['cores'].get('other', 0):.2f} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.closed_loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bootstrap", default="", help="an existing Kafka (else one is started)")
    parser.add_argument("--scenario", default="small-1", choices=sorted(sc.BY_NAME))
    parser.add_argument("--parties", default="bare,floor,relay,benthos")
    parser.add_argument("--connections", default="4,32,128")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--loadgen", type=int, default=None, metavar="CONNECTIONS")
    parser.add_argument("--name", default="closed-loop")
    args = parser.parse_args(argv)
    parties = [party(p) for p in args.parties.split(",") if p]
    connections = [int(c) for c in args.connections.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="relay-closed-loop-"))
    with bench_broker(args.bootstrap, DEFAULT_BROKER_PORT) as (bootstrap, broker_pid):
        prefix = f"cl{int(time.time())}."
        spec = ServerSpec(bootstrap, free_port(), free_port(), args.workers, prefix)
        create_topics(
            bootstrap,
            [prefix + "order_create", prefix + "unknown", prefix + "dead_letter"],
            6,
            timeout=60,
            exist_ok=True,
        )
        scenario = sc.BY_NAME[args.scenario]
        bodies = work / "bodies"
        sc.write_bodies(bodies, sc.delivery_bodies(scenario))
        runs = []
        for round_ in range(1, args.rounds + 1):
            for p in parties:
                print(f"round {round_}: {p.name}", file=sys.stderr, flush=True)
                measured = measure(
                    p,
                    spec,
                    bodies,
                    work,
                    connections,
                    args.seconds,
                    args.threads,
                    broker_pid,
                    args.loadgen,
                )
                runs.append({"round": round_, "party": p.name, **measured})
        report = {
            "scenario": args.scenario,
            "workers": args.workers,
            "seconds": args.seconds,
            "cpus": os.cpu_count(),
            "runs": runs,
        }
        out = REPO_ROOT / "bench" / "results" / f"{args.name}.json"
        out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        text = markdown(report)
        out.with_suffix(".md").write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
