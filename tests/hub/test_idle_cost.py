"""An idle Socket.IO connection over TCP is one task of ours (see tests/engine/test_idle_cost):
no task for its session, no writer, and none for the Socket.IO layer."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack

import trio.testing

from server.hub import Hub, Socket
from tests.engine.test_idle_cost import SERVER, server_tasks
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client


async def test_an_idle_connection_is_one_task() -> None:
    hub = Hub()
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)

    @hub.on("echo")
    async def echo(socket: Socket, value: str) -> str:  # an async handler: a task while it runs
        return value

    async with serving(hub) as url, AsyncExitStack() as clients:
        first = await clients.enter_async_context(raw_client(url))
        await first.emit("echo", "x", ack=True)
        assert (await first.receive()).data == ["x"]
        await trio.testing.wait_all_tasks_blocked()
        before = server_tasks(SERVER)
        for _ in range(3):
            client = await clients.enter_async_context(raw_client(url))
            await client.emit("echo", "y", ack=True)
            assert (await client.receive()).data == ["y"]
        await trio.testing.wait_all_tasks_blocked()
        assert len(sockets) == 4
        assert server_tasks(SERVER) - before == Counter({"EngineServer.handle_stream": 3})
