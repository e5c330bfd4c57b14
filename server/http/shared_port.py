"""The app on the hub's port: one listener for ``/socket.io/`` and everything else.

The hub's listener accepts every connection and reads its requests' heads itself, so the
Socket.IO traffic keeps the hub's own fast path. A request for any other path (the board
page, ``/api/``, ``/healthz``, ``/metrics``) hands its connection over to :class:`AppOnHub`,
with the bytes already read: Hypercorn serves it from there, exactly as on a listener of
its own (bodies, timeouts, errors). See :meth:`server.hub.engine.EngineServer.serve`.

A handed connection closes after its response (``Connection: close``): once Hypercorn has it,
a later request on it for ``/socket.io/`` would reach the app, not the hub (browsers reuse a
connection for any path of the origin). The hub's own connections stay alive across
requests, and one of them may be handed over at any request.

Hypercorn has no public call for "serve this connection": this module drives the same pieces
its Trio worker does (the app's lifespan, a worker context, one ``TCPServer`` per
connection), which is why ``pyproject.toml`` pins Hypercorn to a minor version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState, LifespanState
from hypercorn.utils import wrap_app

if TYPE_CHECKING:
    from server.hub import Hub

#: An ASGI 3 application (a Quart-Trio app is one).
ASGIApp: TypeAlias = Callable[[Any, Any, Any], Awaitable[None]]

CLOSE = (b"connection", b"close")


async def serve_with_app(
    hub: Hub,
    app: ASGIApp,
    host: str | None,
    port: int,
    *,
    config: Config | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The hub and ``app`` (a Quart-Trio app, or any ASGI one) on one port, until cancelled;
    ``task_status`` gets the listeners. ``config`` is Hypercorn's (its timeouts and limits
    apply to the app's requests; its ``bind`` is not used)."""
    app_on_hub = AppOnHub(app, config if config is not None else Config())
    async with trio.open_nursery() as nursery:
        await nursery.start(app_on_hub.run)
        serving = partial(hub.serve, host, port, handoff=app_on_hub.serve)
        task_status.started(await nursery.start(serving))


class AppOnHub:
    """Serves ``app`` on connections that another listener accepted.

    :meth:`run` holds the app's startup and shutdown (its lifespan) and must be running
    (``await nursery.start(app_on_hub.run)``) while :meth:`serve` is called, in any task.
    """

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.config = config
        self._app = wrap_app(_closing(app), config.wsgi_max_body_size, "asgi")
        self._context = WorkerContext(None)
        self._state: LifespanState = {}
        self._open = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The app started, until cancelled; then its connections are told to close, and
        it is shut down."""
        lifespan = Lifespan(self._app, self.config, self._state)
        async with trio.open_nursery() as nursery:
            await nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            self._open = True
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._open = False
                grace = self.config.graceful_timeout
                with trio.CancelScope(shield=True), trio.move_on_after(grace):
                    # idle keep-alive connections close on this
                    await self._context.terminated.set()
                    await lifespan.wait_for_shutdown()
                nursery.cancel_scope.cancel()

    async def serve(self, stream: trio.abc.Stream, data: bytes) -> None:
        """Serve the connection ``stream``, of which ``data`` has been read already, to its
        end (the caller closes it after)."""
        if not self._open:
            return  # starting or stopping: the connection is closed unanswered
        prefixed: Any = Prefixed(stream, data)  # typed as an SSL stream, duck-typed in use
        state = ConnectionState(dict(self._state))
        await TCPServer(self._app, self.config, self._context, state, prefixed).run()


def _closing(app: ASGIApp) -> ASGIApp:
    """``app``, whose HTTP responses close their connection."""

    async def closing(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), CLOSE]
                message = {**message, "headers": headers}
            await send(message)

        return await app(scope, receive, send_closing)

    return closing


class Prefixed(trio.abc.HalfCloseableStream):
    """``stream``, whose first bytes received are ``data``; and its ``socket``, for the
    peer's address."""

    def __init__(self, stream: trio.abc.Stream, data: bytes) -> None:
        self.stream = stream
        self._data = data

    @property
    def socket(self) -> trio.socket.SocketType:
        socket: trio.socket.SocketType = getattr(self.stream, "socket")  # noqa: B009
        return socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = self._data
        if not data:
            return await self.stream.receive_some(max_bytes)
        await trio.lowlevel.checkpoint()
        if max_bytes is None or max_bytes >= len(data):
            self._data = b""
            return data
        self._data = data[max_bytes:]
        return data[:max_bytes]

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        # Hypercorn closes a connection (after a ``Connection: close`` answer) from the
        # app's task, which is being cancelled by then: without the shield the EOF is never
        # sent and the connection stays open. Shutting the socket down does not block.
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            with trio.CancelScope(shield=True):
                await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()
