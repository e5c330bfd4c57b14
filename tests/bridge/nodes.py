"""Hubs linked by a bridge, served on loopback inside the test's own task tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from server.hub import Hub, Socket
from server.hub.bridge import Bridge
from server.hub.config import HubConfig
from server.hub.protocol import socketio as sio
from tests.hub.rawclient import RawClient


@dataclass
class Node:
    hub: Hub
    bridge: Bridge
    url: str


def build_hub(bridge: Bridge, config: HubConfig | None = None) -> Hub:
    """A hub whose clients can join and leave rooms, and say who they are."""
    hub = Hub(config, adapter_factory=bridge.adapter)

    @hub.use
    def name(socket: Socket) -> None:
        socket.data["name"] = socket.handshake.auth.get("name", "")

    @hub.on("join")
    def join(socket: Socket, *rooms: str) -> list[str]:
        socket.join(*rooms)
        return sorted(socket.rooms)

    @hub.on("leave")
    def leave(socket: Socket, room: str) -> None:
        socket.leave(room)

    @hub.on("say")
    def say(socket: Socket, room: str, *args: Any) -> None:
        socket.to(room).emit("said", *args)

    return hub


@asynccontextmanager
async def bridged_node(
    redis_url: str,
    *,
    config: HubConfig | None = None,
    setup: Callable[[Hub], None] | None = None,
    **bridge_options: Any,
) -> AsyncIterator[Node]:
    """A node serving on a free port; ``setup(hub)`` adds what a test needs before."""
    bridge = Bridge(redis_url, **bridge_options)
    hub = build_hub(bridge, config)
    if setup is not None:
        setup(hub)
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.run)
        listeners = await nursery.start(hub.serve, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        try:
            yield Node(hub, bridge, f"http://127.0.0.1:{port}")
        finally:
            nursery.cancel_scope.cancel()


async def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def joined(client: RawClient, *rooms: str) -> None:
    """``client`` joins ``rooms`` (the hubs' ``join`` event), answered."""
    await client.emit("join", *rooms, ack=True)
    answer = await client.receive()
    assert answer.type is sio.PacketType.ACK
