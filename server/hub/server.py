"""The hub: a Socket.IO v5 server on Trio."""

from __future__ import annotations

import logging
import math
import weakref
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from server.hub.adapter import Adapter
from server.hub.broadcast import BroadcastOperator
from server.hub.client import Client
from server.hub.engine import EngineConfig, EngineServer, Session
from server.hub.engine.config import within_descriptors
from server.hub.namespace import IncomingMiddleware, Middleware, Namespace
from server.hub.protocol.socketio import DEFAULT_MAX_ATTACHMENTS
from server.hub.socket import Socket

if TYPE_CHECKING:
    from server.hub.remote import RemoteSocket

log = logging.getLogger("hub")


class ConnectDeadlines:
    """One timer for every connection's connect timeout (no CONNECT in time: close), and a
    cap on the connections waiting for their first CONNECT.

    Every connection has the same timeout, so deadlines come due in the order connections
    arrived: a queue replaces a sleeping task per connection, which an idle connection would
    otherwise carry for its first ``timeout`` seconds.

    A connection that has not joined a namespace holds a session (and, over WebSocket, a
    file descriptor) for up to ``timeout`` seconds without having shown any credentials, so
    their number is capped, per client address and in all (at most a quarter of the
    process's file descriptor limit). Past a cap the oldest waiting one is closed to make
    room, so a client that floods handshakes only ever evicts its own connections.
    """

    def __init__(self, timeout: float, per_address: int = 0, overall: int = 0) -> None:
        self.timeout = timeout
        self.per_address = per_address
        self.overall = within_descriptors(overall, 4)
        #: Weak references: a connection that went away is not kept until its deadline.
        self._due: deque[tuple[float, weakref.ref[Client]]] = deque()
        self._wakeup = trio.Event()
        self._running = False
        #: The connections waiting for their first CONNECT, oldest first: all of them and
        #: by client address (dicts as ordered sets).
        self._waiting: dict[Client, str] = {}
        self._waiting_from: dict[str, dict[Client, None]] = {}
        #: Connections closed to make room for newer ones.
        self.evicted = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def add(self, client: Client, host: str) -> None:
        same = self._waiting_from.get(host)
        if self.per_address and same is not None and len(same) >= self.per_address:
            self._evict(next(iter(same)))
        if self.overall and len(self._waiting) >= self.overall:
            self._evict(next(iter(self._waiting)))
        self._waiting[client] = host
        self._waiting_from.setdefault(host, {})[client] = None
        self._due.append((trio.current_time() + self.timeout, weakref.ref(client)))
        if len(self._due) == 1:
            self._wakeup.set()

    def done(self, client: Client) -> None:
        """``client`` joined a namespace, or closed: it no longer waits; idempotent."""
        host = self._waiting.pop(client, None)
        if host is None:
            return
        same = self._waiting_from[host]
        del same[client]
        if not same:
            del self._waiting_from[host]

    def _evict(self, client: Client) -> None:
        self.done(client)
        self.evicted += 1
        if self.evicted % 1000 == 1:
            log.warning(
                "too many connections waiting for their first CONNECT (%d in all): closing "
                "the oldest (%d so far)",
                len(self._waiting),
                self.evicted,
            )
        client.connect_deadline_passed()

    async def run(self) -> None:
        if self._running:  # the hub serves on several listeners: one timer is enough
            await trio.sleep_forever()
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False

    async def _run(self) -> None:
        due = self._due
        while True:
            if not due:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                continue
            deadline, client = due[0]
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            due.popleft()
            alive = client()
            if alive is not None:
                try:
                    alive.connect_deadline_passed()
                except Exception as exc:  # ends that connection only
                    alive.session.failed(exc, "its connect timeout")


class Hub:
    """A Socket.IO server. Everything about namespace ``/`` is also here directly.

    ::

        hub = Hub(cors_origins=("http://localhost:4000",))

        @hub.on("chat")
        async def chat(socket, message):
            socket.to("lobby").emit("chat", message)
            return "ok"          # answers the client's ack

        async with trio.open_nursery() as nursery:
            await nursery.start(hub.serve, "127.0.0.1", 4001)

    Times are in seconds. The defaults are those of Node's Socket.IO server.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        cors_origins: tuple[str, ...] = (),
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        transports: tuple[str, ...] = ("polling", "websocket"),
        upgrade_timeout: float = 10.0,
        connect_timeout: float = 45.0,
        ack_timeout: float = 10.0,
        max_queue: int = 1024,
        max_queue_bytes: int = 8 * 1024 * 1024,
        max_handlers: int = 32,
        max_attachments: int = DEFAULT_MAX_ATTACHMENTS,
        cleanup_timeout: float = 5.0,
        connection_state_recovery: bool = False,
        max_disconnection_duration: float = 120.0,
        recovery_buffer: int = 10_000,
        recovery_buffer_bytes: int = 32 * 1024 * 1024,
        recovery_skips_middlewares: bool = True,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        max_handshaking_per_address: int = 128,
        max_handshaking: int = 1024,
        max_unjoined_per_address: int = 128,
        max_unjoined: int = 1024,
        adapter_factory: Callable[..., Adapter] | None = None,
    ) -> None:
        self.config = EngineConfig(
            path=path,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_payload=max_payload,
            transports=transports,
            upgrade_timeout=upgrade_timeout,
            cors_origins=cors_origins,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            cleanup_timeout=cleanup_timeout,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_handshaking_per_address=max_handshaking_per_address,
            max_handshaking=max_handshaking,
        )
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout if ack_timeout is not None else math.inf
        self.max_handlers = max_handlers
        self.max_attachments = max_attachments
        #: Connection state recovery (see :mod:`server.hub.recovery`): a client that lost its
        #: connection gets its id, rooms, ``data`` and missed events back if it returns
        #: within ``max_disconnection_duration`` seconds and what it missed is among the
        #: last ``recovery_buffer`` stored packets (and ``recovery_buffer_bytes``) of the
        #: namespace. Off by default, as in Node's server: stored events carry their offset
        #: as an extra last argument, which socket.io-client uses and python-socketio's
        #: client hands to its handlers. ``recovery_skips_middlewares`` (as in Node) lets a
        #: recovered socket in without the connection middlewares; turn it off where they
        #: check credentials, which must be valid again when a client comes back.
        self.connection_state_recovery = connection_state_recovery
        self.max_disconnection_duration = max_disconnection_duration
        self.recovery_buffer = recovery_buffer
        self.recovery_buffer_bytes = recovery_buffer_bytes
        self.recovery_skips_middlewares = recovery_skips_middlewares
        self.engine = EngineServer(self.config, self._new_client)
        #: ``max_unjoined*``: connections that have not joined a namespace yet (see
        #: :class:`ConnectDeadlines`), per client address and in all; 0: no limit.
        self.connect_deadlines = ConnectDeadlines(
            connect_timeout, max_unjoined_per_address, max_unjoined
        )
        self.namespaces: dict[str, Namespace] = {}
        #: Counters for monitoring: packets_in, parse_errors, handler_errors, events_refused.
        self.stats: Counter[str] = Counter()
        #: Makes each namespace's adapter: the in-memory one by default, a bridge's
        #: (:class:`server.hub.bridge.Bridge`) to link processes.
        self.adapter_factory: Callable[..., Adapter] = adapter_factory or Adapter
        self.main = self.of("/")

    def _new_client(self, session: Session) -> Client:
        return Client(self, session)

    def of(self, name: str) -> Namespace:
        """The namespace called ``name``, created on first use."""
        if not name.startswith("/"):
            name = "/" + name
        nsp = self.namespaces.get(name)
        if nsp is None:
            nsp = self.namespaces[name] = Namespace(self, name)
        return nsp

    # ---- running -----------------------------------------------------------------------
    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``/socket.io/`` on ``host:port`` until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.connect_deadlines.run)
            listeners = await nursery.start(self.engine.serve, host, port)
            task_status.started(listeners)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Leave gracefully, within ``grace`` seconds:

        1. stop accepting: the listening sockets close, so new connections go elsewhere;
        2. drain: handlers already running may finish and answer their acks (half of
           ``grace`` at most; connections stay open and keep being served meanwhile);
        3. close every connection: what is queued goes out, then a CLOSE, and clients
           reconnect (to another node, behind a load balancer) with their state recoverable
           where recovery is on;
        4. wait for every connection's clean-up (``disconnect`` handlers, rooms).
        """
        deadline = trio.current_time() + grace
        self.engine.stop_accepting()
        with trio.move_on_at(deadline - grace / 2):
            # polled, and only here: an event per handler would cost every event a little
            while any(  # noqa: ASYNC110
                isinstance(session.handler, Client) and session.handler.handlers_in_flight
                for session in self.engine.sessions.values()
            ):
                await trio.sleep(0.01)
        self.engine.close_all("server shutting down")
        with trio.move_on_at(deadline):
            await self.engine.wait_all_closed()

    @property
    def client_count(self) -> int:
        return len(self.engine.sessions)

    # ---- namespace "/" -----------------------------------------------------------------
    def on(self, event: str, handler: Any = None) -> Any:
        return self.main.on(event, handler)

    def on_any(self, handler: Any) -> Any:
        return self.main.on_any(handler)

    def use(self, middleware: Middleware) -> Middleware:
        return self.main.use(middleware)

    def use_incoming(self, middleware: IncomingMiddleware) -> IncomingMiddleware:
        return self.main.use_incoming(middleware)

    def to(self, *rooms: str) -> BroadcastOperator:
        return self.main.to(*rooms)

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        return self.main.except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.main.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.main.local

    def emit(self, event: str, *args: Any) -> int:
        return self.main.emit(event, *args)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self.main.emit_with_ack(event, *args, timeout=timeout)

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self.main.fetch_sockets()

    async def sockets_join(self, *rooms: str) -> None:
        await self.main.sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self.main.sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.main.disconnect_sockets(close)
