"""The Engine.IO server: one Trio listener serving long-polling (h11) and WebSocket.

Task tree::

    EngineServer.serve
    ├── heartbeat (one timer for every session)
    ├── sessions nursery ── Session.run, one per session that began on long-polling
    │       └── its handlers
    └── connections nursery ── one task per connection (handle_stream)
            ├── HTTP requests, one after another (a GET may wait for packets)
            └── or, after an upgrade: the WebSocket's reader; in its nursery the writer
                (only while there is something to write) and, for a session that began on
                this WebSocket, the session's handlers and its clean-up (Session.serve)

An idle WebSocket connection is one task: a task and its nursery are a good part of what an
idle connection costs.

What serves a request is in modules of its own: :mod:`.routing` (the checks every request
passes), :mod:`.polling` (GET and POST), :mod:`.upgrade` (the WebSocket handshake, and the
upgrade from polling); :mod:`.exchange` reads and answers HTTP, :mod:`.handshaking` caps the
connections that have not completed a request. Each request ends in a value
(:data:`~.exchange.Outcome`) that says what the connection does next.

``handle_stream`` serves any :class:`trio.abc.Stream`: a TCP connection, or the in-memory
streams of the tests (without a socket there is no peer address and no direct write; the
writer task sends everything).
"""

from __future__ import annotations

import errno
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial

import h11
import trio

from server.hub.engine.config import EngineConfig, within_descriptors
from server.hub.engine.cors import OriginPolicy
from server.hub.engine.exchange import (
    Done,
    Exchange,
    Switched,
    next_request,
    request_started,
    send_simple,
)
from server.hub.engine.handshaking import BUSY, Handshakes, Slot
from server.hub.engine.heartbeat import Heartbeat
from server.hub.engine.routing import route
from server.hub.engine.session import RequestInfo, Session, SessionHandler, Transport
from server.hub.engine.ticks import ticker_stats

log = logging.getLogger("hub.engine")

#: accept() errors that say "not now" rather than "this listener is broken".
_ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

HandlerFactory = Callable[[Session], SessionHandler]
#: Serves a connection whose first request is not Engine.IO's, given the connection and the
#: bytes already read from it (that request's head, and whatever followed).
Handoff = Callable[[trio.abc.Stream, bytes], Awaitable[None]]


class EngineServer:
    def __init__(self, config: EngineConfig, handler_factory: HandlerFactory) -> None:
        self.config = config
        self.handler_factory = handler_factory
        self.sessions: dict[str, Session] = {}
        self.heartbeat = Heartbeat(config.ping_interval, config.ping_timeout)
        self.policy = OriginPolicy(config.cors_origins)
        self._session_nursery: trio.Nursery | None = None
        self.accepting = True
        self._accept_scope = trio.CancelScope()
        self._running = 0
        self._all_closed = trio.Event()
        self._all_closed.set()
        #: Counts of sessions that have ended, and of connection events (see :meth:`totals`).
        self._ended: Counter[str] = Counter()
        #: ``max_handshaking``, but never more than half the descriptors the process may
        #: open: the other half is for the connections that are served
        self.max_handshaking = within_descriptors(config.max_handshaking, 2)
        self._handshakes = Handshakes(config.max_handshaking_per_address, self.max_handshaking)
        #: Where requests outside :attr:`EngineConfig.path` go (see :meth:`serve`).
        self.handoff: Handoff | None = None
        self._path = config.path.encode("latin-1")
        #: Told of each session that moves from long-polling to a WebSocket (see
        #: :meth:`upgraded`); usually no one.
        self.upgrade_observers: list[Callable[[Session], None]] = []

    # ---- serving -------------------------------------------------------------------------
    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        handoff: Handoff | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` until cancelled; ``task_status`` gets the listeners.

        With ``handoff``, the port is shared: a request whose path is not Engine.IO's is
        answered 404 without it, and with it the connection is given to ``handoff`` (another
        HTTP server, the app's), with the bytes read so far, as it arrives: its first request,
        or a later one on a connection kept alive."""
        self.handoff = handoff
        listeners = await trio.open_tcp_listeners(port, host=host)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run_sessions)
            nursery.start_soon(self._accept, listeners)
            task_status.started(listeners)

    async def _accept(self, listeners: list[trio.SocketListener]) -> None:
        # connections live in their own nursery, so that they outlive the accept loops
        async with trio.open_nursery() as connections:
            with self._accept_scope:
                async with trio.open_nursery() as acceptors:
                    for listener in listeners:
                        acceptors.start_soon(self._accept_from, listener, connections)
            # stop_accepting(): new connections are refused by the kernel from now on, so
            # clients (and a load balancer) turn to another node
            for listener in listeners:
                await listener.aclose()

    async def _accept_from(self, listener: trio.SocketListener, into: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                    raise
                # out of file descriptors or memory: keep the connections we have, retry
                log.error("accept failed (%s): pausing new connections for 100 ms", exc)
                await trio.sleep(0.1)
                continue
            # a constant name: by default Trio makes one for every task
            into.start_soon(self.handle_stream, stream, self.admit(stream), name="connection")

    def admit(self, stream: trio.abc.Stream) -> Slot:
        """A place for a new connection among those still handshaking. Past a limit, the
        oldest of them (from this address, or of all) is refused with 503 to make room: a
        new connection always gets its chance, so half-open ones cannot lock anyone out,
        and their number (so the file descriptors they hold) stays bounded. Streams that are
        not sockets all count as one address."""
        address = _peer_address(stream)
        return self._handshakes.admit(address[0] if address else "")

    @property
    def handshaking(self) -> int:
        """Connections open now that have not completed a request yet."""
        return len(self._handshakes)

    def stop_accepting(self) -> None:
        """Close the listening sockets and refuse new sessions on open connections."""
        self.accepting = False
        self._accept_scope.cancel()

    async def run_sessions(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The nursery every session lives in, and the heartbeat timer."""
        async with trio.open_nursery() as nursery:
            self._session_nursery = nursery
            nursery.start_soon(self.heartbeat.run)
            task_status.started()

    def close_all(self, reason: str = "server shutting down", *, final: bool = False) -> None:
        """Stop accepting and close every session; with ``final=False`` (the server goes
        away) so that their clients reconnect (see :meth:`Session.close`)."""
        self.stop_accepting()
        for session in list(self.sessions.values()):
            session.close(reason, final=final)

    async def open_session(self, request: RequestInfo, transport: Transport) -> Session:
        """A new session on ``transport``, running (its handler made) when this returns,
        in a task of its own (see :meth:`serve_in_connection` for a WebSocket's)."""
        assert self._session_nursery is not None, "EngineServer.run_sessions is not running"
        session = self._new_session(request, transport)
        await self._session_nursery.start(self._run_session, session)
        return session

    def serve_in_connection(
        self,
        request: RequestInfo,
        transport: Transport,
        carry: Callable[[Session, trio.Nursery], Awaitable[None]],
    ) -> Awaitable[None]:
        """A new session on ``transport``, to be served in the calling task (its
        connection's): what this returns serves it to its end, and is awaited at once.
        ``carry(session, nursery)`` reads the connection, in the nursery where the session's
        work runs (see :meth:`Session.serve`). Not a coroutine of its own: an idle
        connection waits under one frame less."""
        session = self._new_session(request, transport)
        self._session_began()
        return session.serve(self.handler_factory, carry, self._session_cleaned)

    def _new_session(self, request: RequestInfo, transport: Transport) -> Session:
        session = Session(
            self.config, self.heartbeat, request, transport, self._remove, self._faulted
        )
        self.sessions[session.sid] = session
        return session

    async def _run_session(
        self, session: Session, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._session_began()
        try:
            run = session.run(self.handler_factory, task_status=task_status)
            # the status holds the nursery of the start() that made this task: let go
            del task_status
            await run
        finally:
            self._session_cleaned()

    def _session_began(self) -> None:
        if self._running == 0:
            self._all_closed = trio.Event()
        self._running += 1

    def _session_cleaned(self) -> None:
        """A session has closed and run its clean-up (see :meth:`wait_all_closed`)."""
        self._running -= 1
        if self._running == 0:
            self._all_closed.set()

    async def wait_all_closed(self) -> None:
        """Return once every session has closed and finished its clean-up."""
        await self._all_closed.wait()

    def upgraded(self, session: Session) -> None:
        """``session`` has moved from long-polling to a WebSocket: tell the observers."""
        for observer in list(self.upgrade_observers):
            try:
                observer(session)
            except Exception:
                log.exception("upgrade observer %r failed", observer)

    def _faulted(self, session: Session) -> None:
        self._ended["connection_errors"] += 1

    def _remove(self, session: Session) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
        ended = self._ended
        ended["sessions_closed"] += 1
        ended["packets_out"] += session.packets_out
        ended["dropped_volatile"] += session.dropped_volatile
        if session.close_reason == "slow consumer":
            ended["slow_consumer_closes"] += 1

    def totals(self) -> Counter[str]:
        """Counters since start, for monitoring: ``packets_out``, ``dropped_volatile``,
        ``slow_consumer_closes``, ``sessions_closed``, ``connection_errors`` (a connection or
        session ended by an unexpected error), ``request_timeouts`` (408),
        ``refused_handshaking_per_address`` and ``refused_handshaking_total`` (the oldest
        connection still handshaking refused with 503, past a limit), ``fast_path_direct``,
        ``fast_path_gathered`` and ``fast_path_flushes`` (packets written at once, packets
        gathered for the end of a tick, and the writes of what was gathered: see
        :mod:`.ticks`).
        Sessions keep their own counts while they live (no shared state on the send path);
        ended ones are folded in here."""
        totals = Counter(self._ended)
        totals.update(self._handshakes.refused)
        for key, value in ticker_stats().items():  # direct, gathered, flushes
            totals[f"fast_path_{key}"] = value
        for session in self.sessions.values():
            totals["packets_out"] += session.packets_out
            totals["dropped_volatile"] += session.dropped_volatile
        return totals

    # ---- connections ---------------------------------------------------------------------
    async def handle_stream(self, stream: trio.abc.Stream, slot: Slot | None = None) -> None:
        """One connection: HTTP requests one after another, or a WebSocket.

        Every read has a deadline: the first request's headers ``header_timeout`` after the
        connection opened, a later one's ``idle_timeout`` after the previous response (and
        ``header_timeout`` after its first byte), a body ``body_timeout`` after its headers.
        Until its first request is complete the connection holds a handshaking ``slot``;
        if the slot is taken back for a newer connection, this one is answered 503.

        Whatever fails in here ends this connection (and the session it serves), logged and
        counted; it never reaches another connection or the process.
        """
        address = _peer_address(stream)
        try:
            try:
                switched = await self._serve_http(stream, address, slot)
            finally:
                if slot is not None:
                    slot.release()
                slot = None  # a WebSocket served from here on keeps neither
            if switched is not None:
                # the HTTP parser and the requests are gone by now
                serving, switched = switched.serve(), None
                await serving
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            self._ended["connection_errors"] += 1
            log.exception("connection from %s failed; closing it", _peer(address))
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _serve_http(
        self, stream: trio.abc.Stream, address: tuple[str, int] | None, slot: Slot | None
    ) -> Switched | None:
        """The HTTP part of a connection; what serves the WebSocket, if it became one."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        try:
            if slot is None:
                return await self._requests(conn, stream, address, None)
            switched = None
            with slot.scope:
                switched = await self._requests(conn, stream, address, slot)
            if slot.evicted:  # taken back for a newer connection, while it was reading
                with trio.move_on_after(1.0):
                    await send_simple(conn, stream, 503, BUSY)
                return None
            slot.release()
            return switched
        except h11.RemoteProtocolError as exc:
            await send_simple(conn, stream, exc.error_status_hint, str(exc))
            return None

    async def _requests(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        address: tuple[str, int] | None,
        slot: Slot | None,
    ) -> Switched | None:
        """Requests one after another, each given its deadlines, until one ends the
        connection's HTTP part."""
        config = self.config
        handoff = self.handoff
        first = True
        while True:
            event = None
            # with a handoff, the bytes of this request (some may have come with the last)
            seen = [conn.trailing_data[0]] if handoff is not None else None
            wait = config.header_timeout if first else config.idle_timeout
            with trio.move_on_after(wait) as deadline:
                event = await next_request(conn, stream, deadline, config.header_timeout, seen)
            if deadline.cancelled_caught and request_started(conn):
                self._ended["request_timeouts"] += 1
                await send_simple(conn, stream, 408, "Request Timeout")
                return None
            if not isinstance(event, h11.Request):
                return None  # the client is gone, or said nothing in time
            first = False
            if seen is not None and handoff is not None and not self._ours(event.target):
                return Switched(partial(handoff, stream, b"".join(seen)))
            outcome = await route(self, Exchange(conn, stream, event, address, self._ended, slot))
            if isinstance(outcome, Switched):
                return outcome
            if outcome is Done.CLOSE or conn.our_state is not h11.DONE:
                return None
            if conn.their_state is not h11.DONE:
                return None
            conn.start_next_cycle()

    def _ours(self, target: bytes) -> bool:
        """Whether a request for ``target`` is Engine.IO's (``/socket.io/``, with or without
        its last slash), as :func:`~.routing.route` tells."""
        path = target.partition(b"?")[0]
        return path == self._path or path + b"/" == self._path


def _peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    """The client's address and port; None for a stream that is not a socket's."""
    if not isinstance(stream, trio.SocketStream):
        return None
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return None
    return (str(peer[0]), int(peer[1]))


def _peer(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "an unknown address"
