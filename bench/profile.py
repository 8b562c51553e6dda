"""``python -m bench.profile``: where a delivery's CPU goes, by component, under steady load.

One server (``--workers``, 1 by default) is loaded by wrk at a fixed number of connections
while py-spy samples the Python threads of its (first) worker and /proc counts the CPU of
every thread of every worker. Each sample goes to the component of the innermost frame
that one of ``COMPONENTS`` claims (the event loop when none does), and the main thread's
CPU per delivery is split by those shares; librdkafka's own threads, which py-spy does not
see, are their own row.

python -m bench.profile --bootstrap 127.0.0.1:19092 --party relay --seconds 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import procstat
from bench import scenarios as sc
from bench.bridge_app import BODIES_FILE_ENV
from bench.child import REPO_ROOT
from bench.closed_loop import party, run_wrk
from bench.monitor import role_of
from bench.servers import Server, ServerSpec
from tests.support.kafka import create_topics
from tests.support.net import free_port

# (component, path fragment, function or "" for any), tried in order on each frame from
# the innermost outwards; the first frame any rule claims decides the sample.
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("metrics (prometheus_client)", "prometheus_client/", ""),
    ("logging and log context", "logging/", ""),
    ("logging and log context", "relay/log_context.py", ""),
    ("authentication", "relay/intake/basic_auth.py", ""),
    ("authentication", "relay/intake/signature.py", ""),
    ("deadlines", "relay/deadlines.py", ""),
    ("reading the body", "relay/intake/body.py", "read_body"),
    ("media type and encoding checks", "relay/intake/body.py", ""),
    ("parsing", "relay/intake/parsing.py", ""),
    ("parsing", "relay/events/identity.py", ""),
    ("parsing", "msgspec", ""),
    ("building records", "relay/events/records.py", ""),
    ("building records", "relay/events/routing.py", ""),
    ("ack polling and delivery callbacks", "relay/kafka/delivery_reports.py", ""),
    ("ack polling and delivery callbacks", "bench/bridge_app.py", "on_delivery"),
    ("publish: admission, produce(), ack wait", "relay/kafka/publisher.py", ""),
    ("publish: admission, produce(), ack wait", "bench/bridge_app.py", "publish"),
    ("answer (Response, JSON)", "relay/intake/responses.py", ""),
    ("answer (Response, JSON)", "starlette/responses.py", ""),
    ("answer (Response, JSON)", "relay/intake/answers.py", ""),
    ("endpoint (relay/intake/endpoint.py itself)", "relay/intake/endpoint.py", ""),
    ("endpoint (relay/intake/endpoint.py itself)", "relay/intake/asgi.py", ""),
    ("Starlette (app, middleware, routing, Request)", "starlette/", ""),
    ("uvicorn and httptools (HTTP protocol)", "uvicorn/", ""),
    ("uvicorn and httptools (HTTP protocol)", "relay/serving/http_guard.py", ""),
    ("uvicorn and httptools (HTTP protocol)", "httptools", ""),
    ("event loop (asyncio, uvloop)", "asyncio/", ""),
    ("event loop (asyncio, uvloop)", "uvloop", ""),
)
_LOOP = "event loop (asyncio, uvloop)"


def component(stack: str) -> str:
    """The component of one collapsed py-spy stack (frames root first, ``;``-separated)."""
    frames = stack.split(";")
    for frame in reversed(frames):
        # "function (path:line)"
        function, _, where = frame.partition(" (")
        for name, fragment, wanted in COMPONENTS:
            if fragment in where and (not wanted or function.rpartition(".")[2] == wanted):
                return name
    return _LOOP


def thread_cpu(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds of the threads of ``pids`` by thread name (threads of one name summed;
    each process's main thread is "main")."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if task.name == str(pid):
                name = "main"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def serving_pids(root: int) -> list[int]:
    """The processes that serve requests: the workers under a supervisor, else ``root``."""
    workers = [p for p in procstat.descendants(root) if role_of(p, root) == "worker"]
    return workers or [root]


def profile(
    kind_name: str,
    spec: ServerSpec,
    bodies: Path,
    work: Path,
    connections: int,
    seconds: float,
    rate: int,
) -> dict[str, Any]:
    p = party(kind_name)
    env = {BODIES_FILE_ENV: str(bodies), **p.env}
    server = Server(p.kind, spec, work / f"{p.name}.log", env, root=p.root)
    try:
        server.wait_ready()
        run_wrk(spec.port, bodies, connections, 2.0, 1)  # warm-up
        raw = work / f"{p.name}.stacks"
        result: dict[str, Any] = {}

        def load() -> None:
            result.update(run_wrk(spec.port, bodies, connections, seconds + 2, 1))

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(1.0)
        # With several workers one is sampled (they serve alike: SO_REUSEPORT spreads the
        # connections) and the CPU of all of them is counted.
        pids = serving_pids(server.pid)
        before = thread_cpu(pids)
        started = time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--nonblocking",
                # Only samples holding the GIL: a thread waiting for it is not using the CPU.
                "--gil",
                "-r",
                str(rate),
                "-d",
                f"{seconds:g}",
                "-f",
                "raw",
                "-o",
                str(raw),
                "-p",
                str(pids[0]),
            ],
            check=True,
            capture_output=True,
        )
        wall = time.monotonic() - started
        after = thread_cpu(pids)
        loader.join()
    finally:
        server.stop()
    deliveries_per_s = result["requests"] / (result["duration_us"] / 1e6)
    deliveries = deliveries_per_s * wall
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples[component(stack)] += int(count)
    total = sum(samples.values())
    cpu = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    # librdkafka's threads are named rdk:*; the others run Python (the loop, a poll thread).
    main_us = sum(v for k, v in cpu.items() if not k.startswith("rdk:")) / deliveries * 1e6
    other_us = sum(v for k, v in cpu.items() if k.startswith("rdk:")) / deliveries * 1e6
    return {
        "party": p.name,
        "connections": connections,
        "deliveries_per_s": round(deliveries_per_s, 1),
        "errors": sum(result[k] for k in ("connect", "read", "write", "status", "timeout")),
        "main_thread_cpu_us": round(main_us, 1),
        "other_threads_cpu_us": round(other_us, 1),
        "threads": {k: round(v / deliveries * 1e6, 1) for k, v in sorted(cpu.items()) if v},
        "samples": total,
        "components": {
            name: {"share": round(n / total, 4), "us": round(n / total * main_us, 1)}
            for name, n in samples.most_common()
        },
    }


def markdown(results: list[dict[str, Any]]) -> str:
    names: list[str] = []
    for r in results:
        names += [n for n in r["components"] if n not in names]
    head = " | ".join(r["party"] for r in results)
    lines = [
        "| component (µs of CPU per delivery) | " + head + " |",
        "|---|" + "--:|" * len(results),
    ]
    for name in names:
        cells = " | ".join(
            f"{r['components'][name]['us']:.1f}" if name in r["components"] else "—"
            for r in results
        )
        lines.append(f"| {name} | {cells} |")
    lines.append(
        "| **Python threads, total** | "
        + " | ".join(f"**{r['main_thread_cpu_us']:.1f}**" for r in results)
        + " |"
    )
    lines.append(
        "| librdkafka's threads (not sampled) | "
        + " | ".join(f"{r['other_threads_cpu_us']:.1f}" for r in results)
        + " |"
    )
    lines.append(
        "| deliveries/s while sampled | "
        + " | ".join(f"{r['deliveries_per_s']:,.0f}" for r in results)
        + " |"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--parties", default="relay", help="as bench.closed_loop's")
    parser.add_argument("--scenario", default="small-1", choices=sorted(sc.BY_NAME))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--name", default="profile")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="relay-profile-"))
    prefix = f"pf{int(time.time())}."
    spec = ServerSpec(args.bootstrap, free_port(), free_port(), args.workers, prefix)
    create_topics(
        args.bootstrap,
        [prefix + "order_create", prefix + "unknown", prefix + "dead_letter"],
        6,
        timeout=60,
        exist_ok=True,
    )
    bodies = work / "bodies"
    sc.write_bodies(bodies, sc.delivery_bodies(sc.BY_NAME[args.scenario]))
    results = []
    for name in args.parties.split(","):
        print(f"profiling {name}", file=sys.stderr, flush=True)
        results.append(profile(name, spec, bodies, work, args.connections, args.seconds, args.rate))
    report = {"scenario": args.scenario, "load_average": os.getloadavg(), "results": results}
    out = REPO_ROOT / "bench" / "results" / f"{args.name}.json"
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    text = markdown(results)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
