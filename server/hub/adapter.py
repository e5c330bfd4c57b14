"""Rooms, and delivery of one encoded broadcast to every socket it is for.

The in-memory adapter is the narrow interface a cross-process adapter (the Redis bridge)
implements too: add and remove memberships, broadcast, list sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from server.hub.engine import Wire
from server.hub.protocol import socketio as sio
from server.hub.recovery import RecoveryStore

if TYPE_CHECKING:
    from server.hub.namespace import Namespace
    from server.hub.remote import RemoteSocket
    from server.hub.socket import Socket


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    #: Only this process: never relayed to other nodes.
    local: bool = False


class RemoteAcks(Protocol):
    """The other processes' part of a broadcast with acks (see ``acks_from_others``)."""

    #: Answers received so far: the first argument of each client's ack.
    answers: list[Any]

    @property
    def missing(self) -> int:
        """Clients (or nodes) that have not answered yet."""
        ...

    async def wait(self) -> None:
        """Return once every node reported and every client answered."""
        ...


@dataclass(slots=True)
class Adapter:
    nsp: Namespace
    #: Where packets are kept for connection state recovery; None when it is off.
    recovery: RecoveryStore | None = None
    rooms: dict[str, set[str]] = field(default_factory=dict)
    sids: dict[str, set[str]] = field(default_factory=dict)

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        mine = self.sids.setdefault(sid, set())
        for room in rooms:
            mine.add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def delete(self, sid: str, room: str) -> None:
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def delete_all(self, sid: str) -> None:
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    def matching(self, opts: BroadcastOptions) -> Iterator[Socket]:
        """The connected sockets a broadcast with ``opts`` reaches, each once."""
        sockets = self.nsp.sockets
        excluded: set[str] = set()
        for room in opts.except_rooms:
            excluded.update(self.rooms.get(room, ()))
        if opts.rooms:
            seen: set[str] = set()
            for room in opts.rooms:
                for sid in self.rooms.get(room, ()):
                    if sid in seen or sid in excluded:
                        continue
                    seen.add(sid)
                    socket = sockets.get(sid)
                    if socket is not None:
                        yield socket
        else:
            for sid, socket in list(sockets.items()):
                if sid not in excluded:
                    yield socket

    def encode(self, packet: sio.Packet, opts: BroadcastOptions) -> Wire:
        """Encode a broadcast once; with recovery on, a packet that can be given back later
        (an EVENT, no ack, not volatile) gets its offset as last argument and is stored."""
        recovery = self.recovery
        if (
            recovery is None
            or opts.volatile
            or packet.id is not None
            or packet.type is not sio.PacketType.EVENT
        ):
            return Wire.messages(sio.encode(packet))
        packet = replace(packet, data=[*packet.data, recovery.next_offset()])
        wire = Wire.messages(sio.encode(packet))
        recovery.store(opts, wire)
        return wire

    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        """Encode once, queue for every recipient; returns how many it was queued for."""
        wire = self.encode(packet, opts)
        count = 0
        for socket in list(self.matching(opts)):
            if socket.client.session.send(wire, volatile=opts.volatile):
                count += 1
        return count

    def broadcast_with_ack(self, packet: sio.Packet, opts: BroadcastOptions) -> list[Socket]:
        """Like :meth:`broadcast`, returning the sockets the packet was queued for."""
        wire = Wire.messages(sio.encode(packet))
        reached = []
        for socket in list(self.matching(opts)):
            if socket.client.session.send(wire, volatile=opts.volatile):
                reached.append(socket)
        return reached

    def acks_from_others(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> RemoteAcks | None:
        """Send a broadcast with acks to the other processes; None when there are none."""
        return None

    # ---- selections acted on (a bridge adds the other processes) -------------------------
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Socket | RemoteSocket]:
        return list(self.matching(opts))

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for socket in list(self.matching(opts)):
            socket.join(*rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for socket in list(self.matching(opts)):
            socket.leave(*rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        for socket in list(self.matching(opts)):
            await socket.disconnect(close)
