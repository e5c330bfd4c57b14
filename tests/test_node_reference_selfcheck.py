"""Self-check of the Node interop harness: every client scenario, with every
transport mode, against the stock Node Socket.IO reference server.

This proves the scenarios and their expected results before they are pointed
at our own server; the expectations here are what a correct server yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
    start_node_reference,
    stop_process,
)

pytestmark = pytest.mark.skipif(node_executable() is None, reason="node is not installed")

#: Final transport once the connection has settled, per transport mode.
FINAL_TRANSPORT = {"polling": "polling", "websocket": "websocket", "polling,websocket": "websocket"}

EXPECTED: dict[str, dict[str, Any]] = {
    "echo": {"message_back": [1, "2", {"3": [True]}, "héllo €"]},
    "ack": {"ack_args": [1, "2", {"3": [False]}], "emit_with_ack": 1},
    "binary": {
        "message_back": [{"$bytes": [1, 2, 3]}, {"nested": {"$bytes": [4, 5, 6]}, "n": 1}],
        "ack_args": [{"$bytes": [7, 8]}],
        "emit_with_ack": {"$bytes": [7, 8]},
    },
    "server-ack": {"ack_result": [{"got": {"x": 1}}]},
    "namespaces": {
        "root_auth": {"ns": "root"},
        "custom_auth": {"ns": "custom"},
        "ids_are_strings": True,
        "ids_distinct": True,
        "shared_engine": True,
        "both_connected": True,
    },
    "unknown-namespace": {"connect_error": "Invalid namespace", "data": None, "connected": False},
    "middleware-refusal": {
        "connect_error": "not authorized",
        "data": {"reason": "no token"},
        "refused_connected": False,
        "connected": True,
    },
    "rooms": {"joined": True, "a": ["hi"], "b": ["hi"]},
    "heartbeat": {"connected": True, "disconnect_reason": None, "several_pings": True},
}


def expected_result(scenario: str, transports: str) -> dict[str, Any]:
    if scenario == "connect":
        return {
            "ok": True,
            "auth": {"token": "abc"},
            "id_is_string": True,
            "connected": True,
            "transport": FINAL_TRANSPORT[transports],
        }
    return {"ok": True, **EXPECTED[scenario]}


@pytest.fixture(scope="module")
def reference_url() -> Iterator[str]:
    if not node_deps_installed():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")
    port = free_port()
    server = start_node_reference(port)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        stop_process(server)


def test_expectations_cover_every_scenario() -> None:
    assert set(SIMPLE_SCENARIOS) == {"connect", *EXPECTED}


@pytest.mark.parametrize("transports", TRANSPORT_MODES)
@pytest.mark.parametrize("scenario", SIMPLE_SCENARIOS)
def test_scenario_against_node_reference(
    reference_url: str, scenario: str, transports: str
) -> None:
    result = run_scenario(reference_url, scenario, transports)
    assert result == expected_result(scenario, transports)


@pytest.mark.parametrize("transports", TRANSPORT_MODES)
def test_reconnect_against_node_reference(transports: str) -> None:
    if not node_deps_installed():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")
    port = free_port()
    servers = [start_node_reference(port)]

    def restart() -> None:
        stop_process(servers[-1])
        servers.append(start_node_reference(port))

    try:
        result = run_reconnect_scenario(f"http://{HOST}:{port}", transports, restart)
    finally:
        for server in servers:
            stop_process(server)
    assert len(servers) == 2, result
    # A graceful stop closes the transport. Over WebSocket the client always sees
    # "transport close"; over polling it sees "transport close" only when the close
    # packet reached a pending GET, and "transport error" (failed poll) otherwise.
    reasons = (
        {"transport close", "transport error"} if transports == "polling" else {"transport close"}
    )
    assert result.pop("disconnect_reason") in reasons, result
    assert result == {"ok": True, "reconnected": True, "auth_after_reconnect": {"token": "again"}}
