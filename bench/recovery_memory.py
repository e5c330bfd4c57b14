"""What connection state recovery holds in memory: 10,000 chat messages broadcast to a room.

Each message is what the service broadcasts as ``newMessage``; the hub stores it for
recovery, and every recipient reads its encodings as a WebSocket member (frames) and, with
``--polling``, a long-polling member (records) would. Python's ``tracemalloc`` counts what
stays allocated. Run it on another checkout to compare (``PYTHONPATH=<checkout>``)::

    python -m bench.recovery_memory            # this checkout
    PYTHONPATH=/tmp/old python bench/recovery_memory.py --out /tmp/old.json

Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

from server.hub import Hub

MESSAGES = {
    # the longest message the service takes, 4,000 emoji: 16 KB of UTF-8
    "emoji": "😀" * 4000,
    # a typical chat line
    "short": "a typical chat line, about a hundred characters long, with nothing special in it",
}


def measure(kind: str, polling: bool, max_bytes: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {"connection_state_recovery": True, "recovery_buffer": 10_000}
    if max_bytes is not None:
        options["recovery_buffer_bytes"] = max_bytes
    hub = Hub(**options)
    recovery = hub.main.adapter.recovery
    assert recovery is not None
    text = MESSAGES[kind]
    gc.collect()
    tracemalloc.start()
    for n in range(10_000):
        hub.to("project:1").emit(
            "newMessage",
            {
                "id": n,
                "projectId": 1,
                "userId": "ada",
                "userName": "Ada",
                "message": text,
                "replyTo": None,
                "timestamp": "2026-12-02T04:00:00.000Z",
            },
        )
    for stored in recovery._packets:  # what the recipients' transports read of each
        wire: Any = stored.wire
        _ = wire.frames
        if polling:
            records = wire.records
            _ = list(records()) if callable(records) else records
    gc.collect()
    traced, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "message": kind,
        "recipients": "websocket+polling" if polling else "websocket",
        "recovery_buffer_bytes": max_bytes if max_bytes is not None else "default",
        "kept": recovery.packet_count,
        "mb": round(traced / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args()
    unbounded = 1 << 40
    rows = []
    for kind in MESSAGES:
        for polling in (False, True):
            rows.append(measure(kind, polling, None))
        # the old Hub takes no byte bound: only where this one does
        with contextlib.suppress(TypeError):
            rows.append(measure(kind, False, unbounded))
    print(f"{'message':8} {'recipients':18} {'byte bound':>12} {'kept':>6} {'MB':>7}")
    for row in rows:
        bound = row["recovery_buffer_bytes"]
        shown = "none" if bound == unbounded else str(bound)
        print(
            f"{row['message']:8} {row['recipients']:18} {shown:>12} "
            f"{row['kept']:>6} {row['mb']:>7.1f}"
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = args.out or (
        Path(__file__).parent / "results" / f"recovery-memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"commit": commit, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
