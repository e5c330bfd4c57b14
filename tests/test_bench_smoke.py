"""Smoke tests of bench/: ``python -m bench.run`` on a tiny fan-out against all three servers,
the same on its overload, presence join storm and Node-``ws``-clients fan-out, and
``python -m bench.cluster`` on a tiny fan-out over two processes for its four peers.

They check that each bench runs end to end and writes what it promises (table, JSON with the
expected fields, plot); they assert nothing about speed. What a bench needs and a fresh
``make test`` may not have (the ``bench`` extra, ``npm ci`` in bench/node and in
tests/node_redis) is installed here first, the way ``make bench`` and ``make bench-cluster``
would, so that nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH_NODE = ROOT / "bench" / "node"
NODE_REDIS = ROOT / "tests" / "node_redis"
SERVERS = ("trio", "node", "pysio")
CLUSTER_PEERS = ("ours-pubsub", "ours-streams", "node-pubsub", "node-streams")


def run_bench(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a bench script from the repository's root; it must succeed."""
    proc = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def ensure_bench_extra() -> None:
    missing = [m for m in ("psutil", "matplotlib", "uvicorn") if not importlib.util.find_spec(m)]
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev,bench]"],
            check=True,
            timeout=600,
        )


def ensure_npm_packages(folder: Path, *packages: str) -> None:
    """``npm ci`` in ``folder`` unless each of ``packages`` is in its node_modules already."""
    if all((folder / "node_modules" / p).is_dir() for p in packages):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is needed for {folder.relative_to(ROOT)} (Node 20 with npm; see README)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=600,
    )


def ensure_bench_dependencies() -> None:
    ensure_bench_extra()
    ensure_npm_packages(BENCH_NODE, "socket.io", "ws")


def test_bench_quick_fanout_all_servers(tmp_path: Path) -> None:
    ensure_bench_dependencies()
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--quick",
        "--scenarios",
        "fanout",
        "--servers",
        ",".join(SERVERS),
        "--clients",
        "20",
        "--duration",
        "1",
        "--client-procs",
        "1",
        "--out",
        str(out),
    ]
    proc = run_bench(command)

    # the table: one column per server, the ratio columns
    assert "| scenario | metric |" in proc.stdout
    assert "ours/Node" in proc.stdout and "ours/pysio" in proc.stdout
    assert "deliveries/s" in proc.stdout

    latest = json.loads((out / "latest.json").read_text())
    stamped = json.loads((out / f"{latest['timestamp']}.json").read_text())
    assert stamped == latest
    assert (out / f"latency-{latest['timestamp']}.png").stat().st_size > 0

    machine = latest["machine"]
    for key in ("date", "cores", "cpu_model", "python", "node", "socket.io", "python-socketio"):
        assert machine[key], key
    assert latest["servers"] == list(SERVERS)
    assert latest["config"]["clients"] == 20

    fanout = latest["scenarios"]["fanout"]
    assert set(fanout) == set(SERVERS)
    for server in SERVERS:
        result = fanout[server]
        assert "error" not in result, (server, result)
        assert result["receivers"] == 20
        assert result["sent"] > 0
        assert result["expected"] == result["sent"] * 20
        assert result["lost"] == result["expected"] - result["received"]
        assert result["deliveries_per_s"] >= 0
        for q in ("p50", "p90", "p99", "max"):
            assert isinstance(result["latency_ms"][q], int | float), (server, q)
        for key in ("server_pct_of_core", "clients_pct_of_core", "server_s", "clients_s"):
            assert key in result["cpu"], (server, key)
        assert result["cdf_ms"]
        assert result["banner"].startswith("listening")


def test_bench_quick_overload_joinstorm_fanout_ws(tmp_path: Path) -> None:
    """The three newer scenarios at their ``--quick`` sizes on all three servers: every field
    there, and the counts complete where nothing is meant to be lost (no timing asserted)."""
    ensure_bench_dependencies()
    out = tmp_path / "results"
    scenarios = ("overload", "joinstorm", "fanout-ws")
    command = [sys.executable, "-m", "bench.run", "--quick", "--scenarios", ",".join(scenarios)]
    proc = run_bench([*command, "--servers", ",".join(SERVERS), "--out", str(out)], timeout=600)

    for title in ("**overload**", "**presence join storm**", "**fan-out, Node ws clients**"):
        assert title in proc.stdout, proc.stdout
    assert "ours/Node" in proc.stdout and "ours/pysio" in proc.stdout
    for row in ("deliveries/s (delivered / sending time)", "all userJoined delivered (s)"):
        assert row in proc.stdout, proc.stdout

    latest = json.loads((out / "latest.json").read_text())
    assert list(latest["scenarios"]) == list(scenarios)
    quick = latest["config"]
    clients, joiners = quick["overload_clients"], quick["joinstorm_clients"]
    for server in SERVERS:
        overload = latest["scenarios"]["overload"][server]
        assert "error" not in overload, (server, overload)
        assert overload["repeat"] == 1 and overload["failed_runs"] == 0
        assert len(overload["runs"]) == 1 and "error" not in overload["runs"][0]
        assert overload["receivers"] == clients
        assert overload["sent"] > 0
        assert overload["expected"] == overload["sent"] * clients
        assert 0 < overload["delivered"] <= overload["expected"]
        assert overload["lost_in_window"] == overload["expected"] - overload["delivered"]
        assert overload["deliveries_per_s"] > 0 and overload["send_seconds"] > 0
        for q in ("p50", "p90", "p99", "max"):
            assert isinstance(overload["latency_ms"][q], int | float), (server, q)
        for key in ("server_s", "server_pct_of_core", "server_us_per_delivery"):
            assert isinstance(overload["cpu"][key], int | float), (server, key)
        assert overload["server_rss_mb"] > 0
        assert overload["healthy_closed"] == 0
        assert overload["banner"].startswith("listening")

        storm = latest["scenarios"]["joinstorm"][server]
        assert "error" not in storm, (server, storm)
        assert storm["complete"] and not storm["timed_out"]
        assert storm["sent"] == storm["acked"] == storm["online_members_received"] == joiners
        assert storm["user_joined_expected"] == joiners * (joiners - 1) // 2
        assert storm["user_joined_received"] == storm["user_joined_expected"]
        # the k-th to enter sees at least the k already in the room
        assert storm["members_listed"] >= joiners * (joiners + 1) // 2
        for key in ("entered_seconds", "user_joined_seconds", "server_cpu_s"):
            assert isinstance(storm[key], int | float), (server, key)

        ws = latest["scenarios"]["fanout-ws"][server]
        assert "error" not in ws, (server, ws)
        assert ws["client"] == "node ws"
        assert ws["receivers"] == quick["clients"]
        assert ws["sent"] > 0
        assert ws["expected"] == ws["sent"] * quick["clients"]
        assert ws["received"] == ws["expected"] and ws["lost"] == 0
        assert ws["healthy_closed"] == 0
        for q in ("p50", "p90", "p99", "max"):
            assert isinstance(ws["latency_ms"][q], int | float), (server, q)
        assert "server_us_per_delivery" in ws["cpu"]


def test_bench_cluster_quick_four_peers(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for bench/cluster.py (apt-get install redis-server)")
    ensure_bench_extra()
    ensure_npm_packages(
        NODE_REDIS, "@socket.io/redis-adapter", "@socket.io/redis-streams-adapter", "socket.io"
    )
    out = tmp_path / "results"
    clients = 10
    command = [
        sys.executable,
        "-m",
        "bench.cluster",
        "--quick",
        "--servers",
        ",".join(CLUSTER_PEERS),
        "--clients",
        str(clients),
        "--duration",
        "1",
        "--client-procs",
        "2",
        "--out",
        str(out),
    ]
    proc = run_bench(command)

    # the table: one column per peer, the latency split by process, the ratios
    assert "| metric | " + " | ".join(CLUSTER_PEERS) + " |" in proc.stdout, proc.stdout
    assert "| latency p50 / p99, local" in proc.stdout
    assert "| latency p50 / p99, across Redis" in proc.stdout
    assert "| ours-streams / | ours-pubsub | node-streams |" in proc.stdout

    written = list(out.glob("cluster-*.json"))
    assert len(written) == 1, written
    document = json.loads(written[0].read_text())
    assert document["config"]["clients"] == clients
    assert document["servers"] == list(CLUSTER_PEERS)
    assert set(document["results"]) == set(CLUSTER_PEERS)
    for peer in CLUSTER_PEERS:
        result = document["results"][peer]
        assert "error" not in result, (peer, result)
        assert result["adapter"] == peer.split("-")[1]
        assert result["banner"].startswith("listening")
        assert result["receivers"] == clients
        assert result["clients_per_process"] == [clients // 2, clients // 2]
        assert result["sent"] > 0
        assert result["expected"] == result["sent"] * clients
        for q in ("p50", "p90", "p99", "max"):
            assert isinstance(result["latency_ms"][q], int | float), (peer, q)
        groups = result["latency_by_group_ms"]
        assert set(groups) == {"local", "across"}
        assert sum(g["received"] for g in groups.values()) == result["received"]
        for group in groups.values():
            assert isinstance(group["p50"], int | float) and isinstance(group["p99"], int | float)
        assert "server_us_per_delivery" in result["cpu"]
        assert isinstance(result["redis_cpu_s"], int | float)
    ratios = document["ratios"]
    assert set(ratios) == {"ours-pubsub", "node-streams"}
    for row in ratios.values():
        assert set(row) == {
            "server CPU per delivery",
            "latency p50, local",
            "latency p50, across Redis",
        }


def test_bench_store_quick_both_stores(tmp_path: Path) -> None:
    """``python -m bench.store --quick``: every operation measured on SQLite and PostgreSQL
    (a database of the bench's own, dropped after), a table and a JSON document."""
    out = tmp_path / "results"
    quick = ["--quick", "--repeat", "5", "--duration", "0.3"]
    proc = run_bench([sys.executable, "-m", "bench.store", *quick, "--out", str(out)])
    assert "| operation | SQLite p50 / p99 (ms) | PostgreSQL p50 / p99 (ms) |" in proc.stdout
    (written,) = out.glob("store-*.json")
    results = json.loads(written.read_text())["results"]
    assert set(results) == {"sqlite", "postgres"}
    assert results["sqlite"]["operations"].keys() == results["postgres"]["operations"].keys()
    for store in results.values():
        for name, row in store["operations"].items():
            assert row["n"] == 5 and 0 < row["p50_ms"] <= row["p99_ms"], (name, row)
        assert store["mixed"]["ops_per_s"] > 0
