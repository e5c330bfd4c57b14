"""The scenarios. Each runs against one server, started fresh for it, and returns a dict.

Every function takes the server name and the run's :class:`Config`, starts the server and the
client workers itself, and stops them before it returns. The joint ones (saturation, overload)
take every server's name and return a dict per server.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import threading
import time
import traceback
from array import array
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from bench.procs import BenchError, NodeWsClients, Receivers, Server, Workers, split

ROOM = "bench"
_runs = itertools.count(1)


@dataclass
class Config:
    client_procs: int = 2
    # fanout
    clients: int = 1000
    rate: float = 20.0
    duration: float = 10.0
    payload: int = 100
    # saturation
    saturation_clients: int = 1000
    saturation_rates: list[float] = field(
        default_factory=lambda: [20, 30, 40, 50, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500]
    )
    step_duration: float = 4.0
    p99_limit_ms: float = 100.0
    # connect storm
    storm_clients: int = 1000
    storm_inflight: int = 200
    join_clients: int = 1000
    # idle memory
    idle_levels: list[int] = field(default_factory=lambda: [5000, 10000])
    # slow consumers
    slow_clients: int = 1000
    slow_stalled: int = 100
    slow_rate: float = 20.0
    slow_payload: int = 1024
    slow_duration: float = 20.0
    # overload: far past capacity, deliveries counted in a fixed window
    overload_clients: int = 1000
    overload_rate: float = 200.0
    #: overload-past: the same at a rate past every server's capacity on a 2-core machine
    overload_past_rate: float = 500.0
    overload_duration: float = 10.0
    overload_grace: float = 3.0
    overload_repeat: int = 3
    #: the receiving clients: "ws" (Node's ws package: a client stack that is not ours) or
    #: "ours" (bench/clients.py, cheaper per delivery)
    overload_client: str = "ws"
    # presence join storm
    joinstorm_clients: int = 2000
    joinstorm_timeout: float = 180.0
    # drain after sending: stop waiting once nothing arrived for this long
    drain_idle: float = 1.0
    drain_max: float = 5.0
    quick: bool = False


# -- helpers ---------------------------------------------------------------------------------


def connect(
    rx: Workers, n: int, prefix: str, stall: int = 0, inflight: int = 200, timeout: float = 120.0
) -> dict[str, Any]:
    """Open ``n`` clients over the workers; returns counts and the wall time it took."""
    per_worker = max(1, inflight // rx.n)
    kwargs = [
        {"n": k, "prefix": f"{prefix}{i}-", "stall": s, "inflight": per_worker, "timeout": timeout}
        for i, (k, s) in enumerate(zip(split(n, rx.n), split(stall, rx.n), strict=True))
    ]
    replies = rx.call("connect", kwargs, timeout + 30)
    connect_us = sorted(itertools.chain.from_iterable(r["connect_us"] for r in replies))
    t_start = min(r["t_start"] for r in replies)
    t_end = max(r["t_end"] for r in replies)
    return {
        "ready": sum(r["ready"] for r in replies),
        "failed": sum(r["failed"] for r in replies),
        "seconds": (t_end - t_start) / 1e9,
        "connect_ms": {
            "p50": pct(connect_us, 0.5) / 1000,
            "p99": pct(connect_us, 0.99) / 1000,
            "max": (connect_us[-1] if connect_us else 0) / 1000,
        },
    }


def join(rx: Workers, room: str = ROOM, timeout: float = 120.0) -> dict[str, Any]:
    replies = rx.call("join", [{"room": room, "timeout": timeout}] * rx.n, timeout + 30)
    t_start = min(r["t_start"] for r in replies)
    t_end = max(r["t_end"] for r in replies)
    return {
        "sent": sum(r["sent"] for r in replies),
        "acked": sum(r["acked"] for r in replies),
        "seconds": (t_end - t_start) / 1e9,
    }


def require(got: int, wanted: int, what: str) -> None:
    if got < wanted:
        raise RuntimeError(f"{what}: {got} of {wanted}")


def pct(sorted_values: Any, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def cdf_points(sorted_values: Any, points: int = 200) -> list[float]:
    """Latency (ms) at ``points + 1`` evenly spaced quantiles, for the plot."""
    if not sorted_values:
        return []
    return [round(pct(sorted_values, i / points) / 1000, 3) for i in range(points + 1)]


class Sampler:
    """Samples the server's RSS and open connections every ``interval`` seconds."""

    def __init__(self, server: Server, interval: float = 0.5, connections: bool = False) -> None:
        self.server = server
        self.interval = interval
        self.connections = connections
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = {
                "t": round(time.monotonic() - self._t0, 2),
                "rss_mb": round(self.server.rss() / 2**20, 2),
            }
            if self.connections:
                sample["established"] = self.server.established()
            self.samples.append(sample)
            self._stop.wait(self.interval)


def measure(
    cfg: Config,
    server: Server,
    rx: Receivers,
    tx: Workers,
    rate: float,
    duration: float,
    payload: int,
    keep_cdf: bool = True,
    groups: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    """One sender at ``rate`` msg/s for ``duration`` s to the room; deliveries and latency.

    ``groups`` names consecutive runs of ``rx``'s workers, e.g. ``[("local", 1), ("across",
    1)]``: the latency is then also given per group (``latency_by_group_ms``), from each
    worker's own per-delivery latencies, so that one group's tail is not hidden by the other.
    """
    run = next(_runs)
    cpu_server0, cpu_rx0, cpu_tx0 = server.cpu(), rx.cpu(), tx.cpu()
    t0 = time.monotonic()
    receivers = sum(r["receivers"] for r in rx.call_all("record", run=run))
    sent_reply = tx.call_all(
        "send", timeout=duration + 60, room=ROOM, rate=rate, duration=duration, run=run, pad=payload
    )[0]
    sent = sent_reply["sent"]
    send_seconds = max(1e-9, (sent_reply["t_end"] - sent_reply["t_start"]) / 1e9)
    expected = sent * receivers
    # drain: until everything arrived, or nothing more arrives
    drain_start = last_change = time.monotonic()
    last = -1
    while True:
        total = sum(r["received"] for r in rx.call_all("received"))
        now = time.monotonic()
        if total >= expected:
            break
        if total != last:
            last, last_change = total, now
        elif now - last_change > cfg.drain_idle or now - drain_start > cfg.drain_max:
            break
        time.sleep(0.05)
    drain_seconds = time.monotonic() - drain_start
    replies = rx.call_all("collect")
    wall = time.monotonic() - t0
    cpu_server = server.cpu() - cpu_server0
    cpu_clients = rx.cpu() - cpu_rx0 + tx.cpu() - cpu_tx0
    lat = _sorted_latencies(replies)
    received = len(lat)
    result: dict[str, Any] = {
        "rate": rate,
        "receivers": receivers,
        "sent": sent,
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "healthy_closed": sum(r["healthy_closed"] for r in replies),
        "send_seconds": round(send_seconds, 3),
        "drain_seconds": round(drain_seconds, 3),
        "deliveries_per_s": round(received * rate / sent, 1),
        "latency_ms": latency_quantiles(lat),
        "cpu": {
            "window_s": round(wall, 3),
            "server_s": round(cpu_server, 3),
            "clients_s": round(cpu_clients, 3),
            "server_pct_of_core": round(100 * cpu_server / wall, 1),
            "clients_pct_of_core": round(100 * cpu_clients / wall, 1),
            "server_us_per_delivery": round(1e6 * cpu_server / received, 2) if received else None,
            "clients_us_per_delivery": round(1e6 * cpu_clients / received, 2) if received else None,
            # what one core would sustain at this cost: the ceiling without other load
            "server_cpu_bound_deliveries_per_s": round(received / cpu_server)
            if received and cpu_server
            else None,
        },
        "server_rss_mb": round(server.rss() / 2**20, 1),
    }
    if groups:
        by_group: dict[str, Any] = {}
        start = 0
        for label, workers in groups:
            group = _sorted_latencies(replies[start : start + workers])
            by_group[label] = {"received": len(group), **latency_quantiles(group)}
            start += workers
        if start != len(replies):
            raise ValueError(f"groups cover {start} workers of {len(replies)}")
        result["latency_by_group_ms"] = by_group
    if keep_cdf:
        result["cdf_ms"] = cdf_points(lat)
    return result


def _sorted_latencies(replies: Sequence[dict[str, Any]]) -> list[int]:
    """The per-delivery latencies (µs) that ``collect`` replies carry, merged and sorted."""
    latencies = array("q")
    for r in replies:
        latencies.frombytes(r["latencies"])
    return sorted(latencies)


def latency_quantiles(sorted_us: Sequence[int]) -> dict[str, float]:
    """p50, p90, p99 and max, in ms, of latencies in µs sorted ascending."""
    return {
        "p50": pct(sorted_us, 0.5) / 1000,
        "p90": pct(sorted_us, 0.9) / 1000,
        "p99": pct(sorted_us, 0.99) / 1000,
        "max": (sorted_us[-1] if sorted_us else float("nan")) / 1000,
    }


# -- the scenarios ---------------------------------------------------------------------------


def fanout(name: str, cfg: Config) -> dict[str, Any]:
    """N clients in one room, one sender at R msg/s for D s."""
    with (
        Server(name) as server,
        Workers(cfg.client_procs, server.port) as rx,
        Workers(1, server.port) as tx,
    ):
        conn = connect(rx, cfg.clients, "f")
        require(conn["ready"], cfg.clients, "clients connected")
        require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
        joined = join(rx)
        require(joined["acked"], cfg.clients, "joins acked")
        result = measure(cfg, server, rx, tx, cfg.rate, cfg.duration, cfg.payload)
        result.update(clients=cfg.clients, duration=cfg.duration, payload=cfg.payload)
        result["banner"] = server.banner
        return result


def saturation(names: list[str], cfg: Config) -> dict[str, dict[str, Any]]:
    """Step the sender's rate up until p99 passes the limit or a delivery is lost.

    All servers are up at once and the steps are interleaved (rate r on each server, then the
    next rate), so that load from outside the bench falls on all of them alike. A failing step
    is tried once more before it counts: one noisy second should not end a server's climb. A
    server that is done is stopped at once, so that its backlog costs the others nothing.
    """
    results: dict[str, dict[str, Any]] = {}
    stacks: dict[str, ExitStack] = {}
    setups: dict[str, tuple[Server, Workers, Workers]] = {}
    n = cfg.saturation_clients
    try:
        for name in names:
            stack = ExitStack()
            stacks[name] = stack
            try:
                server = stack.enter_context(Server(name))
                rx = stack.enter_context(Workers(cfg.client_procs, server.port))
                tx = stack.enter_context(Workers(1, server.port))
                require(connect(rx, n, "s")["ready"], n, "clients connected")
                require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
                require(join(rx)["acked"], n, "joins acked")
            except (RuntimeError, OSError) as exc:
                stack.close()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            setups[name] = (server, rx, tx)
            results[name] = {
                "clients": n,
                "step_duration": cfg.step_duration,
                "p99_limit_ms": cfg.p99_limit_ms,
                "best_deliveries_per_s": 0.0,
                "best_rate": None,
                "best_p99_ms": None,
                "best_server_us_per_delivery": None,
                "stop_reason": "last step passed",
                "steps": [],
                "banner": server.banner,
            }
        for rate in cfg.saturation_rates:
            for name in list(setups):
                server, rx, tx = setups[name]
                result = results[name]
                failure = None
                for _attempt in range(2):
                    step = measure(cfg, server, rx, tx, rate, cfg.step_duration, cfg.payload, False)
                    step["loadavg_1min"] = round(os.getloadavg()[0], 2)
                    result["steps"].append(step)
                    failure = step_failure(step, cfg)
                    if failure is None:
                        break
                if failure is not None:
                    result["stop_reason"] = f"{failure} at {rate:g} msg/s (twice)"
                    del setups[name]
                    stacks[name].close()
                    continue
                if step["deliveries_per_s"] > result["best_deliveries_per_s"]:
                    result.update(
                        best_deliveries_per_s=step["deliveries_per_s"],
                        best_rate=rate,
                        best_p99_ms=step["latency_ms"]["p99"],
                        best_server_us_per_delivery=step["cpu"]["server_us_per_delivery"],
                    )
            if not setups:
                break
        for result in results.values():
            costs = sorted(
                step["cpu"]["server_us_per_delivery"]
                for step in result.get("steps", [])
                if step["cpu"]["server_us_per_delivery"]
            )
            if costs:
                median = costs[len(costs) // 2]
                result["server_us_per_delivery_median"] = median
                result["cpu_bound_deliveries_per_s"] = round(1e6 / median)
    finally:
        for stack in stacks.values():
            stack.close()
    return results


def step_failure(step: dict[str, Any], cfg: Config) -> str | None:
    if step["lost"] > 0:
        return f"{step['lost']} lost"
    p99 = step["latency_ms"]["p99"]
    if not p99 <= cfg.p99_limit_ms:
        return f"p99 {p99:.0f} ms"
    return None


def storm(name: str, cfg: Config) -> dict[str, Any]:
    """Connections/s for K clients (handshake + CONNECT); then the time for 1,000 to join."""
    with Server(name) as server, Workers(cfg.client_procs, server.port) as rx:
        conn = connect(rx, cfg.storm_clients, "c", inflight=cfg.storm_inflight)
        require(conn["ready"], cfg.storm_clients, "clients connected")
        result: dict[str, Any] = {
            "clients": cfg.storm_clients,
            "inflight": cfg.storm_inflight,
            "connect_seconds": round(conn["seconds"], 3),
            "connections_per_s": round(cfg.storm_clients / conn["seconds"], 1),
            "connect_ms": conn["connect_ms"],
            "failed": conn["failed"],
        }
    # the join on a fresh server and fresh clients, all connected before the clock starts
    with Server(name) as server, Workers(cfg.client_procs, server.port) as rx:
        require(connect(rx, cfg.join_clients, "j")["ready"], cfg.join_clients, "connected")
        joined = join(rx)
        require(joined["acked"], cfg.join_clients, "joins acked")
        result["join_clients"] = cfg.join_clients
        result["join_ms"] = round(joined["seconds"] * 1000, 1)
    return result


def idle_memory(name: str, cfg: Config) -> dict[str, Any]:
    """Server RSS before and after each level of idle WebSocket connections."""
    levels: list[dict[str, Any]] = []
    with Server(name) as server, Workers(cfg.client_procs, server.port) as rx:
        time.sleep(1.0)
        before = server.rss()
        have = 0
        reached = True
        for level in cfg.idle_levels:
            if not reached:
                levels.append({"connections": level, "reached": False})
                continue
            try:
                conn = connect(rx, level - have, f"i{level}-", timeout=120)
            except Exception as exc:  # a worker gave up: the server could not hold them
                conn = {"ready": 0, "failed": level - have, "seconds": 0.0, "error": repr(exc)}
            have += conn["ready"]
            time.sleep(2.0)
            if not server.alive() or conn["failed"]:
                reached = False
                levels.append(
                    {
                        "connections": level,
                        "reached": False,
                        "held": have,
                        "failed": conn["failed"],
                        "server_alive": server.alive(),
                    }
                )
                continue
            rss = server.rss()
            levels.append(
                {
                    "connections": level,
                    "reached": True,
                    "rss_mb": round(rss / 2**20, 1),
                    "kb_per_connection": round((rss - before) / level / 1024, 2),
                    "connect_seconds": round(conn["seconds"], 2),
                }
            )
        for prev, cur in itertools.pairwise(levels):
            if prev.get("reached") and cur.get("reached"):
                cur["marginal_kb_per_connection"] = round(
                    (cur["rss_mb"] - prev["rss_mb"])
                    * 1024
                    / (cur["connections"] - prev["connections"]),
                    2,
                )
        return {"rss_before_mb": round(before / 2**20, 1), "levels": levels}


def slow_consumers(name: str, cfg: Config) -> dict[str, Any]:
    """Fan-out with some clients that never read, against the same run without them."""
    runs: dict[str, Any] = {}
    for label, stalled in (("baseline", 0), ("stalled", cfg.slow_stalled)):
        n = cfg.slow_clients
        with (
            Server(name) as server,
            Workers(cfg.client_procs, server.port) as rx,
            Workers(1, server.port) as tx,
        ):
            require(connect(rx, n, "w", stall=stalled)["ready"], n, "clients connected")
            require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
            require(join(rx)["acked"], n, "joins acked")
            time.sleep(0.3)
            open_before = server.established()
            with Sampler(server, 0.5, connections=True) as sampler:
                result = measure(
                    cfg, server, rx, tx, cfg.slow_rate, cfg.slow_duration, cfg.slow_payload, False
                )
            open_after = server.established()
            closed = open_before - open_after
            rss = [s["rss_mb"] for s in sampler.samples]
            result.update(
                stalled=stalled,
                healthy=n - stalled,
                open_before=open_before,
                open_after=open_after,
                stalled_closed=max(0, closed - result["healthy_closed"]),
                rss_samples=sampler.samples,
                rss_start_mb=rss[0] if rss else None,
                rss_end_mb=rss[-1] if rss else None,
                rss_max_mb=max(rss) if rss else None,
            )
            runs[label] = result
    base_p99 = runs["baseline"]["latency_ms"]["p99"]
    stalled_p99 = runs["stalled"]["latency_ms"]["p99"]
    return {
        "clients": cfg.slow_clients,
        "stalled": cfg.slow_stalled,
        "rate": cfg.slow_rate,
        "payload": cfg.slow_payload,
        "duration": cfg.slow_duration,
        "healthy_p99_baseline_ms": base_p99,
        "healthy_p99_stalled_ms": stalled_p99,
        "stalled_closed": runs["stalled"]["stalled_closed"],
        "rss_growth_mb": round(runs["stalled"]["rss_end_mb"] - runs["stalled"]["rss_start_mb"], 1),
        "rss_growth_baseline_mb": round(
            runs["baseline"]["rss_end_mb"] - runs["baseline"]["rss_start_mb"], 1
        ),
        "runs": runs,
    }


def overload(names: list[str], cfg: Config) -> dict[str, dict[str, Any]]:
    """The sender at ``overload_rate``: see :func:`overload_at`."""
    return overload_at(names, cfg, cfg.overload_rate, "overload")


def overload_past(names: list[str], cfg: Config) -> dict[str, dict[str, Any]]:
    """The sender at ``overload_past_rate``, past what any of the servers can deliver here
    (200 msg/s to 1,000 clients no longer is for ours or Node): see :func:`overload_at`."""
    return overload_at(names, cfg, cfg.overload_past_rate, "overload-past")


def overload_at(
    names: list[str], cfg: Config, rate: float, label: str
) -> dict[str, dict[str, Any]]:
    """Offered load far past capacity, ``overload_repeat`` times per server, interleaved.

    The runs go trio, node, pysio, trio, node, pysio, ..., each on a fresh server that is
    stopped (with whatever backlog it still holds) before the next run starts, so that noise
    from outside the bench falls on all servers alike and no run pays for another's backlog.
    Each server's result is the median of each figure over its runs, and ``runs`` lists them.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(max(1, cfg.overload_repeat)):
        for name in names:
            t0 = time.monotonic()
            print(f"[{label} / {name}] run {len(runs[name]) + 1} ...", file=sys.stderr, flush=True)
            try:
                result = overload_run(name, cfg, rate)
            except (BenchError, RuntimeError, OSError) as exc:
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {exc}"}
            result["elapsed_s"] = round(time.monotonic() - t0, 1)
            result["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
            runs[name].append(result)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        good = [r for r in runs[name] if "error" not in r]
        failed = len(runs[name]) - len(good)
        if not good:
            results[name] = {"error": runs[name][0]["error"], "runs": runs[name]}
            continue
        results[name] = {
            **median_of(good),
            "repeat": len(runs[name]),
            "failed_runs": failed,
            "runs": runs[name],
        }
    return results


def overload_run(name: str, cfg: Config, rate: float) -> dict[str, Any]:
    """N clients in one room, one sender at R msg/s for D s, on a fresh server; deliveries
    are counted only if received within ``overload_grace`` s of the last send."""
    n = cfg.overload_clients
    with ExitStack() as stack:
        server = stack.enter_context(Server(name))
        rx: Receivers
        if cfg.overload_client == "ws":
            ws = stack.enter_context(NodeWsClients(cfg.client_procs, server.port, n, "o", ROOM))
            require(ws.ready, n, f"node ws clients connected and joined {ws.errors}")
            rx = ws
        else:
            workers = stack.enter_context(Workers(cfg.client_procs, server.port))
            require(connect(workers, n, "o")["ready"], n, "clients connected")
            require(join(workers)["acked"], n, "joins acked")
            rx = workers
        tx = stack.enter_context(Workers(1, server.port))
        require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
        run = next(_runs)
        cpu_server0, cpu_clients0 = server.cpu(), rx.cpu() + tx.cpu()
        t0 = time.monotonic()
        receivers = sum(r["receivers"] for r in rx.call_all("record", run=run))
        sent_reply = tx.call_all(
            "send",
            timeout=cfg.overload_duration + 60,
            room=ROOM,
            rate=rate,
            duration=cfg.overload_duration,
            run=run,
            pad=cfg.payload,
        )[0]
        sent = sent_reply["sent"]
        send_seconds = max(1e-9, (sent_reply["t_end"] - sent_reply["t_start"]) / 1e9)
        # the window ends a fixed time after the last send, however much is still on its way:
        # the clients count nothing they receive after it
        cutoff_ns = sent_reply["t_end"] + round(cfg.overload_grace * 1e9)
        rx.call_all("cutoff", until_ns=cutoff_ns)
        time.sleep(max(0.0, (cutoff_ns - time.time_ns()) / 1e9))
        window = time.monotonic() - t0
        cpu_server = server.cpu() - cpu_server0
        cpu_clients = rx.cpu() + tx.cpu() - cpu_clients0
        rss = server.rss()
        alive = server.alive()
        replies = rx.call_all("collect", timeout=120)
        banner = server.banner
    lat = _sorted_latencies(replies)
    delivered = len(lat)
    expected = sent * receivers
    return {
        "clients": n,
        "client": "node ws" if cfg.overload_client == "ws" else "ours",
        "rate": rate,
        "duration": cfg.overload_duration,
        "grace": cfg.overload_grace,
        "payload": cfg.payload,
        "receivers": receivers,
        "sent": sent,
        "expected": expected,
        "delivered": delivered,
        "lost_in_window": expected - delivered,
        # received after the window, before the clients stopped counting: information only
        "late": sum(r["late"] for r in replies),
        "send_seconds": round(send_seconds, 3),
        "window_s": round(window, 3),
        "offered_deliveries_per_s": round(expected / send_seconds, 1),
        "deliveries_per_s": round(delivered / send_seconds, 1),
        "latency_ms": latency_quantiles(lat),
        "cpu": {
            "server_s": round(cpu_server, 3),
            "server_pct_of_core": round(100 * cpu_server / window, 1),
            "server_us_per_delivery": round(1e6 * cpu_server / delivered, 2) if delivered else None,
            "clients_s": round(cpu_clients, 3),
            "clients_pct_of_core": round(100 * cpu_clients / window, 1),
        },
        "server_rss_mb": round(rss / 2**20, 1),
        "server_alive": alive,
        "healthy_closed": sum(r["healthy_closed"] for r in replies),
        "banner": banner,
    }


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each number of the runs' results: its median over the runs (NaN ignored); anything
    else (text, flags): the first run's."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(first, dict):
            out[key] = median_of([v for v in values if isinstance(v, dict)])
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            numbers: list[float] = [v for v in values if v is not None and v == v]  # NaN != NaN
            out[key] = statistics.median(numbers) if numbers else float("nan")
        else:
            out[key] = first
    return out


def joinstorm(name: str, cfg: Config) -> dict[str, Any]:
    """A presence join storm: N connected clients all send ``enter(room)`` at once.

    Each ``enter`` joins the room, sends ``userJoined`` to the rest of the room, and answers
    the caller with ``onlineMembers`` (the room's names, through the cluster-capable socket
    listing) and an ack. The k-th client to enter is announced to the k - 1 already there,
    so N(N - 1)/2 ``userJoined`` deliveries in all.
    """
    n = cfg.joinstorm_clients
    with Server(name) as server, Workers(cfg.client_procs, server.port) as rx:
        require(connect(rx, n, "p")["ready"], n, "clients connected")
        expected = n * (n - 1) // 2
        cpu0 = server.cpu()
        t0 = time.monotonic()
        starts = rx.call_all("enter", room=ROOM)
        sent = sum(r["sent"] for r in starts)
        t_first = min(r["t_start"] for r in starts)
        deadline = t0 + cfg.joinstorm_timeout
        while True:
            status = rx.call_all("presence")
            acked = sum(r["acked"] for r in status)
            online = sum(r["online"] for r in status)
            user_joined = sum(r["user_joined"] for r in status)
            complete = acked >= sent and online >= sent and user_joined >= expected
            if complete or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        cpu = server.cpu() - cpu0
        rss = server.rss()

    def since_first(key: str, done: bool) -> float | None:
        return round((max(r[key] for r in status) - t_first) / 1e9, 3) if done else None

    ack_s = since_first("t_last_ack", acked >= sent)
    online_s = since_first("t_last_online", online >= sent)
    return {
        "clients": n,
        "timeout": cfg.joinstorm_timeout,
        "sent": sent,
        "acked": acked,
        "online_members_received": online,
        "members_listed": sum(r["members_listed"] for r in status),
        "user_joined_received": user_joined,
        "user_joined_expected": expected,
        "complete": complete,
        "timed_out": not complete,
        "ack_seconds": ack_s,
        "online_members_seconds": online_s,
        # every client has both its ack and its onlineMembers
        "entered_seconds": max(ack_s, online_s)
        if ack_s is not None and online_s is not None
        else None,
        "user_joined_seconds": since_first("t_last_user_joined", user_joined >= expected),
        "server_cpu_s": round(cpu, 3),
        "server_rss_mb": round(rss / 2**20, 1),
        "client_states": {k: sum(r["states"][k] for r in status) for k in status[0]["states"]},
        "banner": server.banner,
    }


def fanout_ws(name: str, cfg: Config) -> dict[str, Any]:
    """:func:`fanout` with Node's ``ws`` package as the receiving clients (the sender is
    still a Python worker): the same figures from a client stack that is not ours."""
    with (
        Server(name) as server,
        NodeWsClients(cfg.client_procs, server.port, cfg.clients, "n", ROOM) as rx,
        Workers(1, server.port) as tx,
    ):
        require(rx.ready, cfg.clients, f"node ws clients connected and joined {rx.errors}")
        require(connect(tx, 1, "sender")["ready"], 1, "sender connected")
        result = measure(cfg, server, rx, tx, cfg.rate, cfg.duration, cfg.payload)
        result.update(
            clients=cfg.clients,
            duration=cfg.duration,
            payload=cfg.payload,
            client="node ws",
            client_procs=cfg.client_procs,
            connect_join_seconds=round(rx.seconds, 3),
        )
        result["banner"] = server.banner
        return result


#: scenarios that run one server at a time
SCENARIOS = {
    "fanout": fanout,
    "storm": storm,
    "idle": idle_memory,
    "slow": slow_consumers,
    "joinstorm": joinstorm,
    "fanout-ws": fanout_ws,
}
#: scenarios that take every server at once
JOINT_SCENARIOS = {
    "saturation": saturation,
    "overload": overload,
    "overload-past": overload_past,
}
ALL_SCENARIOS = (
    "fanout",
    "saturation",
    "storm",
    "idle",
    "slow",
    "overload",
    "overload-past",
    "joinstorm",
    "fanout-ws",
)
