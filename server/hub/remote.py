"""A socket of another process, as ``fetch_sockets`` lists it when a bridge links processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.hub.broadcast import BroadcastOperator
from server.hub.handshake import Handshake


@dataclass(eq=False)
class RemoteSocket:
    """What another node told about one of its sockets: a snapshot, read-only.

    It has the attributes handlers read on a :class:`~server.hub.socket.Socket` (``id``,
    ``handshake``, ``rooms``, ``data``), and its actions go through the cluster: ``emit``
    is a broadcast to the socket's own room, the others are requests to every node.
    """

    id: str
    #: Every socket of its namespace, on every node: what this one's actions narrow down.
    everyone: BroadcastOperator = field(repr=False)
    handshake: Handshake
    rooms: set[str] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)
    #: Always False: it is not one of this process's sockets.
    local: bool = field(default=False, init=False)

    def emit(self, event: str, *args: Any) -> int:
        """Send ``event`` to this socket through the bridge; never waits."""
        return self.everyone.to(self.id).emit(event, *args)

    async def join(self, *rooms: str) -> None:
        await self.everyone.to(self.id).sockets_join(*rooms)

    async def leave(self, *rooms: str) -> None:
        await self.everyone.to(self.id).sockets_leave(*rooms)

    async def disconnect(self, close: bool = False) -> None:
        await self.everyone.to(self.id).disconnect_sockets(close)
