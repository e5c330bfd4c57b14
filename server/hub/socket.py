"""A client's connection to one namespace: what handlers receive and emit through.

A socket dispatches its own packets (events through their middlewares to the handlers,
acks to whoever waits for them); its namespace owns its life (``connect``, ``remove``), and
its connection runs the handlers. It knows both only through the small interfaces below, so
this module imports neither.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio

from server.hub.adapter import Adapter
from server.hub.broadcast import BroadcastOperator, check_event
from server.hub.errors import AckTimeout, Disconnected, EventRefused
from server.hub.handlers import Handler, call, without
from server.hub.handshake import Handshake
from server.hub.protocol import socketio as sio
from server.hub.selection import BroadcastOptions

if TYPE_CHECKING:
    from server.hub.engine import Session

log = logging.getLogger("hub")

#: ``middleware(socket, event, args)``: run before an incoming event's handlers.
IncomingMiddleware = Callable[["Socket", str, tuple[Any, ...]], Any]


class SocketOwner(Protocol):
    """What a socket asks of its namespace."""

    @property
    def name(self) -> str: ...

    @property
    def adapter(self) -> Adapter: ...

    @property
    def ack_timeout(self) -> float: ...

    def next_ack_id(self) -> int: ...

    def handler_for(self, event: str) -> Handler | None: ...

    @property
    def any_handlers(self) -> Sequence[Handler]: ...

    @property
    def incoming(self) -> Sequence[IncomingMiddleware]: ...

    async def remove(self, socket: Socket, reason: str) -> None:
        """The socket leaves the namespace (its clean-up: rooms, acks, handlers)."""

    def watch_outgoing(self, socket: Socket, watching: bool) -> None:
        """Whether ``socket`` has listeners of its outgoing packets (broadcasts included)."""


class Connection(Protocol):
    """What a socket asks of the connection (the Engine.IO session) it runs on."""

    session: Session
    #: The hub's counters (``handler_errors``, ``events_refused``, ...).
    stats: Counter[str]

    def send_packet(self, packet: sio.Packet, *, volatile: bool = False) -> bool: ...

    async def run(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        socket: Socket,
        ack_id: int | None,
        event: str,
    ) -> None:
        """Run ``handler(*args)``: a plain one at once, an ``async`` one in the connection's
        task tree; its return value answers ``ack_id``."""

    async def disconnect_all(self) -> None:
        """Disconnect every namespace and close the connection."""

    def detach(self, socket: Socket) -> None:
        """``socket`` left its namespace: the connection forgets it."""


@dataclass(slots=True)
class _AckWaiter:
    on_answer: Callable[[Any], None]
    on_gone: Callable[[], None]


class _Emitter:
    """``socket.volatile`` and ``socket.timeout(s)``: the same emits, one way or the other
    different."""

    __slots__ = ("_socket", "_timeout", "_volatile")

    def __init__(self, socket: Socket, *, volatile: bool = False, timeout: float | None = None):
        self._socket = socket
        self._volatile = volatile
        self._timeout = timeout

    def emit(self, event: str, *args: Any) -> bool:
        return self._socket._emit(event, args, volatile=self._volatile)

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        return await self._socket.emit_with_ack(event, *args, timeout=self._timeout)


@dataclass(eq=False)
class Socket:
    id: str
    nsp: SocketOwner
    client: Connection
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
    recovery_base: Any = field(default=0, repr=False)
    _acks: dict[int, _AckWaiter] = field(default_factory=dict, repr=False)
    _use: list[IncomingMiddleware] = field(default_factory=list, repr=False)
    _any: list[Handler] = field(default_factory=list, repr=False)
    _any_outgoing: list[Callable[..., Any]] = field(default_factory=list, repr=False)

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

    # ---- listeners of its own --------------------------------------------------------------
    def use(self, middleware: IncomingMiddleware) -> IncomingMiddleware:
        """Run ``middleware(socket, event, args)`` before the handlers of each event this
        socket receives (after the namespace's ``use_incoming`` ones). Raise
        :class:`~server.hub.errors.EventRefused` to refuse the event: its ack gets the
        refusal's ``answer``. A middleware that fails otherwise refuses the event too (logged,
        counted). Either way the namespace's ``error`` handler, if any, is called with
        ``(socket, error)``, as socket.io's ``socket.use`` emits ``error`` for ``next(err)``."""
        self._use.append(middleware)
        return middleware

    def on_any(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``listener(event, *args)`` for every event this socket receives (plain or
        ``async``, as a handler)."""
        self._any.append(Handler.of(listener))
        return listener

    def off_any(self, listener: Callable[..., Any] | None = None) -> None:
        """Remove ``listener``, or every catch-all listener."""
        without(self._any, listener)

    def on_any_outgoing(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``listener(event, *args)`` for every event sent to this socket, broadcasts
        included (acks are not events)."""
        self._any_outgoing.append(listener)
        self.nsp.watch_outgoing(self, True)
        return listener

    def off_any_outgoing(self, listener: Callable[..., Any] | None = None) -> None:
        _remove(self._any_outgoing, listener)
        self.nsp.watch_outgoing(self, bool(self._any_outgoing))

    def outgoing(self, data: list[Any]) -> None:
        """An event (``[name, *args]``) went out to this socket: tell the listeners."""
        for listener in list(self._any_outgoing):
            try:
                listener(*data)
            except Exception:
                self.client.stats["handler_errors"] += 1
                log.exception("outgoing listener of socket %s failed", self.id)

    # ---- sending -----------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to this client; never waits. False if it was not queued."""
        return self._emit(event, args, volatile=False)

    @property
    def volatile(self) -> _Emitter:
        return _Emitter(self, volatile=True)

    def timeout(self, seconds: float) -> _Emitter:
        """``socket.timeout(5).emit_with_ack(...)``: wait ``seconds`` for this one."""
        return _Emitter(self, timeout=seconds)

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
        if self._any_outgoing:
            self.outgoing(packet.data)
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

        self._acks[ack_id] = _AckWaiter(on_answer, on_gone)
        packet = sio.Packet(sio.PacketType.EVENT, self.nsp.name, [event, *args], ack_id)
        if self._any_outgoing:
            self.outgoing(packet.data)
        self._send(packet)
        limit = timeout if timeout is not None else self.nsp.ack_timeout
        with trio.move_on_after(limit):
            await done.wait()
        self._acks.pop(ack_id, None)
        if gone:
            raise Disconnected(f"socket {self.id} disconnected before acknowledging {event!r}")
        if not result:
            raise AckTimeout(f"no acknowledgement of {event!r} within {limit} s")
        return _unpack(result[0])

    def expect_ack(
        self, ack_id: int, answered: Callable[[Any], None], gone: Callable[[], None]
    ) -> None:
        """A broadcast with acks reached this socket: ``answered`` gets the first argument of
        its ack, ``gone`` is called if it disconnects first."""
        self._acks[ack_id] = _AckWaiter(lambda args: answered(args[0] if args else None), gone)

    def forget_ack(self, ack_id: int) -> None:
        self._acks.pop(ack_id, None)

    def fail_acks(self) -> None:
        """The socket is gone: whoever waits for one of its acks is told so."""
        acks, self._acks = self._acks, {}
        for waiter in acks.values():
            waiter.on_gone()

    def answer(self, ack_id: int, value: Any) -> None:
        """Answer the client's ack ``ack_id`` with a handler's return value."""
        if value is None:
            data: list[Any] = []
        elif isinstance(value, tuple):
            data = list(value)
        else:
            data = [value]
        self._send(sio.Packet(sio.PacketType.ACK, self.nsp.name, data, ack_id))

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
        await self.nsp.remove(self, "server namespace disconnect")

    # ---- receiving ---------------------------------------------------------------------
    async def receive(self, packet: sio.Packet) -> None:
        """A packet the client sent to this namespace."""
        kind = packet.type
        if kind is sio.PacketType.EVENT:
            event, *args = packet.data
            await self._on_event(event, tuple(args), packet.id)
        elif kind is sio.PacketType.ACK:
            waiter = self._acks.pop(packet.id, None) if packet.id is not None else None
            if waiter is not None:
                waiter.on_answer(packet.data)
        elif kind is sio.PacketType.DISCONNECT:
            await self.nsp.remove(self, "client namespace disconnect")
        # CONNECT and CONNECT_ERROR never reach a connected socket (its connection sees to it)

    async def _on_event(self, event: str, args: tuple[Any, ...], ack_id: int | None) -> None:
        nsp = self.nsp
        if (nsp.incoming or self._use) and not await self._admit(event, args, ack_id):
            return
        client = self.client
        for listener in self._any:
            await client.run(listener, (event, *args), self, None, event)
        for catch_all in nsp.any_handlers:
            await client.run(catch_all, (self, event, *args), self, None, event)
        handler = nsp.handler_for(event)
        if handler is not None:
            await client.run(handler, (self, *args), self, ack_id, event)

    async def _admit(self, event: str, args: tuple[Any, ...], ack_id: int | None) -> bool:
        """The incoming-event middlewares (the namespace's, then this socket's): False if
        one refused the event."""
        stats = self.client.stats
        for middleware in (*self.nsp.incoming, *self._use):
            try:
                await call(middleware, self, event, args)
            except EventRefused as refusal:
                stats["events_refused"] += 1
                if ack_id is not None and refusal.answer is not None:
                    self.answer(ack_id, refusal.answer)
                await self._error(refusal)
                if refusal.disconnect:
                    log.info(
                        "socket %s: %r refused (%s): disconnecting it",
                        self.id,
                        event,
                        refusal.reason,
                    )
                    await self.disconnect()
                return False
            except Exception as error:
                stats["handler_errors"] += 1
                log.exception("incoming middleware of %s failed on %r", self.nsp.name, event)
                await self._error(error)
                return False
        return True

    async def _error(self, error: Exception) -> None:
        """The namespace's ``error`` handler, if any, hears of a refused event."""
        on_error = self.nsp.handler_for("error")
        if on_error is not None:
            await self.client.run(on_error, (self, error), self, None, "error")


def _remove(listeners: list[Callable[..., Any]], listener: Callable[..., Any] | None) -> None:
    if listener is None:
        listeners.clear()
    else:
        while listener in listeners:
            listeners.remove(listener)


def _unpack(args: list[Any]) -> Any:
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


__all__ = ["AckTimeout", "Disconnected", "Handshake", "Socket"]
