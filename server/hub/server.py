"""The hub: a Socket.IO v5 server on Trio."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import trio

from server.hub.adapter import AdapterFactory, LocalAdapter, SocketLike
from server.hub.broadcast import BroadcastOperator
from server.hub.client import Client
from server.hub.config import HubConfig
from server.hub.connecting import ConnectDeadlines
from server.hub.engine import EngineServer, Handoff, Session
from server.hub.namespace import (
    Middleware,
    Namespace,
    NamespaceMatcher,
    NamespaceObserver,
    ParentNamespace,
)
from server.hub.socket import IncomingMiddleware

log = logging.getLogger("hub")


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

    Settings are one :class:`~server.hub.config.HubConfig` (which holds the engine's):
    ``Hub(config)``, or keyword options that name its fields or the engine's,
    ``Hub(max_queue=8, ping_interval=5)``. Times are in seconds; the defaults are Node's.
    ``adapter_factory`` makes each namespace's adapter: the in-memory one by default, a
    bridge's (:class:`server.hub.bridge.Bridge`) to link processes.
    """

    def __init__(
        self,
        config: HubConfig | None = None,
        *,
        adapter_factory: AdapterFactory | None = None,
        **options: Any,
    ) -> None:
        config = config or HubConfig()
        if options:
            config = config.replace(**options)
        self.config = config
        self.engine = EngineServer(config.engine, self._new_client)
        self.connect_deadlines = ConnectDeadlines(
            config.connect_timeout, config.max_unjoined_per_address, config.max_unjoined
        )
        #: Counters for monitoring: packets_in, parse_errors, handler_errors, events_refused.
        self.stats: Counter[str] = Counter()
        self.adapter_factory: AdapterFactory = adapter_factory or LocalAdapter
        self.namespaces: dict[str, Namespace] = {}
        self._parents: dict[Any, ParentNamespace] = {}
        self._tasks: trio.Nursery | None = None
        #: Told of every namespace's sockets and rooms (see :meth:`observe`).
        self.observers: list[NamespaceObserver] = []
        #: Run while the hub serves (see :meth:`run_while_serving`).
        self._background: list[Callable[[], Awaitable[None]]] = []
        self.main = self.of("/")

    def _new_client(self, session: Session) -> Client:
        return Client(session, self.config, self.stats, self._namespace_for, self.connect_deadlines)

    def of(
        self,
        name: str | re.Pattern[str] | NamespaceMatcher,
        *,
        cleanup_empty_children: bool = False,
        config: HubConfig | None = None,
    ) -> Namespace:
        """The namespace called ``name``, made on first use (the same object each time; a
        dynamic namespace's child of that name, if one exists). ``config`` is the
        namespace's own configuration when this call makes it (the hub's by default): say,
        one without connection state recovery.

        A regular expression or a function ``(name, auth) -> bool`` gives a
        :class:`~server.hub.namespace.ParentNamespace`: namespaces made on demand when a
        client asks for a name it allows, sharing its handlers and middlewares (and, with
        ``cleanup_empty_children``, dropped when their last socket leaves).
        """
        if not isinstance(name, str):
            parent = self._parents.get(name)
            if parent is None:
                parent = self._parents[name] = ParentNamespace(
                    name,
                    config or self.config,
                    self.stats,
                    self.adapter_factory,
                    cleanup_empty_children=cleanup_empty_children,
                    observers=self.observers,
                )
                parent.serve_tasks(self._tasks)
            return parent
        if not name.startswith("/"):
            name = "/" + name
        nsp = self.namespaces.get(name) or self._child(name)
        if nsp is None:
            nsp = self.namespaces[name] = Namespace(
                name, config or self.config, self.stats, self.adapter_factory, self.observers
            )
            nsp.serve_tasks(self._tasks)
        return nsp

    def each_namespace(self) -> Iterator[Namespace]:
        """Every namespace that exists now: those made by name, and the children of the
        dynamic ones (not the parents themselves, which have no sockets)."""
        yield from list(self.namespaces.values())
        for parent in list(self._parents.values()):
            yield from list(parent.children.values())

    def observe(self, observer: NamespaceObserver) -> NamespaceObserver:
        """Tell ``observer`` of the sockets that connect and leave, and of room changes, in
        every namespace (see :class:`~server.hub.namespace.NamespaceObserver`). With none,
        the hub pays a test of an empty list per connect, disconnect and room change."""
        self.observers.append(observer)
        return observer

    def run_while_serving(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn()`` in the hub's task tree whenever it serves: started with
        :meth:`serve` (at once, if it is serving), cancelled when serving stops. An error
        in it is logged and ends it alone."""
        self._background.append(fn)
        if self._tasks is not None:
            self._tasks.start_soon(_logged, fn)

    def _child(self, name: str) -> Namespace | None:
        """A dynamic namespace's child called ``name``, if one exists."""
        for parent in self._parents.values():
            child = parent.children.get(name)
            if child is not None:
                return child
        return None

    async def _namespace_for(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        """The namespace a CONNECT asks for: an existing one, or a dynamic one's child."""
        nsp = self.namespaces.get(name) or self._child(name)
        if nsp is not None:
            return nsp
        for parent in list(self._parents.values()):
            try:
                allowed = await parent.allows(name, auth)
            except Exception:
                self.stats["handler_errors"] += 1
                log.exception("the matcher of %s failed on %r", parent.name, name)
                continue
            if allowed:
                return parent.child(name)
        return None

    # ---- running -----------------------------------------------------------------------
    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        handoff: Handoff | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``/socket.io/`` on ``host:port`` until cancelled; with ``handoff``, the
        connections for other paths go to it (one port for the hub and an HTTP app: see
        :meth:`EngineServer.serve`)."""
        async with trio.open_nursery() as nursery:
            self._serve_tasks(nursery)
            try:
                nursery.start_soon(self.connect_deadlines.run)
                for fn in self._background:
                    nursery.start_soon(_logged, fn)
                listeners = await nursery.start(
                    partial(self.engine.serve, host, port, handoff=handoff)
                )
                task_status.started(listeners)
                await trio.sleep_forever()
            finally:
                self._serve_tasks(None)

    def _serve_tasks(self, nursery: trio.Nursery | None) -> None:
        self._tasks = nursery
        for nsp in (*self.namespaces.values(), *self._parents.values()):
            nsp.serve_tasks(nursery)

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

    def off_any(self, handler: Any = None) -> None:
        self.main.off_any(handler)

    def use(self, middleware: Middleware) -> Middleware:
        return self.main.use(middleware)

    def use_incoming(self, middleware: IncomingMiddleware) -> IncomingMiddleware:
        return self.main.use_incoming(middleware)

    def on_server_side(self, event: str, handler: Any = None) -> Any:
        return self.main.on_server_side(event, handler)

    def server_side_emit(self, event: str, *args: Any) -> None:
        self.main.server_side_emit(event, *args)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self.main.server_side_emit_with_ack(event, *args, timeout=timeout)

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

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self.main.timeout(seconds)

    def emit(self, event: str, *args: Any) -> int:
        return self.main.emit(event, *args)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self.main.emit_with_ack(event, *args, timeout=timeout)

    async def fetch_sockets(self) -> list[SocketLike]:
        return await self.main.fetch_sockets()

    async def sockets_join(self, *rooms: str) -> None:
        await self.main.sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self.main.sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.main.disconnect_sockets(close)


async def _logged(fn: Callable[[], Awaitable[None]]) -> None:
    """A task of :meth:`Hub.run_while_serving`: its failure is its own."""
    try:
        await fn()
    except Exception:
        log.exception("background task %r of the hub failed", fn)
