"""Smoke test of bench/soak.py: ``python -m bench.soak --quick`` runs every scenario end to end.

It checks only that the script completes and writes one JSON row per scenario. What the
server does under each attack (its latency, whether it survives) is what the script
measures and reports; it is never asserted here, so a slow machine or a server that dies
under an attack (which is a row like any other) does not fail the suite. Everything the
script needs is in the ``dev`` extra (python-socketio's client, websocket-client, httpx,
PyJWT); about 20 s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.test_bench_smoke import run_bench

SCENARIOS = ["idle", "noop-posts", "half-open", "unjoined", "surrogate-bomb", "chat-flood"]


def test_soak_quick_writes_one_row_per_scenario(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # exits 0 unless the script itself failed (a scenario or an attacker raised)
    proc = run_bench([sys.executable, "-m", "bench.soak", "--quick", "--out", str(out)])

    latest = json.loads((out / "soak-latest.json").read_text())
    assert json.loads((out / f"soak-{latest['timestamp']}.json").read_text()) == latest
    assert list(latest["scenarios"]) == SCENARIOS
    for name, row in latest["scenarios"].items():
        assert row["scenario"] == name
        assert "error" not in row, (name, row["error"])
        for key in ("control", "server", "figures"):
            assert key in row, (name, key)
        assert row["control"]["chat_round_trip_ms"]["n"] > 0, name  # the database's side
    for name in SCENARIOS:
        assert f"| {name} |" in proc.stdout, name
