"""python-socketio's stock client against our reference server, on every transport mode."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import socketio
import trio

from examples.socketio_reference import build
from tests.hub.conftest import serving

MODES = [["polling"], ["websocket"], ["polling", "websocket"]]


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.mark.parametrize("transports", MODES, ids=["polling", "websocket", "upgrade"])
async def test_connect_events_acks_binary(transports: list[str]) -> None:
    async with serving(build()) as url:

        def scenario() -> dict[str, Any]:
            client = socketio.Client(reconnection=False)
            got: dict[str, Any] = {}
            client.on("auth", lambda data: got.setdefault("auth", data))
            client.on("message-back", lambda *args: got.setdefault("back", args))
            client.connect(url, transports=transports, auth={"token": "abc"}, wait_timeout=5)
            try:
                client.emit("message", (1, "2", {"3": [True]}, "héllo €", b"\x00\x01\xff"))
                got["ack"] = client.call("message-with-ack", (1, "2", {"3": [False]}), timeout=5)
                got["binary_ack"] = client.call(
                    "message-with-ack", {"blob": b"\x07\x08"}, timeout=5
                )
                wait_for(lambda: "back" in got and "auth" in got)
                time.sleep(0.7)  # several 300 ms heartbeats, and time for an upgrade
                got["transport"] = client.transport()
                got["sid"] = client.get_sid()
            finally:
                client.disconnect()
            return got

        got = await trio.to_thread.run_sync(scenario)
    assert got["auth"] == {"token": "abc"}
    assert got["back"] == (1, "2", {"3": [True]}, "héllo €", b"\x00\x01\xff")
    assert got["ack"] == (1, "2", {"3": [False]})
    assert got["binary_ack"] == {"blob": b"\x07\x08"}
    assert got["transport"] == transports[-1]
    assert isinstance(got["sid"], str)


@pytest.mark.parametrize("transports", MODES, ids=["polling", "websocket", "upgrade"])
async def test_server_asks_client_for_an_ack(transports: list[str]) -> None:
    async with serving(build()) as url:

        def scenario() -> Any:
            client = socketio.Client(reconnection=False)
            result: list[Any] = []
            client.on("please-ack", lambda payload: {"got": payload})
            client.on("ack-result", result.append)
            client.connect(url, transports=transports, wait_timeout=5)
            try:
                client.emit("server-ack-request", {"x": 1})
                wait_for(lambda: result)
            finally:
                client.disconnect()
            return result[0]

        assert await trio.to_thread.run_sync(scenario) == [{"got": {"x": 1}}]


async def test_server_ack_times_out_when_client_never_answers() -> None:
    async with serving(build()) as url:

        def scenario() -> Any:
            client = socketio.Client(reconnection=False)
            result: list[Any] = []
            client.on("ack-result", result.append)
            # python-socketio acks even without a handler, so answer too late instead
            client.on("please-ack", lambda payload: time.sleep(2.5))
            client.connect(url, transports=["websocket"], wait_timeout=5)
            try:
                client.emit("server-ack-request", {"x": 1})
                wait_for(lambda: result, timeout=8)
            finally:
                client.disconnect()
            return result[0]

        result = await trio.to_thread.run_sync(scenario)
    assert "error" in result and "within 2.0 s" in result["error"]


@pytest.mark.parametrize("transports", MODES, ids=["polling", "websocket", "upgrade"])
async def test_two_namespaces_on_one_connection(transports: list[str]) -> None:
    async with serving(build()) as url:

        def scenario() -> dict[str, Any]:
            client = socketio.Client(reconnection=False)
            got: dict[str, Any] = {}
            client.on("auth", lambda data: got.setdefault("/", data))
            client.on("auth", lambda data: got.setdefault("/custom", data), namespace="/custom")
            client.connect(
                url,
                transports=transports,
                namespaces=["/", "/custom"],
                auth={"token": "t"},
                wait_timeout=5,
            )
            try:
                wait_for(lambda: len(got) == 2)
                got["sids"] = (client.get_sid("/"), client.get_sid("/custom"))
            finally:
                client.disconnect()
            return got

        got = await trio.to_thread.run_sync(scenario)
    assert got["/"] == {"token": "t"} and got["/custom"] == {"token": "t"}
    assert got["sids"][0] != got["sids"][1]


async def test_unknown_namespace_is_refused() -> None:
    async with serving(build()) as url:

        def scenario() -> str:
            client = socketio.Client(reconnection=False)
            errors: list[Any] = []
            client.on("connect_error", errors.append, namespace="/random")
            with pytest.raises(socketio.exceptions.ConnectionError):
                client.connect(url, namespaces=["/random"], wait_timeout=3)
            client.disconnect()
            return str(errors[0]) if errors else ""

        message = await trio.to_thread.run_sync(scenario)
    assert "Invalid namespace" in message


async def test_middleware_refusal_and_acceptance() -> None:
    async with serving(build()) as url:

        def scenario() -> tuple[Any, bool]:
            refused = socketio.Client(reconnection=False)
            errors: list[Any] = []
            refused.on("connect_error", errors.append, namespace="/private")
            with pytest.raises(socketio.exceptions.ConnectionError):
                refused.connect(url, namespaces=["/private"], wait_timeout=3)
            refused.disconnect()

            accepted = socketio.Client(reconnection=False)
            accepted.connect(url, namespaces=["/private"], auth={"token": "secret"}, wait_timeout=3)
            ok = accepted.connected and "/private" in accepted.namespaces
            accepted.disconnect()
            return errors[0], ok

        error, ok = await trio.to_thread.run_sync(scenario)
    assert error == {"message": "not authorized", "data": {"reason": "no token"}}
    assert ok


async def test_rooms_between_clients_on_different_transports() -> None:
    async with serving(build()) as url:

        def scenario() -> dict[str, list[Any]]:
            received: dict[str, list[Any]] = {"a": [], "b": [], "c": []}
            clients = {}
            for name, transports in (("a", ["polling"]), ("b", ["websocket"]), ("c", None)):
                client = socketio.Client(reconnection=False)
                client.on("room-message", received[name].append)
                client.connect(url, transports=transports, wait_timeout=5)
                clients[name] = client
            try:
                assert clients["a"].call("join", "r1", timeout=5) is True
                assert clients["b"].call("join", "r1", timeout=5) is True
                clients["c"].emit("to-room", ("r1", "hi"))
                wait_for(lambda: received["a"] and received["b"])
                time.sleep(0.2)
            finally:
                for client in clients.values():
                    client.disconnect()
            return received

        received = await trio.to_thread.run_sync(scenario)
    assert received == {"a": ["hi"], "b": ["hi"], "c": []}


@pytest.mark.parametrize("transports", MODES, ids=["polling", "websocket", "upgrade"])
async def test_client_reconnects_after_server_restart(transports: list[str]) -> None:
    connected = threading.Event()
    reconnected = threading.Event()
    reasons: list[str] = []
    state = {"connects": 0}
    client = socketio.Client(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.3)

    @client.on("connect")
    def on_connect() -> None:
        state["connects"] += 1
        (reconnected if state["connects"] > 1 else connected).set()

    @client.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        reasons.append(str(reason))

    async with serving(build()) as url:
        port = int(url.rsplit(":", 1)[1])
        await trio.to_thread.run_sync(
            lambda: client.connect(url, transports=transports, wait_timeout=5)
        )
        assert await trio.to_thread.run_sync(connected.wait, 5)
    # the server is gone; start a new one on the same port
    async with serving(build(), port):
        ok = await trio.to_thread.run_sync(reconnected.wait, 15)
        await trio.to_thread.run_sync(client.disconnect)
    assert ok, f"no reconnection; disconnect reasons {reasons}"
    assert reasons, "the client never saw the disconnect"
