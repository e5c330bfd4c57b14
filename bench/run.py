"""Run the bench: each scenario against each server, in one invocation.

python -m bench.run [--scenarios fanout,saturation,storm,idle,slow,overload,overload-past,
                                 joinstorm,fanout-ws]
                    [--servers trio,node,pysio] [--quick] [--out bench/results] [parameters]

Prints a Markdown table, writes ``<out>/<timestamp>.json``, ``<out>/latest.json`` and
``<out>/latency-<timestamp>.png``. Exits 1 when a scenario failed on a server (the table and
the JSON say which and why). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.procs import DEFAULT_SERVERS, ROOT, SERVER_NAMES, BenchError, node_deps_installed
from bench.scenarios import ALL_SCENARIOS, JOINT_SCENARIOS, SCENARIOS, Config

QUICK = {
    "clients": 100,
    "duration": 2.0,
    "saturation_clients": 100,
    "saturation_rates": [20, 100, 400],
    "step_duration": 1.0,
    "storm_clients": 200,
    "join_clients": 200,
    "idle_levels": [500, 1000],
    "slow_clients": 100,
    "slow_stalled": 10,
    "slow_duration": 3.0,
    "overload_clients": 100,
    "overload_rate": 100.0,
    "overload_past_rate": 200.0,
    "overload_duration": 2.0,
    "overload_grace": 1.0,
    "overload_repeat": 1,
    "joinstorm_clients": 200,
}


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, Config]:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="comma-separated")
    p.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, from {','.join(SERVER_NAMES)} (trio1: ours on one port with an "
        "HTTP app beside the hub, as python -m server runs)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, short runs (a smoke test)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--client-procs", type=int, help="receiving client processes (default 2)")
    p.add_argument("--clients", type=int, help="fan-out room size (default 1000)")
    p.add_argument("--rate", type=float, help="fan-out sender msg/s (default 20)")
    p.add_argument("--duration", type=float, help="fan-out seconds (default 10)")
    p.add_argument("--payload", type=int, help="padding bytes per message (default 100)")
    p.add_argument("--saturation-clients", type=int, help="default 1000")
    p.add_argument("--saturation-rates", type=floats, help="msg/s steps, comma-separated")
    p.add_argument("--step-duration", type=float, help="seconds per saturation step (default 4)")
    p.add_argument("--p99-limit-ms", type=float, help="default 100")
    p.add_argument("--storm-clients", type=int, help="default 1000")
    p.add_argument("--storm-inflight", type=int, help="handshakes in flight (default 200)")
    p.add_argument("--join-clients", type=int, help="default 1000")
    p.add_argument("--idle-levels", type=ints, help="default 5000,10000")
    p.add_argument("--slow-clients", type=int, help="default 1000")
    p.add_argument("--slow-stalled", type=int, help="default 100")
    p.add_argument("--slow-rate", type=float, help="default 20")
    p.add_argument("--slow-payload", type=int, help="default 1024")
    p.add_argument("--slow-duration", type=float, help="default 20")
    p.add_argument("--overload-clients", type=int, help="default 1000")
    p.add_argument("--overload-rate", type=float, help="sender msg/s (default 200)")
    p.add_argument(
        "--overload-past-rate", type=float, help="overload-past's sender msg/s (default 500)"
    )
    p.add_argument("--overload-duration", type=float, help="seconds of sending (default 10)")
    p.add_argument(
        "--overload-grace",
        type=float,
        help="deliveries count until this many s after the last send (default 3)",
    )
    p.add_argument(
        "--overload-repeat", type=int, help="runs per server, interleaved (default 3; quick 1)"
    )
    p.add_argument(
        "--overload-client",
        choices=("ws", "ours"),
        help="receiving clients: Node's ws package (default) or bench/clients.py",
    )
    p.add_argument("--joinstorm-clients", type=int, help="default 2000")
    p.add_argument("--joinstorm-timeout", type=float, help="seconds (default 180)")
    args = p.parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    values["quick"] = args.quick
    for name in asdict(Config()):
        given = getattr(args, name, None)
        if given is not None and name != "quick":
            values[name] = given
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.scenarios:
        if s not in ALL_SCENARIOS:
            p.error(f"unknown scenario {s!r}; known: {', '.join(ALL_SCENARIOS)}")
    for s in args.servers:
        if s not in SERVER_NAMES:
            p.error(f"unknown server {s!r}; known: {', '.join(SERVER_NAMES)}")
    return args, Config(**values)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, cfg = parse_args(argv)
    needs = ["socket.io"] if "node" in args.servers else []
    needs += ["ws"] if "fanout-ws" in args.scenarios else []
    if needs and not node_deps_installed(*needs):
        print("Node dependencies missing: run `make bench` (npm ci in bench/node)", file=sys.stderr)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {
        "schema": 1,
        "timestamp": stamp,
        "command": shlex.join(["python", "-m", "bench.run", *argv]),
        "machine": report.machine_info(),
        "config": asdict(cfg),
        "servers": args.servers,
        "scenarios": {},
    }
    failed = False
    started = time.monotonic()
    for scenario in args.scenarios:
        results: dict[str, Any] = {}
        doc["scenarios"][scenario] = results
        if scenario in JOINT_SCENARIOS:
            t0 = time.monotonic()
            print(f"[{scenario} / {', '.join(args.servers)}] ...", file=sys.stderr, flush=True)
            results.update(JOINT_SCENARIOS[scenario](args.servers, cfg))
            for result in results.values():
                failed = failed or "error" in result or bool(result.get("failed_runs"))
                result["elapsed_s"] = round(time.monotonic() - t0, 1)
            continue
        for server in args.servers:
            t0 = time.monotonic()
            print(f"[{scenario} / {server}] ...", file=sys.stderr, flush=True)
            try:
                results[server] = SCENARIOS[scenario](server, cfg)
            except (BenchError, RuntimeError, OSError) as exc:
                failed = True
                traceback.print_exc()
                results[server] = {"error": f"{type(exc).__name__}: {exc}"}
            results[server]["elapsed_s"] = round(time.monotonic() - t0, 1)
            results[server]["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    doc["machine"]["loadavg_at_end"] = list(os.getloadavg())

    text = report.table(doc)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    encoded = json.dumps(_clean(doc), indent=1, allow_nan=False)
    (args.out / f"{stamp}.json").write_text(encoded)
    (args.out / "latest.json").write_text(encoded)
    png = args.out / f"latency-{stamp}.png"
    if report.plot(doc, png):
        print(f"\nplot: {png}", file=sys.stderr)
    print(f"json: {args.out / f'{stamp}.json'} (and latest.json)", file=sys.stderr)
    return 1 if failed else 0


def _clean(value: Any) -> Any:
    """NaN (a percentile of nothing) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
