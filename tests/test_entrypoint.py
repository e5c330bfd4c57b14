"""``python -m server``: both listeners in one process, and a clean stop on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import socketio

from tests.node_harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_until_serving(url: str, proc: subprocess.Popen[str], timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                message = f"the server exited with {proc.returncode}:\n{output}"
                raise AssertionError(message) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_both_ports_and_stops_cleanly(signum: signal.Signals) -> None:
    port, hub_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--hub-port", str(hub_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = json.loads(wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["status"] == "ok"

        client = socketio.Client(reconnection=False)
        disconnected: list[str] = []
        client.on("disconnect", lambda reason=None: disconnected.append(str(reason)))
        client.connect(f"http://127.0.0.1:{hub_port}", wait_timeout=5)
        health = json.loads(wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["hub"]["clients"] == 1

        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    assert f"{signum.name} received" in output
    deadline = time.monotonic() + 5
    while not disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert disconnected, "the connected client was not told the server went away"
    client.disconnect()


def test_bad_settings_fail_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "not-a-number"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--port" in result.stderr
