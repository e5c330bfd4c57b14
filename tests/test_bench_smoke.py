"""Smoke test of bench/: ``python -m bench.run`` on a tiny fan-out against all three servers.

It checks that the bench runs end to end and writes what it promises (table, JSON with the
expected fields, plot); it asserts nothing about speed. What the bench needs and a fresh
``make test`` does not install (the ``bench`` extra, ``npm ci`` in bench/node) is installed
here first, the way ``make bench`` would, so that nothing is skipped.
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
SERVERS = ("trio", "node", "pysio")


def ensure_bench_dependencies() -> None:
    missing = [m for m in ("psutil", "matplotlib", "uvicorn") if not importlib.util.find_spec(m)]
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev,bench]"],
            check=True,
            timeout=600,
        )
    if not (BENCH_NODE / "node_modules" / "socket.io").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for bench/node (Node 20 with npm; see README)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BENCH_NODE,
            check=True,
            timeout=600,
        )


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
    proc = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

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
