"""Fan-out on two processes with Redis: ours (two hubs linked by the bridge) and Node Socket.IO
(two processes on a Redis adapter), each in both adapter formats, in one run.

    python -m bench.cluster [--servers ours-pubsub,ours-streams,node-pubsub,node-streams]
                            [--clients 1000] [--rate 20] [--duration 10] [--payload 100]

The four peers: ours in ``pubsub`` mode (the format of ``@socket.io/redis-adapter``) and in
``streams`` mode (that of ``@socket.io/redis-streams-adapter``, one Redis stream, with
connection state recovery on), and Node on each of those two adapters. Each peer runs on a
``redis-server`` of its own, started fresh for it, so that no stream entry, session or
subscription of one peer is there for the next.

The room's clients are split evenly over the two processes; the sender is a client of the
first one (not in the room), so half of every broadcast crosses Redis. The latency is also
given apart for the receivers on the sender's process ("local") and on the other one ("across
Redis"): the streams modes differ mostly in one of them (ours delivers to its own clients
without waiting for Redis, Node's streams adapter awaits its XADD first). Prints a Markdown
table and ratios, and writes ``bench/results/cluster-<timestamp>.json``. The Node peer uses
the npm packages of ``tests/node_redis`` (``make install``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import procs
from bench.procs import HOST, Server, Workers, free_port, node_executable, split
from bench.scenarios import Config, connect, join, measure, require

ROOT = Path(__file__).resolve().parents[1]
NODE_REDIS = ROOT / "tests" / "node_redis"
#: the worker groups of ``measure``: the sender's own process first, then the other one
GROUPS = ("local", "across")


@dataclass(frozen=True)
class Peer:
    """One column of the table: whose server, on which of the two adapter formats."""

    label: str
    server: str  # "ours" or "node"
    adapter: str  # "pubsub" or "streams"

    def command(self, port: int, redis_url: str) -> list[str]:
        common = ["--host", HOST, "--port", str(port), "--redis", redis_url]
        common += ["--adapter", self.adapter]
        if self.server == "ours":
            return [sys.executable, "-m", "bench.servers.trio_cluster", *common]
        package = "redis-streams-adapter" if self.adapter == "streams" else "redis-adapter"
        if not (NODE_REDIS / "node_modules" / "@socket.io" / package).is_dir():
            raise procs.BenchError(
                f"@socket.io/{package} is missing: run `make install` (npm ci in {NODE_REDIS})"
            )
        return [node_executable(), str(NODE_REDIS / "cluster_server.mjs"), *common]


PEERS = {
    p.label: p
    for p in (
        Peer("ours-pubsub", "ours", "pubsub"),
        Peer("ours-streams", "ours", "streams"),
        Peer("node-pubsub", "node", "pubsub"),
        Peer("node-streams", "node", "streams"),
    )
}


def _server_name(peer: Peer, redis_url: str) -> str:
    return f"{peer.label}@{redis_url}"


def _command(name: str, port: int, plain: Callable[[str, int], list[str]]) -> list[str]:
    label, _, redis_url = name.partition("@")
    peer = PEERS.get(label)
    if peer is None or not redis_url:
        return plain(name, port)
    return peer.command(port, redis_url)


@contextmanager
def cluster_commands() -> Iterator[None]:
    """Let ``procs.Server`` start the peers' processes, for as long as the block runs.

    ``procs.Server`` builds its command from its name with ``procs.server_command``; a peer's
    name is ``<label>@<redis url>``. Any other name still gets the plain servers' command.
    """
    plain = procs.server_command
    procs.server_command = lambda name, port: _command(name, port, plain)
    try:
        yield
    finally:
        procs.server_command = plain


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


@contextmanager
def redis_server() -> Iterator[tuple[psutil.Process, str]]:
    """A fresh ``redis-server`` on a free loopback port, without persistence; killed after."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise procs.BenchError("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        proc = subprocess.Popen(
            [exe, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", workdir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection((HOST, port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise procs.BenchError("redis-server did not start") from None
                    time.sleep(0.05)
            yield psutil.Process(proc.pid), f"redis://{HOST}:{port}/0"
        finally:
            proc.kill()
            proc.wait()


def fanout_on_two(peer: Peer, cfg: Config) -> dict[str, Any]:
    per_server = max(1, cfg.client_procs // 2)
    with ExitStack() as stack:
        redis, redis_url = stack.enter_context(redis_server())
        name = _server_name(peer, redis_url)
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
        groups = [(label, part.n) for label, part in zip(GROUPS, rx.parts, strict=True)]
        result = measure(
            cfg,
            servers,  # type: ignore[arg-type]
            rx,  # type: ignore[arg-type]
            tx,
            cfg.rate,
            cfg.duration,
            cfg.payload,
            keep_cdf=False,
            groups=groups,
        )
        result["redis_cpu_s"] = round(sum(redis.cpu_times()[:2]) - redis_cpu0, 3)
        result["clients_per_process"] = halves
        result["adapter"] = peer.adapter
        result["banner"] = first.banner
        return result


def _by_group(r: dict[str, Any], group: str) -> str:
    g = r["latency_by_group_ms"][group]
    return f"{g['p50']:.1f} / {g['p99']:.1f}"


ROWS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("clients (split over 2 processes)", lambda r: r["receivers"]),
    ("messages sent", lambda r: r["sent"]),
    ("deliveries expected", lambda r: r["expected"]),
    ("deliveries received", lambda r: r["received"]),
    ("deliveries per second", lambda r: r["deliveries_per_s"]),
    ("latency p50 (ms)", lambda r: round(r["latency_ms"]["p50"], 1)),
    ("latency p90 (ms)", lambda r: round(r["latency_ms"]["p90"], 1)),
    ("latency p99 (ms)", lambda r: round(r["latency_ms"]["p99"], 1)),
    ("latency max (ms)", lambda r: round(r["latency_ms"]["max"], 1)),
    ("latency p50 / p99, local: sender's process (ms)", lambda r: _by_group(r, "local")),
    ("latency p50 / p99, across Redis: other process (ms)", lambda r: _by_group(r, "across")),
    ("server CPU, both processes (% of a core)", lambda r: r["cpu"]["server_pct_of_core"]),
    ("server CPU per delivery (µs)", lambda r: r["cpu"]["server_us_per_delivery"]),
    ("redis-server CPU (s)", lambda r: r["redis_cpu_s"]),
    ("server RSS, both processes (MB)", lambda r: r["server_rss_mb"]),
]

#: what the ratios compare: ours-streams against each of these, on these figures
SUBJECT = "ours-streams"
BASELINES = ("ours-pubsub", "node-streams")
RATIO_ROWS: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
    ("server CPU per delivery", lambda r: r["cpu"]["server_us_per_delivery"]),
    ("latency p50, local", lambda r: r["latency_by_group_ms"]["local"]["p50"]),
    ("latency p50, across Redis", lambda r: r["latency_by_group_ms"]["across"]["p50"]),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    out = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, get in ROWS:
        cells = []
        for n in names:
            r = results[n]
            cells.append(str(r["error"]) if "error" in r else str(get(r)))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``SUBJECT``'s figure over each baseline's, per ratio row; None where one is missing."""
    subject = results.get(SUBJECT)
    if subject is None or "error" in subject:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for baseline in BASELINES:
        other = results.get(baseline)
        if other is None:
            continue
        row: dict[str, float | None] = {}
        for label, get in RATIO_ROWS:
            ours, theirs = (None, None) if "error" in other else (get(subject), get(other))
            row[label] = round(ours / theirs, 2) if ours and theirs else None
        out[baseline] = row
    return out


def ratio_table(found: dict[str, dict[str, float | None]]) -> str:
    baselines = list(found)
    out = [
        f"| {SUBJECT} / | " + " | ".join(baselines) + " |",
        "|---" * (len(baselines) + 1) + "|",
    ]
    for label, _ in RATIO_ROWS:
        cells = ["-" if found[b][label] is None else f"{found[b][label]:.2f}" for b in baselines]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, help="room size (default 1000; --quick: 100)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, help="seconds (default 10; --quick: 2)")
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2, help="receiving processes")
    parser.add_argument("--servers", default=",".join(PEERS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="100 clients for 2 s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    labels = [s for s in args.servers.split(",") if s]
    unknown = [s for s in labels if s not in PEERS]
    if unknown or not labels:
        parser.error(f"--servers: pick from {','.join(PEERS)} (not {','.join(unknown)})")
    default_clients, default_duration = (100, 2.0) if args.quick else (1000, 10.0)
    cfg = Config(
        client_procs=args.client_procs,
        clients=default_clients if args.clients is None else args.clients,
        rate=args.rate,
        duration=default_duration if args.duration is None else args.duration,
        payload=args.payload,
        quick=args.quick,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    failed = False
    load0 = ", ".join(f"{x:.2f}" for x in psutil.getloadavg())
    with cluster_commands():
        for label in labels:
            try:
                results[label] = fanout_on_two(PEERS[label], cfg)
            except Exception as exc:  # a failed peer is reported in its column
                failed = True
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
    load1 = ", ".join(f"{x:.2f}" for x in psutil.getloadavg())
    print(
        f"Fan-out on two processes with Redis: {cfg.clients} clients, {cfg.rate:g} msg/s, "
        f"{cfg.duration:g} s, {cfg.payload} B payload; {psutil.cpu_count()} cores, "
        f"load {load0} at the start, {load1} at the end\n"
    )
    print(table(results))
    found = ratios(results)
    if found:
        print("\nRatios (below 1: ours-streams costs less or is faster)\n")
        print(ratio_table(found))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"cluster-{stamp}.json"
    document = {"config": vars(cfg), "servers": labels, "results": results, "ratios": found}
    path.write_text(json.dumps(document, indent=2, default=str))
    print(f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
