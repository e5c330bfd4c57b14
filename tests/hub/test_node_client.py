"""The stock ``socket.io-client`` (Node) against our reference server.

The scenarios and their expected results are the ones the Node reference server passes in
``tests/test_node_reference_selfcheck.py``: where the two servers answer differently, ours
is wrong.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node_harness import (
    HOST,
    SIMPLE_SCENARIOS,
    TRANSPORT_MODES,
    free_port,
    node_deps_installed,
    node_executable,
    run_reconnect_scenario,
    run_scenario,
    stop_process,
)
from tests.test_node_reference_selfcheck import expected_result

pytestmark = pytest.mark.skipif(node_executable() is None, reason="node is not installed")

ROOT = Path(__file__).resolve().parents[2]


def start_python_reference(port: int, timeout: float = 15.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.socketio_reference", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        stop_process(proc)
        raise RuntimeError(f"reference server did not start: {line!r}")
    return proc


@pytest.fixture(scope="module")
def our_url() -> Iterator[str]:
    if not node_deps_installed():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")
    port = free_port()
    server = start_python_reference(port)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        stop_process(server)
        assert server.returncode == 0, "SIGTERM should stop the server with exit status 0"


@pytest.mark.parametrize("transports", TRANSPORT_MODES)
@pytest.mark.parametrize("scenario", SIMPLE_SCENARIOS)
def test_scenario_against_our_server(our_url: str, scenario: str, transports: str) -> None:
    result = run_scenario(our_url, scenario, transports)
    assert result == expected_result(scenario, transports)


@pytest.mark.parametrize("transports", TRANSPORT_MODES)
def test_reconnect_after_our_server_restarts(transports: str) -> None:
    if not node_deps_installed():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")
    port = free_port()
    servers = [start_python_reference(port)]

    def restart() -> None:
        stop_process(servers[-1])
        servers.append(start_python_reference(port))

    try:
        result = run_reconnect_scenario(f"http://{HOST}:{port}", transports, restart)
    finally:
        for server in servers:
            stop_process(server)
    assert len(servers) == 2, result
    # as with the Node server: polling may see the close packet or a failed poll
    reasons = (
        {"transport close", "transport error"} if transports == "polling" else {"transport close"}
    )
    assert result.pop("disconnect_reason") in reasons, result
    assert result == {"ok": True, "reconnected": True, "auth_after_reconnect": {"token": "again"}}
    assert all(server.returncode == 0 for server in servers)
