"""Fan-out on two processes with Redis: ours (two hubs linked by the bridge) and Node Socket.IO
(two processes on ``@socket.io/redis-adapter``), in one run, on one ``redis-server``.

    python -m bench.cluster [--clients 1000] [--rate 20] [--duration 10] [--payload 100]

The room's clients are split evenly over the two processes; the sender is a client of the
first one (not in the room), so half of every broadcast crosses Redis. Prints a Markdown table
and writes ``bench/results/cluster-<timestamp>.json``. The Node peer uses the npm packages of
``tests/node_redis`` (``make install``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

from bench import procs
from bench.procs import HOST, Server, Workers, free_port, node_executable, split
from bench.scenarios import Config, connect, join, measure, require

ROOT = Path(__file__).resolve().parents[1]
NODE_REDIS = ROOT / "tests" / "node_redis"
PEERS = {"ours": "trio-cluster", "node": "node-cluster"}

_plain_command = procs.server_command


def _command(name: str, port: int) -> list[str]:
    kind, _, redis_url = name.partition("@")
    if kind == "trio-cluster":
        module = "bench.servers.trio_cluster"
        return [
            sys.executable,
            "-m",
            module,
            "--host",
            HOST,
            "--port",
            str(port),
            "--redis",
            redis_url,
        ]
    if kind == "node-cluster":
        if not (NODE_REDIS / "node_modules" / "@socket.io" / "redis-adapter").is_dir():
            raise procs.BenchError("run `make install` (npm ci in tests/node_redis)")
        script = str(NODE_REDIS / "cluster_server.mjs")
        return [
            node_executable(),
            script,
            "--host",
            HOST,
            "--port",
            str(port),
            "--redis",
            redis_url,
        ]
    return _plain_command(name, port)


procs.server_command = _command


class Both:
    """Two servers, or two groups of client workers, seen as one by ``bench.scenarios``."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    @property
    def n(self) -> int:
        return sum(p.n for p in self.parts)

    def call(self, name: str, kwargs_list: list[dict[str, Any]], timeout: float) -> list[Any]:
        replies: list[Any] = []
        start = 0
        for part in self.parts:
            replies += part.call(name, kwargs_list[start : start + part.n], timeout)
            start += part.n
        return replies

    def call_all(self, name: str, timeout: float = 60.0, **kwargs: Any) -> list[Any]:
        return self.call(name, [kwargs] * self.n, timeout)

    def cpu(self) -> float:
        return float(sum(p.cpu() for p in self.parts))

    def rss(self) -> int:
        return int(sum(p.rss() for p in self.parts))


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise procs.BenchError("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            psutil.Process(proc.pid)
            import socket

            with socket.create_connection((HOST, port), timeout=0.5):
                return proc, f"redis://{HOST}:{port}/0"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise procs.BenchError("redis-server did not start") from None
            time.sleep(0.05)


def fanout_on_two(kind: str, redis_url: str, redis: psutil.Process, cfg: Config) -> dict[str, Any]:
    name = f"{kind}@{redis_url}"
    per_server = max(1, cfg.client_procs // 2)
    with ExitStack() as stack:
        first = stack.enter_context(Server(name))
        second = stack.enter_context(Server(name))
        rx = Both(
            stack.enter_context(Workers(per_server, first.port)),
            stack.enter_context(Workers(per_server, second.port)),
        )
        tx = stack.enter_context(Workers(1, first.port))
        halves = split(cfg.clients, 2)
        for group, count, prefix in zip(rx.parts, halves, ("a", "b"), strict=True):
            require(connect(group, count, prefix)["ready"], count, "clients connected")
        require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
        require(join(rx)["acked"], cfg.clients, "joins acked")
        time.sleep(0.5)  # let the room memberships settle on every node
        redis_cpu0 = sum(redis.cpu_times()[:2])
        servers = Both(first, second)
        result = measure(cfg, servers, rx, tx, cfg.rate, cfg.duration, cfg.payload, False)  # type: ignore[arg-type]
        result["redis_cpu_s"] = round(sum(redis.cpu_times()[:2]) - redis_cpu0, 3)
        result["clients_per_process"] = halves
        result["banner"] = first.banner
        return result


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("clients (split over 2 processes)", lambda r: r["receivers"]),
        ("messages sent", lambda r: r["sent"]),
        ("deliveries expected", lambda r: r["expected"]),
        ("deliveries received", lambda r: r["received"]),
        ("deliveries per second", lambda r: r["deliveries_per_s"]),
        ("latency p50 (ms)", lambda r: round(r["latency_ms"]["p50"], 1)),
        ("latency p90 (ms)", lambda r: round(r["latency_ms"]["p90"], 1)),
        ("latency p99 (ms)", lambda r: round(r["latency_ms"]["p99"], 1)),
        ("latency max (ms)", lambda r: round(r["latency_ms"]["max"], 1)),
        ("server CPU, both processes (% of a core)", lambda r: r["cpu"]["server_pct_of_core"]),
        ("server CPU per delivery (µs)", lambda r: r["cpu"]["server_us_per_delivery"]),
        ("redis-server CPU (s)", lambda r: r["redis_cpu_s"]),
        ("server RSS, both processes (MB)", lambda r: r["server_rss_mb"]),
    ]
    names = list(results)
    out = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, get in rows:
        cells = []
        for n in names:
            r = results[n]
            cells.append(str(r["error"]) if "error" in r else str(get(r)))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--servers", default="ours,node", help="ours,node")
    parser.add_argument("--quick", action="store_true", help="100 clients for 2 s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    cfg = Config(
        client_procs=args.client_procs,
        clients=100 if args.quick else args.clients,
        rate=args.rate,
        duration=2.0 if args.quick else args.duration,
        payload=args.payload,
        quick=args.quick,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    failed = False
    redis_proc, redis_url = start_redis(args.out)
    try:
        redis = psutil.Process(redis_proc.pid)
        for label in args.servers.split(","):
            try:
                results[label] = fanout_on_two(PEERS[label], redis_url, redis, cfg)
            except Exception as exc:  # a failed peer is reported in its column
                failed = True
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        redis_proc.kill()
        redis_proc.wait()
    load = ", ".join(f"{x:.2f}" for x in psutil.getloadavg())
    print(
        f"Fan-out on two processes with Redis: {cfg.clients} clients, {cfg.rate:g} msg/s, "
        f"{cfg.duration:g} s, {cfg.payload} B payload; {psutil.cpu_count()} cores, "
        f"load {load}\n"
    )
    print(table(results))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"cluster-{stamp}.json"
    path.write_text(json.dumps({"config": vars(cfg), "results": results}, indent=2, default=str))
    print(f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
