"""A client's connection to one namespace: what handlers receive and emit through."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from server.hub.adapter import BroadcastOptions
from server.hub.broadcast import BroadcastOperator, check_event
from server.hub.errors import AckTimeout, Disconnected
from server.hub.protocol import socketio as sio
from server.hub.recovery import RECOVERABLE_REASONS

if TYPE_CHECKING:
    from server.hub.client import Client
    from server.hub.namespace import Namespace

log = logging.getLogger("hub")


@dataclass(frozen=True, slots=True)
class Handshake:
    """The request that opened the connection, and the CONNECT packet's ``auth`` payload."""

    auth: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]
    #: The peer's IP address (the proxy's, behind one: see ``headers["x-forwarded-for"]``).
    address: str | None
    time: float
    url: str
    secure: bool = False


@dataclass(slots=True)
class _AckWaiter:
    on_answer: Callable[[Any], None]
    on_gone: Callable[[], None]


class _Emitter:
    """``socket.volatile``: the same emit, dropped rather than queued past the limit."""

    __slots__ = ("_socket",)

    def __init__(self, socket: Socket) -> None:
        self._socket = socket

    def emit(self, event: str, *args: Any) -> bool:
        return self._socket._emit(event, args, volatile=True)


@dataclass(eq=False)
class Socket:
    id: str
    nsp: Namespace
    client: Client
    handshake: Handshake
    #: Free for the application: user id, name, role and the like.
    data: dict[str, Any] = field(default_factory=dict)
    connected: bool = False
    #: True when this socket is a recovered one: same id, rooms and ``data`` as before the
    #: cut, and the events it missed have been sent again.
    recovered: bool = False
    #: The private session id that lets the client recover (None with recovery off).
    pid: str | None = field(default=None, repr=False)
    #: Where the recovery buffer stood when this socket (first) connected.
    recovery_base: int = field(default=0, repr=False)
    _acks: dict[int, _AckWaiter] = field(default_factory=dict, repr=False)

    # ---- rooms -------------------------------------------------------------------------
    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in, its own id included."""
        return self.nsp.adapter.socket_rooms(self.id)

    def join(self, *rooms: str) -> None:
        if self.connected:
            self.nsp.adapter.add_all(self.id, rooms)

    def leave(self, *rooms: str) -> None:
        for room in rooms:
            self.nsp.adapter.delete(self.id, room)

    # ---- sending -----------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to this client; never waits. False if it was not queued."""
        return self._emit(event, args, volatile=False)

    @property
    def volatile(self) -> _Emitter:
        return _Emitter(self)

    def _emit(self, event: str, args: tuple[Any, ...], *, volatile: bool) -> bool:
        check_event(event)
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args])
        adapter = self.nsp.adapter
        if adapter.recovery is not None and not volatile:
            # through the socket's own room, so the packet is stored with its offset
            if not self.connected:
                return False
            opts = BroadcastOptions(rooms=frozenset({self.id}), local=True)
            return adapter.broadcast(packet, opts) > 0
        return self._send(packet, volatile)

    def _send(self, packet: sio.Packet, volatile: bool = False) -> bool:
        if not self.connected:
            return False
        return self.client.send_packet(packet, volatile=volatile)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send ``event`` and wait for the client's acknowledgement.

        Returns what the client passed to its callback: ``None`` for nothing, the value for
        one argument, a tuple for several. Raises :class:`AckTimeout` after ``timeout``
        seconds (the hub's ``ack_timeout`` by default) and :class:`Disconnected` if the
        socket goes away first.
        """
        check_event(event)
        if not self.connected:
            raise Disconnected(f"socket {self.id} is not connected")
        ack_id = self.nsp.next_ack_id()
        result: list[Any] = []
        gone = False
        done = trio.Event()

        def on_answer(args: Any) -> None:
            result.append(args)
            done.set()

        def on_gone() -> None:
            nonlocal gone
            gone = True
            done.set()

        self._acks[ack_id] = _AckWaiter(lambda args: on_answer(args), on_gone)
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args], ack_id)
        self._send(packet)
        limit = timeout if timeout is not None else self.nsp.hub.ack_timeout
        with trio.move_on_after(limit):
            await done.wait()
        self._acks.pop(ack_id, None)
        if gone:
            raise Disconnected(f"socket {self.id} disconnected before acknowledging {event!r}")
        if not result:
            raise AckTimeout(f"no acknowledgement of {event!r} within {limit} s")
        return _unpack(result[0])

    # called by BroadcastOperator.emit_with_ack: the answer is the ack's first argument
    def _expect_ack(
        self, ack_id: int, answered: Callable[[Any], None], gone: Callable[[], None]
    ) -> None:
        self._acks[ack_id] = _AckWaiter(lambda args: answered(args[0] if args else None), gone)

    def _forget_ack(self, ack_id: int) -> None:
        self._acks.pop(ack_id, None)

    # ---- selections --------------------------------------------------------------------
    def to(self, *rooms: str) -> BroadcastOperator:
        """Everyone in ``rooms`` except this socket."""
        return self.broadcast.to(*rooms)

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        return self.broadcast.except_(*rooms)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace except this socket."""
        return BroadcastOperator(self.nsp, BroadcastOptions(except_rooms=frozenset({self.id})))

    # ---- disconnecting -----------------------------------------------------------------
    async def disconnect(self, close: bool = False) -> None:
        """Disconnect from this namespace; ``close=True`` closes the whole connection."""
        if close:
            await self.client.disconnect_all()
            return
        if not self.connected:
            return
        self._send(sio.Packet(sio.PacketType.DISCONNECT, self.nsp.name))
        await self._on_close("server namespace disconnect")

    async def _on_close(self, reason: str) -> None:
        """Leave every room, fail pending acks, run the ``disconnect`` handler (once)."""
        if not self.connected:
            return
        await self.nsp.run_handler(self, "disconnecting", (reason,), required=False)
        recovery = self.nsp.adapter.recovery
        if recovery is not None and self.pid is not None and reason in RECOVERABLE_REASONS:
            recovery.save(self.id, self.pid, self.rooms, self.data, self.recovery_base)
        self.connected = False
        self.nsp.adapter.delete_all(self.id)
        self.nsp.sockets.pop(self.id, None)
        self.client.sockets.pop(self.nsp.name, None)
        acks, self._acks = self._acks, {}
        for waiter in acks.values():
            waiter.on_gone()
        await self.nsp.run_handler(self, "disconnect", (reason,), required=False)

    # ---- receiving ---------------------------------------------------------------------
    async def _on_packet(self, packet: sio.Packet) -> None:
        kind = packet.type
        if kind is sio.PacketType.EVENT:
            event, *args = packet.data
            await self.client.dispatch(self, event, tuple(args), packet.id)
        elif kind is sio.PacketType.ACK:
            waiter = self._acks.pop(packet.id, None) if packet.id is not None else None
            if waiter is not None:
                waiter.on_answer(packet.data)
        elif kind is sio.PacketType.DISCONNECT:
            await self._on_close("client namespace disconnect")
        # CONNECT_ERROR from a client means nothing; a second CONNECT is handled by Client.

    def _answer(self, ack_id: int, value: Any) -> None:
        if value is None:
            data: list[Any] = []
        elif isinstance(value, tuple):
            data = list(value)
        else:
            data = [value]
        self._send(sio.Packet(sio.PacketType.ACK, self.nsp.name, data, ack_id))


def _unpack(args: list[Any]) -> Any:
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a handler that may be a plain function or a coroutine function."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


__all__ = ["AckTimeout", "Disconnected", "Handshake", "Socket"]
