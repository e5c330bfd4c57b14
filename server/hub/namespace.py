"""A namespace: its sockets, rooms, middlewares and event handlers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from server.hub.broadcast import BroadcastOperator
from server.hub.recovery import RecoveryStore
from server.hub.socket import Socket, call

if TYPE_CHECKING:
    from server.hub.remote import RemoteSocket
    from server.hub.server import Hub

log = logging.getLogger("hub")

Handler = Callable[..., Any]
Middleware = Callable[[Socket], Any]
#: ``middleware(socket, event, args)``: before an incoming event's handlers (see use_incoming).
IncomingMiddleware = Callable[[Socket, str, tuple[Any, ...]], Any]
H = TypeVar("H", bound=Callable[..., Any])


class Namespace:
    """Handlers get the :class:`Socket` first, then the event's arguments.

    ``connect`` handlers get ``(socket)``, ``disconnect`` and ``disconnecting`` handlers get
    ``(socket, reason)``. An event handler's return value answers the client's ack: ``None``
    answers with no arguments, a tuple with several. Handlers may be plain functions (run at
    once, in order) or ``async`` (started in order, run concurrently within a bound).
    """

    def __init__(self, hub: Hub, name: str) -> None:
        if not name.startswith("/"):
            raise ValueError(f"a namespace name starts with '/': {name!r}")
        self.hub = hub
        self.name = name
        self.sockets: dict[str, Socket] = {}
        recovery = None
        if hub.connection_state_recovery:
            recovery = RecoveryStore(
                hub.max_disconnection_duration,
                hub.recovery_buffer,
                max_bytes=hub.recovery_buffer_bytes,
            )
        self.adapter = hub.adapter_factory(self, recovery)
        self._handlers: dict[str, Handler] = {}
        self._any: list[Handler] = []
        self._middlewares: list[Middleware] = []
        #: Run before the handlers of every incoming event (see :meth:`use_incoming`).
        self.incoming: list[IncomingMiddleware] = []
        self._ack_id = 0

    def __repr__(self) -> str:
        return f"<Namespace {self.name} sockets={len(self.sockets)}>"

    # ---- registration ------------------------------------------------------------------
    def on(self, event: str, handler: H | None = None) -> Any:
        """Register the handler of ``event``, directly or as a decorator."""

        def register(fn: H) -> H:
            self._handlers[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def on_any(self, handler: H) -> H:
        """Called as ``handler(socket, event, *args)`` for every incoming event."""
        self._any.append(handler)
        return handler

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
        self.incoming.append(middleware)
        return middleware

    def handler_for(self, event: str) -> Handler | None:
        return self._handlers.get(event)

    @property
    def any_handlers(self) -> list[Handler]:
        return self._any

    def next_ack_id(self) -> int:
        ack_id = self._ack_id
        self._ack_id += 1
        return ack_id

    # ---- running -----------------------------------------------------------------------
    async def run_middlewares(self, socket: Socket) -> None:
        for middleware in self._middlewares:
            await call(middleware, socket)

    async def run_handler(
        self, socket: Socket, event: str, args: tuple[Any, ...], *, required: bool = True
    ) -> Any:
        """Run a lifecycle handler inline; its errors are logged, never raised."""
        handler = self._handlers.get(event)
        if handler is None:
            return None
        try:
            return await call(handler, socket, *args)
        except Exception:
            self.hub.stats["handler_errors"] += 1
            log.exception("%s handler of %s failed", event, self.name)
            return None

    @staticmethod
    def is_async(handler: Handler) -> bool:
        return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - objects with async __call__
        )

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

    def emit(self, event: str, *args: Any) -> int:
        return self._all().emit(event, *args)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self._all().emit_with_ack(event, *args, timeout=timeout)

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self._all().fetch_sockets()

    async def sockets_join(self, *rooms: str) -> None:
        await self._all().sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self._all().sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._all().disconnect_sockets(close)
