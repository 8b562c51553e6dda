"""``python -m bench``: run the benchmark and write bench/results/report.{json,md}.

python -m bench                  every scenario, full search (~40 min on 2 cores)
python -m bench --smoke          two scenarios, a few one-second steps (well under 2 min)
python -m bench --soak 600       also run relay for 10 min at half its max, RSS each second
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import orjson

from bench import report as rp
from bench import scenarios as sc
from bench.child import REPO_ROOT
from bench.run import DEFAULT_BROKER_PORT, Options, Run
from bench.search import Criteria, Timing

SMOKE_SCENARIOS = ("small-1", "order-10")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="short run that checks the harness")
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also run relay this long at half its max rate, sampling RSS",
    )
    parser.add_argument("--soak-scenario", default="order-10", choices=sorted(sc.BY_NAME))
    parser.add_argument(
        "--scenarios", default="", help=f"comma-separated subset of {', '.join(sc.BY_NAME)}"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="relay (and bare app) worker processes; raw producers likewise",
    )
    parser.add_argument(
        "--bootstrap",
        default="",
        help="use this Kafka instead of starting one (nothing is stopped)",
    )
    parser.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--p99-limit-ms", type=float, default=100.0)
    parser.add_argument("--step-seconds", type=float, default=None)
    parser.add_argument("--half-rate-seconds", type=float, default=None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--name", default="", help="report file name (default: report or smoke)")
    parser.add_argument("--keep-work", action="store_true", help="keep logs and bodies")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RELAY_VAR=VALUE",
        help="extra relay setting for every party, e.g. "
        "RELAY_KAFKA__LIBRDKAFKA__COMPRESSION_TYPE=zstd (repeatable)",
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    names = [n for n in args.scenarios.split(",") if n] or (
        list(SMOKE_SCENARIOS) if args.smoke else list(sc.BY_NAME)
    )
    unknown = [n for n in names if n not in sc.BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    if args.smoke:
        timing = Timing(
            warmup=0.5, duration=args.step_seconds or 1.0, drain=5.0, doublings=1, refinements=0
        )
        half = args.half_rate_seconds or 1.0
    else:
        timing = Timing(duration=args.step_seconds or 4.0)
        half = args.half_rate_seconds or 10.0
    overrides = []
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("RELAY_"):
            raise SystemExit(f"--set wants RELAY_NAME=value, got {item!r}")
        overrides.append((name, value))
    return Options(
        scenarios=tuple(sc.BY_NAME[n] for n in names),
        overrides=tuple(overrides),
        workers=args.workers,
        out_dir=args.out,
        bootstrap=args.bootstrap or None,
        broker_port=args.broker_port,
        partitions=args.partitions,
        criteria=Criteria(p99_limit_ms=args.p99_limit_ms),
        timing=timing,
        half_rate_seconds=half,
        soak_seconds=args.soak,
        soak_scenario=args.soak_scenario,
        smoke=args.smoke,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"bench {time.monotonic() - started:6.1f}s  {message}", file=sys.stderr, flush=True)

    # A terminated run must still stop the broker and servers it started: SIGTERM unwinds
    # through the same ``finally`` blocks as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    run = Run(options, progress)
    try:
        outcome = run.execute()
    except BaseException:
        progress(f"failed; logs kept in {run.work}")
        raise
    report = {
        "machine": rp.machine(),
        "settings": {
            "smoke": options.smoke,
            "workers": options.workers,
            "partitions": options.partitions,
            "p99_limit_ms": options.criteria.p99_limit_ms,
            "step_seconds": options.timing.duration,
            "timing": asdict(options.timing),
            "half_rate_seconds": options.half_rate_seconds,
            "generator_connections": [options.connections, options.max_connections],
            "overrides": dict(options.overrides),
        },
        "scenarios": outcome["scenarios"],
        "soak": outcome["soak"],
        "seconds": round(time.monotonic() - started, 1),
    }
    for scenario in report["scenarios"]:
        scenario["analysis"] = rp.analyse(scenario)
    report["targets"] = rp.targets(report)
    name = args.name or ("smoke" if options.smoke else "report")
    options.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = options.out_dir / f"{name}.json"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    text = rp.markdown(report)
    (options.out_dir / f"{name}.md").write_text(text)
    print(text)
    progress(f"wrote {json_path} and {json_path.with_suffix('.md')}")
    if args.keep_work:
        progress(f"logs kept in {run.work}")
    else:
        run.cleanup()
    return 0


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
