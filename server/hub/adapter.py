"""The adapter: rooms of socket ids, and delivery of one encoded broadcast to the sockets it
is for.

:class:`Adapter` is the interface a namespace uses to reach its sockets as a group; the
in-memory :class:`LocalAdapter` implements it for this process, and a cluster adapter (the
Redis one in :mod:`server.hub.bridge`) wraps a local one and adds the other nodes, as
socket.io's ``cluster-adapter.ts`` and socketioxide's adapters do.

An adapter holds no socket: it knows socket ids, and reaches the sockets only through the
:class:`SocketEmitter` its namespace gives it (send to these ids, with or without acks,
disconnect these ids), the shape of socketioxide's ``SocketEmitter``. So this module depends
on neither the socket nor the namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol

import trio

from server.hub.engine import Wire
from server.hub.handshake import Handshake
from server.hub.protocol import socketio as sio
from server.hub.recovery import Recovery, RecoveryStore
from server.hub.selection import BroadcastOptions

log = logging.getLogger("hub")

__all__ = [
    "AckCollector",
    "Adapter",
    "AdapterFactory",
    "AllAcks",
    "BroadcastOptions",
    "ChildrenAdapter",
    "LocalAcks",
    "LocalAdapter",
    "RoomObserver",
    "SocketEmitter",
    "SocketLike",
]


class SocketLike(Protocol):
    """What ``fetch_sockets`` lists: a socket of this node, or a snapshot of another's."""

    id: str
    handshake: Handshake
    data: dict[str, Any]

    @property
    def rooms(self) -> set[str]: ...


class RoomObserver(Protocol):
    """Told of every change of this node's rooms (a socket's own room included), as Node's
    in-memory adapter emits ``join-room`` and ``leave-room``: once per actual change."""

    def room_joined(self, nsp: str, room: str, sid: str) -> None: ...

    def room_left(self, nsp: str, room: str, sid: str) -> None: ...


class SocketEmitter(Protocol):
    """What an adapter may ask of its namespace."""

    @property
    def name(self) -> str: ...

    @property
    def observers(self) -> Sequence[RoomObserver]:
        """Who is told of room changes (usually no one: then they cost a test of a list)."""
        ...

    def send(
        self,
        sids: Iterable[str],
        wire: Wire,
        *,
        volatile: bool = False,
        data: list[Any] | None = None,
    ) -> int:
        """Queue ``wire`` for each of these sockets; how many it was queued for. ``data`` is
        the event (``[name, *args]``) for the sockets' outgoing listeners."""

    def send_with_acks(
        self,
        sids: Iterable[str],
        wire: Wire,
        ack_id: int,
        answered: Callable[[Any], None],
        gone: Callable[[], None],
    ) -> list[str]:
        """The same, and each socket reached calls ``answered`` with its ack's first
        argument (or ``gone`` if it disconnects first); returns the sockets reached."""

    def forget_acks(self, sids: Iterable[str], ack_id: int) -> None:
        """Stop waiting for these sockets' acks of ``ack_id``."""

    def next_ack_id(self) -> int: ...

    def socket(self, sid: str) -> SocketLike | None:
        """This node's socket ``sid``, if it is connected."""

    async def disconnect(self, sids: Iterable[str], close: bool) -> None:
        """Disconnect these sockets (``close``: their whole connections)."""

    def server_side(self, event: str, args: list[Any], reply: Callable[[Any], None] | None) -> None:
        """A server-side event from another node, for this namespace's handlers."""


class AckCollector(Protocol):
    """The answers to one broadcast with acks, from this node and (with a cluster adapter)
    the others: one object, whoever sent to whom."""

    @property
    def responses(self) -> list[Any]:
        """The first argument of each ack received so far."""
        ...

    @property
    def missing(self) -> int:
        """Clients (or nodes) that have not answered yet."""
        ...

    async def wait(self) -> None:
        """Return once every client that got the packet answered (or went away)."""

    def forget(self) -> None:
        """Give up: answers that come later are ignored."""


class Adapter(Protocol):
    """What a namespace asks of its adapter."""

    @property
    def recovery(self) -> Recovery | None:
        """Connection state recovery (sessions, and the packets they may miss); None when
        it is off."""
        ...

    # rooms of socket ids (a socket is in its own room, named by its id)
    def add_all(self, sid: str, rooms: Iterable[str]) -> None: ...
    def delete(self, sid: str, room: str) -> None: ...
    def delete_all(self, sid: str) -> None: ...
    def socket_rooms(self, sid: str) -> set[str]: ...

    # delivery
    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        """Encode once, queue for every recipient; returns this node's recipients."""

    def broadcast_with_ack(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> AckCollector: ...

    # the selected sockets, acted on (on every node, unless ``opts.local``)
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketLike]: ...
    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None: ...
    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None: ...
    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None: ...

    # events between servers (none with one process alone)
    def server_side_emit(self, event: str, args: list[Any]) -> None: ...
    async def server_side_emit_with_ack(
        self, event: str, args: list[Any], timeout: float
    ) -> list[Any]: ...

    def close(self) -> None:
        """The namespace is gone (a dynamic namespace's child, dropped): stop listening for
        it (a cluster adapter's subscriptions) and forget its rooms."""


#: How a namespace gets its adapter: ``factory(emitter, recovery)``.
AdapterFactory = Callable[[SocketEmitter, RecoveryStore | None], Adapter]


class LocalAcks:
    """The acks of one broadcast to this node's sockets."""

    __slots__ = ("_ack_id", "_done", "_emitter", "_pending", "_reached", "responses")

    def __init__(self, emitter: SocketEmitter, ack_id: int) -> None:
        self.responses: list[Any] = []
        self._emitter = emitter
        self._ack_id = ack_id
        self._pending = 0
        self._done = trio.Event()
        self._reached: list[str] = []

    def send(self, sids: Iterable[str], wire: Wire) -> None:
        self._reached = self._emitter.send_with_acks(
            sids, wire, self._ack_id, self._answered, self._gone
        )
        self._pending = len(self._reached)
        if not self._pending:
            self._done.set()

    def _answered(self, value: Any) -> None:
        self.responses.append(value)
        self._gone()

    def _gone(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._done.set()

    @property
    def missing(self) -> int:
        return max(0, self._pending)

    async def wait(self) -> None:
        await self._done.wait()

    def forget(self) -> None:
        self._emitter.forget_acks(self._reached, self._ack_id)


class LocalAdapter:
    """This process's rooms, and delivery to its sockets."""

    __slots__ = ("emitter", "recovery", "rooms", "sids")

    def __init__(self, emitter: SocketEmitter, recovery: RecoveryStore | None = None) -> None:
        self.emitter = emitter
        self.recovery = recovery
        #: room -> socket ids in it, in the order they joined (a dict as an ordered set): a
        #: broadcast writes to them in that order (see :meth:`selected`)
        self.rooms: dict[str, dict[str, None]] = {}
        #: socket id -> its rooms (its own id among them): every socket connected here
        self.sids: dict[str, set[str]] = {}

    # ---- rooms -----------------------------------------------------------------------------
    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        mine = self.sids.setdefault(sid, set())
        observers = self.emitter.observers
        for room in rooms:
            if room in mine:
                continue
            mine.add(room)
            self.rooms.setdefault(room, {})[sid] = None
            if observers:
                self._tell(observers, True, room, sid)

    def delete(self, sid: str, room: str) -> None:
        mine = self.sids.get(sid)
        if mine is None or room not in mine:
            return
        mine.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.pop(sid, None)
            if not members:
                del self.rooms[room]
        observers = self.emitter.observers
        if observers:
            self._tell(observers, False, room, sid)

    def delete_all(self, sid: str) -> None:
        mine = self.sids.pop(sid, ())
        for room in mine:
            members = self.rooms.get(room)
            if members is not None:
                members.pop(sid, None)
                if not members:
                    del self.rooms[room]
        observers = self.emitter.observers
        if observers:
            for room in mine:
                self._tell(observers, False, room, sid)

    def _tell(self, observers: Sequence[RoomObserver], joined: bool, room: str, sid: str) -> None:
        nsp = self.emitter.name
        for observer in list(observers):
            try:
                if joined:
                    observer.room_joined(nsp, room, sid)
                else:
                    observer.room_left(nsp, room, sid)
            except Exception:
                log.exception("room observer %r failed", observer)

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    def selected(self, opts: BroadcastOptions) -> Iterator[str]:
        """The ids of this node's sockets that ``opts`` selects, each once."""
        excluded: set[str] = set()
        for room in opts.except_rooms:
            excluded.update(self.rooms.get(room, ()))
        if not opts.rooms:
            yield from [sid for sid in self.sids if sid not in excluded]
            return
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            yield from [sid for sid in self.rooms.get(room, ()) if sid not in excluded]
            return
        seen: set[str] = set()
        for room in opts.rooms:
            for sid in list(self.rooms.get(room, ())):
                if sid not in seen and sid not in excluded:
                    seen.add(sid)
                    yield sid

    # ---- delivery ----------------------------------------------------------------------------
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
        wire = self.encode(packet, opts)
        return self.emitter.send(
            self.selected(opts), wire, volatile=opts.volatile, data=packet.data
        )

    def broadcast_with_ack(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> LocalAcks:
        # ``timeout`` is for cluster adapters (how long other nodes are waited for); the
        # caller stops waiting for this node's sockets itself
        assert packet.id is not None, "a broadcast with acks has an ack id"
        acks = LocalAcks(self.emitter, packet.id)
        acks.send(self.selected(opts), Wire.messages(sio.encode(packet)))
        return acks

    # ---- selections acted on -------------------------------------------------------------------
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketLike]:
        found = []
        for sid in self.selected(opts):
            socket = self.emitter.socket(sid)
            if socket is not None:
                found.append(socket)
        return found

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for sid in list(self.selected(opts)):
            self.add_all(sid, rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for sid in list(self.selected(opts)):
            for room in rooms:
                self.delete(sid, room)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        await self.emitter.disconnect(list(self.selected(opts)), close)

    # ---- server-side events: there is no other server ------------------------------------------
    def server_side_emit(self, event: str, args: list[Any]) -> None:
        return None

    async def server_side_emit_with_ack(
        self, event: str, args: list[Any], timeout: float
    ) -> list[Any]:
        return []

    def close(self) -> None:
        self.rooms.clear()
        self.sids.clear()


class AllAcks:
    """Several collectors as one (a parent namespace's broadcast, one per child)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: list[AckCollector]) -> None:
        self._parts = parts

    @property
    def responses(self) -> list[Any]:
        return [value for part in self._parts for value in part.responses]

    @property
    def missing(self) -> int:
        return sum(part.missing for part in self._parts)

    async def wait(self) -> None:
        for part in self._parts:
            await part.wait()

    def forget(self) -> None:
        for part in self._parts:
            part.forget()


class ChildrenAdapter:
    """The adapter of a parent namespace (dynamic namespaces): no sockets or rooms of its
    own; what is asked of it is asked of each child's adapter, the packet named for the
    child, as socket.io's ``ParentBroadcastAdapter`` does for broadcasts. ``children()``
    lists ``(name, adapter)`` of the children that exist now."""

    __slots__ = ("_children",)

    recovery = None

    def __init__(self, children: Callable[[], list[tuple[str, Adapter]]]) -> None:
        self._children = children

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        return None

    def delete(self, sid: str, room: str) -> None:
        return None

    def delete_all(self, sid: str) -> None:
        return None

    def socket_rooms(self, sid: str) -> set[str]:
        return set()

    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        return sum(
            adapter.broadcast(replace(packet, nsp=name), opts) for name, adapter in self._children()
        )

    def broadcast_with_ack(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> AllAcks:
        return AllAcks(
            [
                adapter.broadcast_with_ack(replace(packet, nsp=name), opts, timeout)
                for name, adapter in self._children()
            ]
        )

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketLike]:
        return [s for _, adapter in self._children() for s in await adapter.fetch_sockets(opts)]

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for _, adapter in self._children():
            await adapter.add_sockets(opts, rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        for _, adapter in self._children():
            await adapter.del_sockets(opts, rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        for _, adapter in self._children():
            await adapter.disconnect_sockets(opts, close)

    def server_side_emit(self, event: str, args: list[Any]) -> None:
        return None  # a parent is no namespace of the cluster's: its children are

    async def server_side_emit_with_ack(
        self, event: str, args: list[Any], timeout: float
    ) -> list[Any]:
        return []

    def close(self) -> None:
        return None
