"""A namespace: its sockets, rooms (through its adapter), middlewares and handlers.

The namespace owns each socket's whole life, as socket.io's ``namespace.ts`` does:
:meth:`Namespace.connect` takes a CONNECT (recovery, middlewares, the answer, the
``connect`` handler), :meth:`Namespace.remove` lets a socket go (its rooms, its acks, the
``disconnecting`` and ``disconnect`` handlers, its recovery state). It is also what its
adapter reaches sockets through (:class:`~server.hub.adapter.SocketEmitter`).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import trio

from server.hub.adapter import Adapter, AdapterFactory, ChildrenAdapter, RoomObserver, SocketLike
from server.hub.broadcast import BroadcastOperator
from server.hub.config import HubConfig
from server.hub.engine import DirectWrites, Session, Wire, current_ticker
from server.hub.engine.ids import random_id
from server.hub.errors import ConnectRefused, RecoveryDeclined
from server.hub.handlers import Handler, call, without
from server.hub.handshake import Handshake
from server.hub.protocol import socketio as sio
from server.hub.recovery import RECOVERABLE_REASONS, RecoveryStore, Restored
from server.hub.socket import Connection, IncomingMiddleware, Socket

log = logging.getLogger("hub")

Middleware = Callable[[Socket], Any]
H = TypeVar("H", bound=Callable[..., Any])
#: ``matcher(name, auth)``, plain or ``async``: may a client create namespace ``name``?
NamespaceMatcher = Callable[[str, dict[str, Any]], Any]


class NamespaceObserver(RoomObserver, Protocol):
    """Told of the sockets that connect to and leave a namespace (after its middlewares
    accepted one, before its ``connect`` handler; after its ``disconnect`` handlers), and of
    room changes (see :class:`~server.hub.adapter.RoomObserver`): ``hub.observe(observer)``.
    Called inline, so quick; an observer that raises is logged and the others still run."""

    def socket_connected(self, socket: Socket) -> None: ...

    def socket_disconnected(self, socket: Socket, reason: str) -> None: ...


class NamespaceClient(Connection, Protocol):
    """What a namespace asks of the connection a CONNECT came on."""

    def attach(self, socket: Socket) -> None:
        """``socket`` is connected: its namespace's packets go to it from now on."""

    def joined(self) -> None:
        """A namespace accepted this connection (the connect timeout no longer applies)."""

    def replay(self, wires: Iterable[Wire]) -> None:
        """Queue packets already in memory (what a recovered socket missed), past the
        queue's bounds."""


class Namespace:
    """Handlers get the :class:`Socket` first, then the event's arguments.

    ``connect`` handlers get ``(socket)``, ``disconnect`` and ``disconnecting`` handlers get
    ``(socket, reason)``. An event handler's return value answers the client's ack: ``None``
    answers with no arguments, a tuple with several. Handlers may be plain functions (run at
    once, in order) or ``async`` (started in order, run concurrently within a bound).
    """

    def __init__(
        self,
        name: str,
        config: HubConfig,
        stats: Counter[str],
        adapter_factory: AdapterFactory,
        observers: list[NamespaceObserver] | None = None,
    ) -> None:
        if not name.startswith("/"):
            raise ValueError(f"a namespace name starts with '/': {name!r}")
        self._name = name
        self.config = config
        self.stats = stats
        self.sockets: dict[str, Socket] = {}
        #: Each socket's Engine.IO session, by socket id: what a broadcast writes to. A
        #: broadcast to 1,000 sockets touches 1,000 of these and nothing else per socket
        #: (through ``socket.client.session`` it cost ~1.4 µs more per delivery: two more
        #: objects per socket, cold in the cache between two system calls).
        self._sessions: dict[str, Session] = {}
        self._handlers: dict[str, Handler] = {}
        self._any: list[Handler] = []
        self._middlewares: list[Middleware] = []
        self._incoming: list[IncomingMiddleware] = []
        self._server_side: dict[str, Handler] = {}
        #: Sockets with listeners of their outgoing packets (see Socket.on_any_outgoing).
        self._outgoing: set[Socket] = set()
        #: Ack ids of the packets this namespace sends (shared with a parent's children, so
        #: a socket never waits for two acks of one id).
        self._ack_ids = itertools.count()
        #: Where work of the namespace's own runs (``async`` server-side handlers).
        self._tasks: trio.Nursery | None = None
        #: Called when the last socket leaves (a dynamic namespace's child goes then).
        self._on_empty: Callable[[Namespace], None] | None = None
        #: Told of sockets and rooms (the hub's list, shared by all its namespaces).
        self._observers: list[NamespaceObserver] = observers if observers is not None else []
        recovery = None
        if config.connection_state_recovery:
            recovery = RecoveryStore(
                config.max_disconnection_duration,
                config.recovery_buffer,
                max_bytes=config.recovery_buffer_bytes,
            )
        self._adapter: Adapter = adapter_factory(self, recovery)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} sockets={len(self.sockets)}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def adapter(self) -> Adapter:
        return self._adapter

    @property
    def ack_timeout(self) -> float:
        return self.config.ack_timeout

    @property
    def observers(self) -> list[NamespaceObserver]:
        return self._observers

    # ---- registration ------------------------------------------------------------------
    def on(self, event: str, handler: H | None = None) -> Any:
        """Register the handler of ``event``, directly or as a decorator."""

        def register(fn: H) -> H:
            self._handlers[event] = Handler.of(fn)
            return fn

        return register(handler) if handler is not None else register

    def on_any(self, handler: H) -> H:
        """Called as ``handler(socket, event, *args)`` for every incoming event."""
        self._any.append(Handler.of(handler))
        return handler

    def off_any(self, handler: Callable[..., Any] | None = None) -> None:
        """Remove ``handler`` (or every one) of :meth:`on_any`."""
        without(self._any, handler)

    def use(self, middleware: Middleware) -> Middleware:
        """Run ``middleware(socket)`` before a connection is accepted, in order of ``use``.

        Raise :class:`~server.hub.errors.ConnectRefused` to refuse it.
        """
        self._middlewares.append(middleware)
        return middleware

    def use_incoming(self, middleware: IncomingMiddleware) -> IncomingMiddleware:
        """Run ``middleware(socket, event, args)`` before the handlers of every event a
        client sends, in order of ``use_incoming``; a plain function or ``async``.

        Raise :class:`~server.hub.errors.EventRefused` to refuse the event: its handlers do
        not run, its ack (if any) gets the refusal's ``answer``. A middleware that fails
        otherwise refuses the event too (logged, counted as a handler error).
        :class:`~server.hub.ratelimit.RateLimiter` is one.
        """
        self._incoming.append(middleware)
        return middleware

    def on_server_side(self, event: str, handler: H | None = None) -> Any:
        """Register the handler of a server-side ``event`` that another node sent with
        :meth:`server_side_emit` (socket.io's ``io.on(event)``); it receives the event's
        arguments, and its return value (awaited if it is a coroutine) answers an
        ``emit_with_ack`` of the other node."""

        def register(fn: H) -> H:
            self._server_side[event] = Handler.of(fn)
            return fn

        return register(handler) if handler is not None else register

    def handler_for(self, event: str) -> Handler | None:
        return self._handlers.get(event)

    @property
    def any_handlers(self) -> list[Handler]:
        return self._any

    @property
    def incoming(self) -> list[IncomingMiddleware]:
        return self._incoming

    def next_ack_id(self) -> int:
        return next(self._ack_ids)

    # ---- a socket's life -------------------------------------------------------------------
    async def connect(self, client: NamespaceClient, auth: dict[str, Any]) -> None:
        """A CONNECT for this namespace: a socket, or a CONNECT_ERROR."""
        request = client.session.request
        handshake = Handshake(
            auth=auth,
            query=request.query,
            headers=request.headers,
            address=request.address[0] if request.address else None,
            time=request.time,
            url=request.url,
            secure=request.secure,
        )
        recovery = self._adapter.recovery
        restored = None
        if recovery is not None:
            pid, offset = auth.get("pid"), auth.get("offset")
            if isinstance(pid, str) and isinstance(offset, str | None):
                restored = await recovery.resume(pid, offset)
        while True:
            socket = self._new_socket(client, handshake, restored)
            try:
                if restored is None or not self.config.recovery_skips_middlewares:
                    for middleware in self._middlewares:
                        await call(middleware, socket)
            except RecoveryDeclined:
                if restored is None:  # nothing to decline: a misplaced raise
                    self.stats["handler_errors"] += 1
                    log.error("middleware of %s declined the recovery of a new socket", self.name)
                    self._refuse(client, "Internal server error")
                    return
                # connect it as a new socket; the saved session stays for its owner (whose
                # resume would be accepted) until it expires
                self._put_back(restored)
                restored = None
                continue
            except ConnectRefused as refusal:
                self._put_back(restored)  # another attempt (a fresh token) may resume
                self._refuse(client, refusal.message, refusal.data)
                return
            except Exception:
                self._put_back(restored)
                self.stats["handler_errors"] += 1
                log.exception("middleware of %s failed", self.name)
                self._refuse(client, "Internal server error")
                return
            break
        if not client.session.is_open:
            self._put_back(restored)
            return
        self._add(client, socket, restored)
        if self._observers:
            self._tell(lambda observer: observer.socket_connected(socket))
        handler = self._handlers.get("connect")
        if handler is not None:
            await client.run(handler, (socket,), socket, None, "connect")

    def _new_socket(
        self, client: NamespaceClient, handshake: Handshake, restored: Restored | None
    ) -> Socket:
        recovery = self._adapter.recovery
        if restored is not None:
            saved = restored.session
            # a copy of the saved data: a middleware that declines the recovery may have
            # changed it, and the saved session may be put back for another attempt
            socket = Socket(saved.sid, self, client, handshake, dict(saved.data), recovered=True)
            socket.pid = saved.pid
            socket.recovery_base = saved.base
            return socket
        socket = Socket(random_id(), self, client, handshake)
        if recovery is not None:
            socket.pid = random_id()
            socket.recovery_base = recovery.position()
        return socket

    def _add(self, client: NamespaceClient, socket: Socket, restored: Restored | None) -> None:
        socket.connected = True
        client.joined()
        client.attach(socket)
        self.sockets[socket.id] = socket
        self._sessions[socket.id] = client.session
        adapter = self._adapter
        adapter.add_all(socket.id, (socket.id,))
        answer = {"sid": socket.id} if socket.pid is None else {"sid": socket.id, "pid": socket.pid}
        client.send_packet(sio.Packet(sio.PacketType.CONNECT, self.name, answer))
        recovery = adapter.recovery
        if recovery is None or socket.pid is None:
            return
        if restored is not None:
            # no checkpoint between listing what was missed and rejoining the rooms, so
            # every stored packet reaches the socket exactly once
            adapter.add_all(socket.id, restored.session.rooms)
            client.replay(recovery.missed(restored))
        recovery.attached(socket.id, socket.pid, socket.rooms, socket.data, socket.recovery_base)

    def _put_back(self, restored: Restored | None) -> None:
        recovery = self._adapter.recovery
        if restored is not None and recovery is not None:
            recovery.put_back(restored)

    def _refuse(self, client: NamespaceClient, message: str, data: Any = None) -> None:
        body: dict[str, Any] = {"message": message}
        if data is not None:
            body["data"] = data
        client.send_packet(sio.Packet(sio.PacketType.CONNECT_ERROR, self.name, body))

    async def remove(self, socket: Socket, reason: str) -> None:
        """``socket`` leaves: ``disconnecting``, its rooms and acks, ``disconnect`` (once)."""
        if not socket.connected:
            return
        await self._lifecycle(socket, "disconnecting", reason)
        recovery = self._adapter.recovery
        if recovery is not None and socket.pid is not None:
            if reason in RECOVERABLE_REASONS:
                rooms, data, base = socket.rooms, socket.data, socket.recovery_base
                recovery.save(socket.id, socket.pid, rooms, data, base)
            else:
                recovery.forget(socket.id, socket.pid)
        socket.connected = False
        self._adapter.delete_all(socket.id)
        self.sockets.pop(socket.id, None)
        self._sessions.pop(socket.id, None)
        self._outgoing.discard(socket)
        socket.client.detach(socket)
        socket.fail_acks()
        await self._lifecycle(socket, "disconnect", reason)
        if self._observers:
            self._tell(lambda observer: observer.socket_disconnected(socket, reason))
        if not self.sockets and self._on_empty is not None:
            self._on_empty(self)

    def _tell(self, what: Callable[[NamespaceObserver], None]) -> None:
        for observer in list(self._observers):
            try:
                what(observer)
            except Exception:
                self.stats["handler_errors"] += 1
                log.exception("observer %r of %s failed", observer, self.name)

    async def _lifecycle(self, socket: Socket, event: str, reason: str) -> None:
        """A ``disconnecting`` or ``disconnect`` handler, run inline; errors are logged."""
        handler = self._handlers.get(event)
        if handler is None:
            return
        try:
            if handler.is_async:
                await handler.fn(socket, reason)
            else:
                handler.fn(socket, reason)
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("%s handler of %s failed", event, self.name)

    def watch_outgoing(self, socket: Socket, watching: bool) -> None:
        if watching:
            self._outgoing.add(socket)
        else:
            self._outgoing.discard(socket)

    # ---- what the adapter asks (SocketEmitter) --------------------------------------------------
    def send(
        self,
        sids: Iterable[str],
        wire: Wire,
        *,
        volatile: bool = False,
        data: list[Any] | None = None,
    ) -> int:
        if not self._sessions:
            return 0  # (and nothing asks for this run's ticker, as outside a Trio run)
        sessions = self._sessions
        watching = self._outgoing
        # for the outgoing listeners, if any socket has some
        outgoing = data if watching else None
        count = 0
        # two passes per chunk of recipients: each is looked at, then the idle ones written to
        with DirectWrites(wire.frames, current_ticker()) as batch:
            for sid in sids:
                session = sessions.get(sid)
                if session is not None and session.send(wire, volatile, batch):
                    count += 1
                    if outgoing is not None:
                        socket = self.sockets[sid]
                        if socket in watching:
                            socket.outgoing(outgoing)
        return count

    def send_with_acks(
        self,
        sids: Iterable[str],
        wire: Wire,
        ack_id: int,
        answered: Callable[[Any], None],
        gone: Callable[[], None],
    ) -> list[str]:
        reached = []
        for sid in sids:
            socket = self.sockets.get(sid)
            if socket is not None and socket.client.session.send(wire):
                socket.expect_ack(ack_id, answered, gone)
                reached.append(sid)
        return reached

    def forget_acks(self, sids: Iterable[str], ack_id: int) -> None:
        for sid in sids:
            socket = self.sockets.get(sid)
            if socket is not None:
                socket.forget_ack(ack_id)

    def socket(self, sid: str) -> Socket | None:
        return self.sockets.get(sid)

    async def disconnect(self, sids: Iterable[str], close: bool) -> None:
        for sid in list(sids):
            socket = self.sockets.get(sid)
            if socket is not None:
                await socket.disconnect(close)

    def server_side(self, event: str, args: list[Any], reply: Callable[[Any], None] | None) -> None:
        handler = self._server_side.get(event)
        if handler is None:
            return
        try:
            result = handler.fn(*args)
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("server-side handler of %r failed", event)
            return
        if handler.is_async:
            self._later(result, reply)
        elif reply is not None:
            reply(result)

    def _later(self, result: Awaitable[Any], reply: Callable[[Any], None] | None) -> None:
        """An ``async`` server-side handler's answer, when it is ready: in the nursery of
        whoever serves the hub (see :meth:`serve_tasks`)."""
        nursery = self._tasks
        if nursery is None:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            log.error("server-side handler in %s needs the hub to be serving", self.name)
            return
        nursery.start_soon(_answer_later, result, reply, self.stats)

    def serve_tasks(self, nursery: trio.Nursery | None) -> None:
        """Where this namespace runs work of its own (``async`` server-side handlers)."""
        self._tasks = nursery

    # ---- server-side events ------------------------------------------------------------------
    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to the other nodes of the cluster (not this one); never waits."""
        self._adapter.server_side_emit(event, list(args))

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send ``event`` to the other nodes and return their answers (one per node that
        answered within ``timeout``, the ack timeout by default)."""
        limit = timeout if timeout is not None else self.ack_timeout
        return await self._adapter.server_side_emit_with_ack(event, list(args), limit)

    # ---- selections (the whole namespace) ----------------------------------------------
    def _all(self) -> BroadcastOperator:
        return BroadcastOperator(self)

    def to(self, *rooms: str) -> BroadcastOperator:
        return self._all().to(*rooms)

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        return self._all().except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._all().volatile

    @property
    def local(self) -> BroadcastOperator:
        return self._all().local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._all().timeout(seconds)

    def emit(self, event: str, *args: Any) -> int:
        return self._all().emit(event, *args)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self._all().emit_with_ack(event, *args, timeout=timeout)

    async def fetch_sockets(self) -> list[SocketLike]:
        return await self._all().fetch_sockets()

    async def sockets_join(self, *rooms: str) -> None:
        await self._all().sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self._all().sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._all().disconnect_sockets(close)


async def _answer_later(
    result: Awaitable[Any], reply: Callable[[Any], None] | None, stats: Counter[str]
) -> None:
    try:
        value = await result
    except Exception:
        stats["handler_errors"] += 1
        log.exception("server-side handler failed")
        return
    if reply is not None:
        reply(value)


class ParentNamespace(Namespace):
    """``hub.of(re.compile(r"^/team-\\d+$"))``: namespaces made on demand.

    When a client asks for a namespace that does not exist and ``matcher`` allows the name
    (a regular expression that matches it whole, or a function ``(name, auth) -> bool``,
    plain or ``async``), a child namespace is made. Every child shares this parent's
    handlers and middlewares, registered before or after; it has rooms and sockets of its
    own, and is what ``hub.of(name)`` returns for its name. What is sent or asked through the
    parent (``emit``, ``to(room)``, ``except_``, ``volatile``, acks, ``fetch_sockets``,
    ``sockets_join``...) is done in every child (Node does the broadcasts; its
    ``fetchSockets`` on a parent throws).

    With ``cleanup_empty_children`` (Node's ``cleanupEmptyChildNamespaces``) a child is
    dropped when its last socket leaves, so clients asking for ever new names cannot make
    namespaces pile up; off by default, as in Node, for code that keeps a child's object.
    """

    def __init__(
        self,
        matcher: re.Pattern[str] | NamespaceMatcher,
        config: HubConfig,
        stats: Counter[str],
        adapter_factory: AdapterFactory,
        *,
        cleanup_empty_children: bool = False,
        observers: list[NamespaceObserver] | None = None,
    ) -> None:
        label = matcher.pattern if isinstance(matcher, re.Pattern) else repr(matcher)
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}
        self.cleanup_empty_children = cleanup_empty_children
        self._adapter_factory = adapter_factory
        # the parent has no sockets and no channels of its own: its adapter is its children's
        super().__init__(
            f"/<{label}>",
            config,
            stats,
            lambda _emitter, _recovery: ChildrenAdapter(self._child_adapters),
            observers,
        )

    def _child_adapters(self) -> list[tuple[str, Adapter]]:
        return [(name, child.adapter) for name, child in self.children.items()]

    async def allows(self, name: str, auth: dict[str, Any]) -> bool:
        matcher = self.matcher
        if isinstance(matcher, re.Pattern):
            return matcher.fullmatch(name) is not None
        return bool(await call(matcher, name, auth))

    def child(self, name: str) -> Namespace:
        nsp = self.children.get(name)
        if nsp is None:
            nsp = Namespace(name, self.config, self.stats, self._adapter_factory, self._observers)
            # the same registries, so the parent's handlers (and later ones) apply
            nsp._handlers = self._handlers
            nsp._any = self._any
            nsp._middlewares = self._middlewares
            nsp._incoming = self._incoming
            nsp._server_side = self._server_side
            nsp._ack_ids = self._ack_ids
            nsp.serve_tasks(self._tasks)
            if self.cleanup_empty_children:
                nsp._on_empty = self._drop
            self.children[name] = nsp
        return nsp

    def _drop(self, child: Namespace) -> None:
        if self.children.get(child.name) is child:
            del self.children[child.name]
            child.adapter.close()  # its subscriptions, with a cluster adapter

    def serve_tasks(self, nursery: trio.Nursery | None) -> None:
        super().serve_tasks(nursery)
        for child in self.children.values():
            child.serve_tasks(nursery)
