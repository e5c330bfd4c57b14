"""What a client receives through each kind of failure: ours in both bridge modes against
Node Socket.IO on each of its Redis adapters, in one run.

    python -m bench.failures [--messages 200] [--rate 20]
                             [--servers ours-pubsub,ours-streams,node-pubsub,node-streams]
                             [--failures cut,move,kill,redis-stop,redis-freeze]

For each server kind and failure: a fresh ``redis-server``, two server processes of that
kind, a receiver (the stock ``socket.io-client`` with reconnection, ``tests/node``'s
driven client) in a room, connected to node one through a TCP proxy, and a sender (the
same client) on node two that broadcasts ``--messages`` numbered messages to the room at
``--rate`` a second. A third of the way through, the failure:

- ``cut``: the proxy resets the receiver's connection; it reconnects to node one.
- ``move``: the proxy sends new connections to node two, then resets: it reconnects there.
- ``kill``: node one is killed with ``-9``; the receiver reconnects to node two.
- ``redis-stop``: ``redis-server`` is killed, and started again 5 s later (empty).
- ``redis-freeze``: ``redis-server`` gets SIGSTOP, and SIGCONT 5 s later.

Counted: messages sent, distinct ones that arrived, ones that arrived twice, whether the
receiver's socket was recovered. The receiver rejoins the room on every connection that
is not recovered, as an app does. Ours runs with connection state recovery on in both modes
(in pubsub mode a process keeps its own clients' state only); Node on the streams adapter
has it on, on the plain Redis adapter it cannot. Prints a Markdown table and writes
``bench/results/failures-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from bench.procs import HOST, free_port, node_executable
from tests.bridge.redis_server import RedisServer
from tests.bridge.tcp_proxy import tcp_proxy
from tests.driven import DrivenClient, node_client

ROOT = Path(__file__).resolve().parents[1]
NODE_REDIS = ROOT / "tests" / "node_redis"
SERVERS = ("ours-pubsub", "ours-streams", "node-pubsub", "node-streams")
FAILURES = ("cut", "move", "kill", "redis-stop", "redis-freeze")
OUTAGE = 5.0


def server_command(kind: str, port: int, redis_url: str) -> list[str]:
    who, _, adapter = kind.partition("-")
    if who == "ours":
        return [
            sys.executable, "-m", "bench.servers.trio_cluster", "--host", HOST,
            "--port", str(port), "--redis", redis_url, "--adapter", adapter, "--recovery",
        ]  # fmt: skip
    script = str(NODE_REDIS / "cluster_server.mjs")
    return [
        node_executable(), script, "--host", HOST, "--port", str(port),
        "--redis", redis_url, "--adapter", adapter,
    ]  # fmt: skip


class Node:
    """One server process; ready once it prints its ``listening`` line."""

    def __init__(self, kind: str, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            server_command(kind, self.port, redis_url),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.logfile = log

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while "listening" not in self.logfile.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.logfile.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def received(client: DrivenClient) -> list[int]:
    return [
        m["args"][0]["seq"]
        for m in client.seen
        if m["type"] == "event" and m["name"] == "msg" and isinstance(m["args"][0], dict)
    ]


async def one_case(
    kind: str, failure: str, messages: int, rate: float, work: Path
) -> dict[str, Any]:
    redis = RedisServer(work)
    redis.start()
    nodes = [Node(kind, redis.url, work / f"{kind}-{failure}-{i}.log") for i in (1, 2)]
    try:
        for node in nodes:
            await trio.to_thread.run_sync(node.wait_ready)
        one, two = nodes
        async with (
            tcp_proxy(one.port) as proxy,
            node_client(proxy.url, "websocket", {"name": "rx"}, ["join", "room"]) as rx,
            node_client(two.url, "websocket", {"name": "tx"}) as tx,
            trio.open_nursery() as nursery,
        ):
            first = await rx.expect(lambda m: m["type"] == "connect")
            await rx.expect(lambda m: m["type"] == "ack")  # joined the room
            await tx.expect(lambda m: m["type"] == "connect")
            nursery.start_soon(rx.drain)
            nursery.start_soon(tx.drain)
            await trio.sleep(1.0)  # the nodes have found each other

            async def inject() -> None:
                if failure == "cut":
                    await proxy.cut()
                elif failure == "move":
                    proxy.switch(two.port)
                    await proxy.cut()
                elif failure == "kill":
                    proxy.switch(two.port)
                    one.proc.kill()
                    await trio.to_thread.run_sync(one.proc.wait)
                    await proxy.cut()
                elif failure == "redis-stop":
                    redis.kill()
                    await trio.sleep(OUTAGE)
                    redis.start()
                elif failure == "redis-freeze":
                    assert redis.proc is not None
                    redis.proc.send_signal(signal.SIGSTOP)
                    await trio.sleep(OUTAGE)
                    redis.proc.send_signal(signal.SIGCONT)

            started = trio.current_time()
            for n in range(messages):
                if n == messages // 3:
                    nursery.start_soon(inject)
                await tx.command(cmd="emit", event="broadcast", args=["room", {"seq": n}])
                await trio.sleep(max(0.0, started + (n + 1) / rate - trio.current_time()))
            # what is late (an outage's backlog) has this long to arrive
            with trio.move_on_after(15):
                while len(set(received(rx))) < messages:  # noqa: ASYNC110 (polled: counted)
                    await trio.sleep(0.1)
            await trio.sleep(1.0)
            got = received(rx)
            connects = [m for m in rx.seen if m["type"] == "connect"]
            nursery.cancel_scope.cancel()
        counts = Counter(got)
        reconnected = connects[1:] if len(connects) > 1 else []
        return {
            "sent": messages,
            "arrived": len(counts),
            "twice": sum(1 for c in counts.values() if c > 1),
            "in_order": got == sorted(got),
            "reconnected": bool(reconnected),
            "recovered": bool(reconnected) and all(c["recovered"] for c in reconnected),
            "same_id": bool(reconnected) and reconnected[-1]["id"] == first["id"],
        }
    finally:
        for node in nodes:
            node.stop()
        if redis.proc is not None:
            redis.proc.send_signal(signal.SIGCONT)
        redis.kill()


def cell(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    text = f"{result['arrived']}/{result['sent']}"
    if result["twice"]:
        text += f", {result['twice']} twice"
    if not result["in_order"]:
        text += ", out of order"
    if result["reconnected"]:
        text += ", recovered" if result["recovered"] else ", new session"
    return text


def table(results: dict[str, dict[str, dict[str, Any]]], failures: list[str]) -> str:
    names = list(results)
    out = ["| failure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for failure in failures:
        out.append(f"| {failure} | " + " | ".join(cell(results[n][failure]) for n in names) + " |")
    return "\n".join(out)


async def run(args: argparse.Namespace) -> dict[str, dict[str, dict[str, Any]]]:
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.servers.split(","):
            results[kind] = {}
            for failure in args.failures.split(","):
                try:
                    results[kind][failure] = await one_case(
                        kind, failure, args.messages, args.rate, Path(tmp)
                    )
                except Exception as exc:  # a failed case is reported in its cell
                    results[kind][failure] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"{kind} / {failure}: {cell(results[kind][failure])}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failures", description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--failures", default=",".join(FAILURES))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(SERVERS)
    unknown |= set(args.failures.split(",")) - set(FAILURES)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    os.environ.setdefault("NODE_NO_WARNINGS", "1")
    results = trio.run(run, args)
    print(
        f"\nWhat a client got through each failure: {args.messages} messages at "
        f"{args.rate:g}/s, the failure a third of the way ({OUTAGE:g} s for Redis)\n"
    )
    failures = args.failures.split(",")
    print(table(results, failures))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"failures-{time.strftime('%Y%m%d-%H%M%S')}.json"
    config = {"messages": args.messages, "rate": args.rate, "outage_s": OUTAGE}
    path.write_text(json.dumps({"config": config, "results": results}, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    errors = any("error" in r for per in results.values() for r in per.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
