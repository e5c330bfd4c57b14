"""Graceful shutdown with clients connected: stop accepting, drain, close, clean up."""

from __future__ import annotations

import socket as stdsocket

import pytest
import socketio
import trio
from trio_websocket import ConnectionClosed

from server.hub import Hub, Socket
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client


async def test_shutdown_drains_handlers_then_closes_everyone() -> None:
    hub = Hub(connection_state_recovery=True)
    disconnects: list[str] = []
    finished: list[str] = []

    @hub.on("slow")
    async def slow(socket: Socket, label: str) -> str:
        await trio.sleep(0.3)
        finished.append(label)
        return f"{label} done"

    @hub.on("disconnect")
    def gone(socket: Socket, reason: str) -> None:
        disconnects.append(reason)

    async with serving(hub) as url:
        port = int(url.rsplit(":", 1)[1])
        async with raw_client(url) as a, raw_client(url) as b:
            ack_id = await a.emit("slow", "a", ack=True)
            hub.emit("queued before the close")
            await trio.sleep(0.05)  # the handler is running
            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(hub.shutdown, 4.0)
                    await trio.sleep(0.05)
                    # the listener is closed: a new connection is refused by the kernel
                    with pytest.raises(OSError):
                        stdsocket.create_connection(("127.0.0.1", port), timeout=1).close()
                    # what was queued, then the running handler's ack, then the close
                    assert await a.receive_event("queued before the close") == []
                    answer = await a.receive()
                    assert (answer.id, answer.data) == (ack_id, ["a done"])
                    assert await a.closed() and await b.closed()
            assert finished == ["a"]
            assert disconnects == ["server shutting down"] * 2
            assert hub.client_count == 0


async def test_shutdown_does_not_wait_past_its_grace_for_a_stuck_handler() -> None:
    hub = Hub()
    cancelled: list[bool] = []

    @hub.on("stuck")
    async def stuck(socket: Socket) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async with serving(hub) as url, raw_client(url) as client:
        await client.emit("stuck")
        await trio.sleep(0.05)
        started = trio.current_time()
        await hub.shutdown(0.5)
        assert trio.current_time() - started < 3  # a functional bound, not a benchmark
        assert cancelled == [True]
        with pytest.raises(ConnectionClosed):
            while True:
                await client.ws.get_message()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_python_socketio_comes_back_after_a_graceful_shutdown(transports: list[str]) -> None:
    """The stock python-socketio client reconnects by itself once the server is back: a
    graceful shutdown ends a WebSocket with its close frame alone, as Node's server does
    (python-socketio takes a CLOSE packet there as a final disconnect)."""
    first = Hub()
    async with serving(first) as url:
        port = int(url.rsplit(":", 1)[1])
        client = socketio.Client(reconnection=True, reconnection_delay=0.1)
        connects: list[str] = []
        client.on("connect", lambda: connects.append(client.transport()))
        await trio.to_thread.run_sync(
            lambda: client.connect(url, transports=transports, wait_timeout=5)
        )
        with trio.fail_after(5):
            while not connects or (len(transports) == 2 and client.transport() != "websocket"):
                await trio.sleep(0.05)
        await first.shutdown(2.0)
    second = Hub()
    try:
        async with serving(second, port):
            # python-socketio calls the connect handler before its connect() (on the
            # reconnecting thread) sets ``connected``: wait for both
            with trio.fail_after(10):
                while len(connects) < 2 or not client.connected:
                    await trio.sleep(0.05)
            assert len(connects) == 2
    finally:
        await trio.to_thread.run_sync(client.disconnect)
