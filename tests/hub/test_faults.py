"""A fault stays inside its connection.

What any one client sends, and whatever goes wrong in one connection's reader, writer, poll
or tasks, ends at most that connection: logged with its sid, counted, and never a sibling or
the process. Each test runs the hub inside the test's own ``trio.run``: an error escaping
the hub's nurseries would fail the test with it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import socketio
import trio
import trio.lowlevel

from server.hub import Hub, Socket
from server.hub.engine import websocket
from server.hub.engine.session import Session
from server.hub.engine.websocket import WebSocketTransport
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client
from tests.hub.test_backpressure import stalled_client, transport_of

#: A lone UTF-16 surrogate, as a client writes it in JSON: an escape, six ASCII characters.
LONE = "\\ud800"


def relay_hub() -> tuple[Hub, list[Socket]]:
    """``relay`` sends what it got to everyone (``cursorMove`` in the service does so)."""
    hub = Hub(ping_interval=5, ping_timeout=5)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)

    @hub.on("relay")
    def relay(socket: Socket, value: Any) -> str:
        hub.emit("relayed", value)
        return "ok"

    return hub, sockets


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_a_lone_surrogate_reaches_polling_and_backlogged_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The surrogate goes out as the escape it came in as: to a long-polling member (its
    GET encodes the body) and to a WebSocket member with a backlog (its writer task)."""
    monkeypatch.setattr(websocket, "CLOSE_FLUSH_TIMEOUT", 30.0)
    hub, sockets = relay_hub()
    async with serving(hub) as url:
        got: list[Any] = []
        polling = socketio.Client(reconnection=False)
        polling.on("relayed", got.append)
        await trio.to_thread.run_sync(
            lambda: polling.connect(url, transports=["polling"], wait_timeout=5)
        )
        stalled = stalled_client(url, b"40")
        await wait_for(lambda: len(sockets) == 2)
        backlogged = transport_of(hub, sockets[1])
        blob = "z" * 60_000
        while not backlogged._writer_running:  # fill the pipe until it has a backlog
            sockets[1].emit("blob", blob)
            await trio.lowlevel.checkpoint()
        async with raw_client(url) as bomber:
            await bomber.send_text(f'421["relay",{{"taskId":"{LONE}","{LONE}":1}}]')
            # the bomber is a member too: the relay, then the answer to its ack
            assert await bomber.receive_event("relayed") == [{"taskId": "\ud800", "\ud800": 1}]
            assert (await bomber.receive()).data == ["ok"]
            await wait_for(lambda: got)
            assert got == [{"taskId": "\ud800", "\ud800": 1}]  # the very string sent
            # the backlogged member reads at last: its writer task writes the backlog, the
            # surrogate packet included
            peer = trio.socket.from_stdlib_socket(stalled)
            seen = b""
            with trio.fail_after(10):
                while b'"relayed",{"taskId":"\\ud800"' not in seen[-200_000:]:
                    seen += await peer.recv(1 << 16)
            assert backlogged.writer_writes > 0
            assert sockets[1].connected
            # and everyone is still served
            await bomber.send_text('422["relay","after"]')
            assert await bomber.receive_event("relayed") == ["after"]
        await wait_for(lambda: "after" in got)
        assert hub.engine.totals()["connection_errors"] == 0
        await trio.to_thread.run_sync(polling.disconnect)
        stalled.close()


class _FailingStream:
    """A stream whose writes fail as a bug in our own code would."""

    def __init__(self, real: trio.abc.Stream) -> None:
        self.real = real

    async def send_all(self, data: bytes) -> None:
        raise RuntimeError("injected writer failure")

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.real.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_a_failing_writer_ends_only_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub, sockets = relay_hub()
    async with serving(hub) as url, raw_client(url) as victim, raw_client(url) as sibling:
        await wait_for(lambda: len(sockets) == 2)
        doomed = sockets[0]
        transport = transport_of(hub, doomed)
        transport.stream = _FailingStream(transport.stream)  # type: ignore[assignment]
        transport._fd = None  # no direct writes: everything goes through the writer
        sid = doomed.client.session.sid
        doomed.emit("hello")  # the writer starts, and fails
        assert await victim.closed()
        await wait_for(lambda: not doomed.connected)
        assert hub.engine.totals()["connection_errors"] == 1
        assert any(sid in r.getMessage() and r.exc_info for r in caplog.records)
        # the sibling and new connections are served as before
        await sibling.emit("relay", "still here", ack=True)
        assert (await sibling.receive_event("relayed")) == ["still here"]
        async with raw_client(url) as newcomer:
            await newcomer.emit("relay", "new", ack=True)
            assert (await newcomer.receive_event("relayed")) == ["new"]


async def test_a_failing_poll_ends_only_its_session(monkeypatch: pytest.MonkeyPatch) -> None:
    hub, sockets = relay_hub()
    async with serving(hub) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        await http.post("/socket.io/", params=params, content="40")
        assert (await http.get("/socket.io/", params=params)).text.startswith("40")
        session = hub.engine.sessions[sid]

        take_all = Session.take_all

        def broken(self: Session, max_bytes: int | None = None) -> list[Any]:
            if self is session:
                raise RuntimeError("injected poll failure")
            return take_all(self, max_bytes)

        monkeypatch.setattr(Session, "take_all", broken)
        sockets[0].emit("hello")
        with pytest.raises(httpx.HTTPError):  # the connection is closed, no answer
            await http.get("/socket.io/", params=params)
        assert sid not in hub.engine.sessions
        assert hub.engine.totals()["connection_errors"] == 1
        async with raw_client(url) as other:
            await other.emit("relay", "fine", ack=True)
            assert (await other.receive_event("relayed")) == ["fine"]


async def test_a_failing_task_of_a_session_ends_that_session() -> None:
    hub, sockets = relay_hub()
    async with serving(hub) as url, raw_client(url) as victim, raw_client(url) as sibling:
        await wait_for(lambda: len(sockets) == 2)
        session: Session = sockets[0].client.session
        assert session.nursery is not None

        async def boom() -> None:
            raise RuntimeError("injected task failure")

        session.nursery.start_soon(boom)
        assert await victim.closed()
        assert session.fault is not None
        assert hub.engine.totals()["connection_errors"] == 1
        await sibling.emit("relay", "x", ack=True)
        assert (await sibling.receive_event("relayed")) == ["x"]


async def test_an_answer_that_cannot_be_sent_is_the_handlers_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that answers an ack with something JSON cannot carry: logged and counted
    as the handler's error, and the connection goes on."""
    hub = Hub()

    @hub.on("odd")
    def odd(socket: Socket) -> Any:
        return {1, 2}

    @hub.on("odd_async")
    async def odd_async(socket: Socket) -> Any:
        return float("nan")

    @hub.on("fine")
    def fine(socket: Socket) -> str:
        return "fine"

    async with serving(hub) as url, raw_client(url) as client:
        with caplog.at_level(logging.ERROR, "hub"):
            await client.emit("odd", ack=True)
            await client.emit("odd_async", ack=True)
            await client.emit("fine", ack=True)
            assert (await client.receive()).data == ["fine"]
        assert hub.stats["handler_errors"] == 2
        assert "cannot be sent" in caplog.text
        assert hub.engine.totals()["connection_errors"] == 0


async def test_the_websocket_transport_of_a_socket_is_what_the_tests_think() -> None:
    # a guard for the helpers above: the hub's sockets run on our WebSocket transport
    hub, sockets = relay_hub()
    async with serving(hub) as url, raw_client(url):
        await wait_for(lambda: sockets)
        assert isinstance(sockets[0].client.session.transport, WebSocketTransport)


async def test_a_failing_reader_ends_only_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met while a message is read (here: the layer above raises) ends that session."""
    hub, sockets = relay_hub()
    async with serving(hub) as url, raw_client(url) as victim, raw_client(url) as sibling:
        await wait_for(lambda: len(sockets) == 2)
        session: Session = sockets[0].client.session

        async def broken(data: str | bytes) -> None:
            raise RuntimeError("injected reader failure")

        monkeypatch.setattr(sockets[0].client, "on_message", broken)
        await victim.emit("relay", "boom")
        assert await victim.closed()
        await wait_for(lambda: not sockets[0].connected)  # its clean-up has run
        assert session.fault is not None
        assert hub.engine.totals()["connection_errors"] == 1
        await sibling.emit("relay", "fine", ack=True)
        assert (await sibling.receive_event("relayed")) == ["fine"]


async def open_unjoined(port: int, source: str) -> trio.SocketStream:
    """A WebSocket from ``source`` (a 127.x.y.z address) that never sends CONNECT."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    seen = b""
    with trio.fail_after(3):
        while b'"sid"' not in seen:  # the 101, then the Engine.IO OPEN packet
            seen += await stream.receive_some(4096)
    return stream


async def closed_by_server(stream: trio.SocketStream) -> bool:
    with trio.fail_after(3):
        while True:
            try:
                data = await stream.receive_some(4096)
            except trio.BrokenResourceError:
                return True
            if not data or b"\x88" in data:  # EOF, or a close frame
                return True


async def test_connections_that_never_join_are_capped_oldest_first() -> None:
    """A WebSocket that never sends CONNECT holds a descriptor until the connect timeout:
    past the per-address (or overall) cap the oldest waiting one is closed to make room."""
    hub, _ = relay_hub()
    hub.connect_deadlines.per_address = 3
    hub.connect_deadlines.overall = 5
    async with serving(hub) as url:
        port = int(url.rsplit(":", 1)[1])
        waiting = [await open_unjoined(port, "127.0.0.2") for _ in range(3)]
        assert hub.connect_deadlines.waiting == 3
        waiting.append(await open_unjoined(port, "127.0.0.2"))
        assert await closed_by_server(waiting.pop(0))  # the oldest from that address
        waiting += [await open_unjoined(port, "127.0.0.3") for _ in range(2)]
        assert hub.connect_deadlines.waiting == 5
        async with raw_client(url) as joined:  # past the overall cap: the oldest of all goes
            assert await closed_by_server(waiting.pop(0))
            await joined.emit("relay", "in", ack=True)
            assert (await joined.receive_event("relayed")) == ["in"]
            assert hub.connect_deadlines.waiting == 4  # a joined one no longer waits
        assert hub.connect_deadlines.evicted == 2
        for stream in waiting:
            await stream.aclose()
        await wait_for(lambda: hub.connect_deadlines.waiting == 0)
