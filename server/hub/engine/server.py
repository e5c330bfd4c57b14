"""The Engine.IO server: one Trio listener serving long-polling (h11) and WebSocket (wsproto).

Task tree::

    EngineServer.serve
    ├── heartbeat (one timer for every session)
    ├── sessions nursery ── Session.run, one per session (its handlers run in its own nursery)
    └── connections nursery ── one task per TCP connection
            ├── HTTP requests, one after another (a GET may wait for packets)
            └── or, after an upgrade: WebSocket reader + writer
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import h11
import trio
from wsproto.utilities import generate_accept_token

from server.hub.engine.config import EngineConfig, within_descriptors
from server.hub.engine.cors import Headers, OriginPolicy
from server.hub.engine.heartbeat import Heartbeat
from server.hub.engine.session import DuplicatePoll, RequestInfo, Session, SessionHandler
from server.hub.engine.websocket import CLOSE_PROTOCOL_ERROR, WebSocketTransport
from server.hub.engine.wire import Wire
from server.hub.protocol import ProtocolError
from server.hub.protocol import engineio as eio

log = logging.getLogger("hub.engine")

#: accept() errors that say "not now" rather than "this listener is broken".
_ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: Packets of one polling POST dispatched between two checkpoints: a body of a million
#: one-byte packets must not hold the event loop while it is worked through.
POST_SLICE = 128

# The error codes and messages of the reference server, in its JSON error body.
TRANSPORT_UNKNOWN = (0, "Transport unknown")
UNKNOWN_SID = (1, "Session ID unknown")
BAD_HANDSHAKE_METHOD = (2, "Bad handshake method")
BAD_REQUEST = (3, "Bad request")
FORBIDDEN = (4, "Forbidden")
UNSUPPORTED_PROTOCOL_VERSION = (5, "Unsupported protocol version")

HandlerFactory = Callable[[Session], SessionHandler]


class PollingTransport:
    """Long-polling has no connection of its own: requests come and go, the session waits."""

    name = "polling"

    def notify(self) -> None:
        pass  # the session wakes a pending GET itself

    def try_write(self, wire: Wire) -> bool:
        return False  # a polling response carries everything queued at once


class _Upgraded(Exception):
    """The HTTP part of the connection is over: either it was refused (``serve`` is None) or
    it became a WebSocket, which ``serve()`` serves to its end. The WebSocket is served from
    :meth:`EngineServer.handle_stream` after the HTTP parser and request are dropped, so an
    idle connection does not keep them."""

    def __init__(self, serve: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self.serve = serve


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
        #: Connections that have not completed a request yet, oldest first: all of them, and
        #: by client address (dicts as ordered sets).
        self._handshaking: dict[_Handshaking, None] = {}
        self._handshaking_from: dict[str, dict[_Handshaking, None]] = {}
        #: ``max_handshaking``, but never more than half the descriptors the process may
        #: open: the other half is for the connections that are served
        self.max_handshaking = within_descriptors(config.max_handshaking, 2)
        self._refusals_logged_at = -math.inf

    # ---- serving -------------------------------------------------------------------------
    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` until cancelled; ``task_status`` gets the listeners."""
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
            into.start_soon(self.handle_stream, stream, self._admit(stream))

    def _admit(self, stream: trio.SocketStream) -> _Handshaking:
        """A place among the connections still handshaking. Past a limit, the oldest of them
        (from this address, or of all) is refused with 503 to make room: a new connection
        always gets its chance, so half-open ones cannot lock anyone out, and their number
        (so the file descriptors they hold) stays bounded."""
        try:
            host = str(stream.socket.getpeername()[0])
        except OSError:
            host = ""
        config = self.config
        per_address = config.max_handshaking_per_address
        same = self._handshaking_from.get(host)
        if per_address and same is not None and len(same) >= per_address:
            self._evict(next(iter(same)), "handshaking_per_address")
        if self.max_handshaking and len(self._handshaking) >= self.max_handshaking:
            self._evict(next(iter(self._handshaking)), "handshaking_total")
        slot = _Handshaking(self, host)
        self._handshaking[slot] = None
        self._handshaking_from.setdefault(host, {})[slot] = None
        return slot

    def _evict(self, slot: _Handshaking, reason: str) -> None:
        self._ended[f"refused_{reason}"] += 1
        now = trio.current_time()
        if now - self._refusals_logged_at >= 10.0:  # at most a line every 10 s
            self._refusals_logged_at = now
            log.warning(
                "too many connections handshaking (%d in all, %d from %s; limits %d, %d): "
                "refusing the oldest",
                len(self._handshaking),
                len(self._handshaking_from.get(slot.host, ())),
                slot.host,
                self.max_handshaking,
                self.config.max_handshaking_per_address,
            )
        slot.evict()

    def _release(self, slot: _Handshaking) -> None:
        self._handshaking.pop(slot, None)
        same = self._handshaking_from.get(slot.host)
        if same is not None:
            same.pop(slot, None)
            if not same:
                del self._handshaking_from[slot.host]

    @property
    def handshaking(self) -> int:
        """Connections open now that have not completed a request yet."""
        return len(self._handshaking)

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

    def close_all(self, reason: str = "server shutting down") -> None:
        self.stop_accepting()
        for session in list(self.sessions.values()):
            session.close(reason)

    async def _open_session(self, request: RequestInfo, transport: Any) -> Session:
        assert self._session_nursery is not None, "EngineServer.run_sessions is not running"
        session = Session(
            self.config, self.heartbeat, request, transport, self._remove, self._faulted
        )
        self.sessions[session.sid] = session
        await self._session_nursery.start(self._run_session, session)
        return session

    async def _run_session(
        self, session: Session, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._running == 0:
            self._all_closed = trio.Event()
        self._running += 1
        try:
            await session.run(self.handler_factory, task_status=task_status)
        finally:
            self._running -= 1
            if self._running == 0:
                self._all_closed.set()

    async def wait_all_closed(self) -> None:
        """Return once every session has closed and finished its clean-up."""
        await self._all_closed.wait()

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
        connection still handshaking refused with 503, past a limit).
        Sessions keep their own counts while they live (no shared state on the send path);
        ended ones are folded in here."""
        totals = Counter(self._ended)
        for session in self.sessions.values():
            totals["packets_out"] += session.packets_out
            totals["dropped_volatile"] += session.dropped_volatile
        return totals

    # ---- HTTP ----------------------------------------------------------------------------
    async def handle_stream(
        self, stream: trio.SocketStream, slot: _Handshaking | None = None
    ) -> None:
        """One TCP connection: HTTP requests one after another, or a WebSocket.

        Every read has a deadline: the first request's headers ``header_timeout`` after the
        connection opened, a later one's ``idle_timeout`` after the previous response (and
        ``header_timeout`` after its first byte), a body ``body_timeout`` after its headers.
        Until its first request is complete the connection holds a handshaking ``slot``;
        if the slot is taken back for a newer connection, this one is answered 503.

        Whatever fails in here ends this connection (and the session it serves), logged and
        counted; it never reaches another connection or the process.
        """
        config = self.config
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_bytes)
        try:
            address: tuple[str, int] | None = stream.socket.getpeername()[:2]
        except OSError:
            address = None
        serve_websocket = None
        try:
            with slot.scope if slot is not None else contextlib.nullcontext():
                serve_websocket = await self._serve_http(conn, stream, address, slot)
            if slot is not None and slot.evicted:
                with trio.move_on_after(1.0):
                    await _send_simple(conn, stream, 503, _BUSY)
                return
            if slot is not None:
                slot.release()
            if serve_websocket is not None:
                del conn
                await serve_websocket()
        except h11.RemoteProtocolError as exc:
            await _send_simple(conn, stream, exc.error_status_hint, str(exc))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except _Contained:
            pass  # a session's connection failed: logged, counted and closed already
        except Exception:
            self._ended["connection_errors"] += 1
            log.exception("connection from %s failed; closing it", _peer(address))
        finally:
            if slot is not None:
                slot.release()
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _serve_http(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        address: tuple[str, int] | None,
        slot: _Handshaking | None,
    ) -> Callable[[], Awaitable[None]] | None:
        """Requests one after another; what serves the WebSocket, if one was opened."""
        config = self.config
        first = True
        while True:
            event = None
            wait = config.header_timeout if first else config.idle_timeout
            with trio.move_on_after(wait) as deadline:
                event = await _next_request(conn, stream, deadline, config.header_timeout)
            if deadline.cancelled_caught and _request_started(conn):
                self._ended["request_timeouts"] += 1
                await _send_simple(conn, stream, 408, "Request Timeout")
                return None
            if not isinstance(event, h11.Request):
                return None
            first = False
            try:
                keep_alive = await self._handle_request(conn, stream, event, address, slot)
            except _Upgraded as upgraded:
                return upgraded.serve
            if not keep_alive or conn.our_state is not h11.DONE:
                return None
            if conn.their_state is not h11.DONE:
                return None
            conn.start_next_cycle()

    @contextlib.contextmanager
    def _serving(self, session: Session, where: str) -> Iterator[None]:
        """An unexpected error while this connection serves ``session`` ends the session
        (logged with its sid, counted) and then the connection, and nothing else."""
        try:
            yield
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except Exception as exc:
            session.failed(exc, where)
            raise _Contained from None

    async def _handle_request(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        request: h11.Request,
        address: tuple[str, int] | None,
        slot: _Handshaking | None = None,
    ) -> bool:
        target = request.target.decode("latin-1")
        path, _, query_string = target.partition("?")
        method = request.method.decode("ascii")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
        origin = headers.get("origin")
        reply = _Replier(conn, stream)
        if method != "POST":
            with trio.move_on_after(self.config.body_timeout) as body_deadline:
                within_limit = await _drain_body(conn, stream, self.config.max_payload)
            if body_deadline.cancelled_caught:
                self._ended["request_timeouts"] += 1
                await reply.send(408, b"Request Timeout", "text/plain", close=True)
                return False
            if not within_limit:
                await reply.send(413, b"Payload Too Large", "text/plain", close=True)
                return False
            if slot is not None:
                slot.release()  # the request is complete: no longer handshaking

        if path != self.config.path and path + "/" != self.config.path:
            await reply.send(404, b"Not Found", "text/plain")
            return True
        if not self.policy.allows(origin, headers.get("host")):
            await reply.error(403, FORBIDDEN, [])
            return True
        cors = self.policy.headers(origin)
        if method == "OPTIONS":
            await reply.send(204, b"", None, self.policy.preflight_headers(origin, headers))
            return True
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        if query.get("EIO") != str(eio.PROTOCOL_VERSION):
            await reply.error(400, UNSUPPORTED_PROTOCOL_VERSION, cors)
            return True
        transport = query.get("transport")
        if transport not in self.config.transports:
            await reply.error(400, TRANSPORT_UNKNOWN, cors)
            return True
        info = RequestInfo(
            method=method,
            url=target,
            path=path,
            query=query,
            headers=headers,
            address=address,
            time=time.time(),
        )
        if transport == "websocket":
            if headers.get("upgrade", "").lower() != "websocket":
                await reply.error(400, BAD_REQUEST, cors)
                return True
            await self._websocket(conn, stream, reply, info, cors)
            raise _Upgraded  # pragma: no cover - _websocket raises it itself

        sid = query.get("sid")
        if sid is None:
            if method != "GET":
                await reply.error(400, BAD_HANDSHAKE_METHOD, cors)
                return True
            if not self.accepting:
                await reply.error(400, BAD_REQUEST, cors)
                return True
            session = await self._open_session(info, PollingTransport())
            body = eio.encode_payload([session.handshake_packet()])
            await reply.send(200, body.encode(), "text/plain; charset=UTF-8", cors)
            return True

        existing = self.sessions.get(sid)
        if existing is None:
            await reply.error(400, UNKNOWN_SID, cors)
            return True
        session = existing
        if session.transport.name != "polling":
            await reply.error(400, BAD_REQUEST, cors)
            return True
        if method == "GET":
            return await self._poll(conn, stream, reply, session, cors)
        if method == "POST":
            return await self._post(conn, stream, reply, session, request, cors, slot)
        await reply.error(400, BAD_REQUEST, cors)
        return True

    async def _poll(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        reply: _Replier,
        session: Session,
        cors: Headers,
    ) -> bool:
        if session.poll_pending:
            # two GETs at once: the first gets the CLOSE packet, this one an error
            session.close("transport error")
            await reply.error(400, BAD_REQUEST, cors)
            return True
        with self._serving(session, "its polling GET"):
            wires: list[Wire] = []
            client_gone = False
            # what a client may send while its GET waits: one pipelined request at most
            budget = self.config.max_header_bytes + self.config.max_payload
            async with trio.open_nursery() as nursery:

                async def watch_for_eof() -> None:
                    nonlocal client_gone, budget
                    while True:
                        data = await stream.receive_some(4096)
                        budget -= len(data)
                        if not data or budget < 0:
                            client_gone = True
                            nursery.cancel_scope.cancel()
                            return
                        conn.receive_data(data)  # a pipelined request: kept for later

                nursery.start_soon(watch_for_eof)
                with contextlib.suppress(DuplicatePoll):  # checked above; kept for safety
                    wires = await session.poll()
                nursery.cancel_scope.cancel()
            if client_gone:
                session.abort("transport error")
                return False
            body = _SEPARATOR.join(record for wire in wires for record in wire.records())
            await reply.send(200, body, "text/plain; charset=UTF-8", cors)
            return True

    async def _post(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        reply: _Replier,
        session: Session,
        request: h11.Request,
        cors: Headers,
        slot: _Handshaking | None = None,
    ) -> bool:
        limit = self.config.max_payload
        length = _content_length(request)
        if length is not None and length > limit:
            session.abort("transport error")
            await reply.send(413, b"Payload Too Large", "text/plain", cors, close=True)
            return False
        if session.post_pending:
            session.abort("transport error")
            await reply.error(400, BAD_REQUEST, cors, close=True)
            return False
        if _header(request, b"content-type") == b"application/octet-stream":
            # protocol 4 polling carries binary as base64 text; Node refuses raw binary bodies
            session.abort("transport error")
            await reply.error(400, BAD_REQUEST, cors, close=True)
            return False
        session.post_pending = True
        try:
            chunks: list[bytes] = []
            size = 0
            with trio.move_on_after(self.config.body_timeout) as body_deadline:
                while True:
                    try:
                        event = await _next_event(conn, stream)
                    except trio.Cancelled:
                        session.abort("transport error")  # half a body: the rest is lost
                        raise
                    if isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > limit:
                            session.abort("transport error")
                            await reply.send(
                                413, b"Payload Too Large", "text/plain", cors, close=True
                            )
                            return False
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        session.abort("transport error")
                        return False
            if body_deadline.cancelled_caught:
                self._ended["request_timeouts"] += 1
                session.abort("transport error")
                await reply.send(408, b"Request Timeout", "text/plain", cors, close=True)
                return False
            if slot is not None:
                slot.release()  # the request is complete: no longer handshaking
            with self._serving(session, "its polling POST"):
                return await self._dispatch_payload(reply, session, b"".join(chunks), cors)
        finally:
            session.post_pending = False

    async def _dispatch_payload(
        self, reply: _Replier, session: Session, body: bytes, cors: Headers
    ) -> bool:
        """Hand a POST's packets to the session one by one, with a checkpoint every
        :data:`POST_SLICE` of them, so one big body never holds the event loop.

        As in the reference server, the packets before a malformed record are delivered and
        the session then closes with a parse error.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            log.info("session %s: polling payload is not UTF-8: %s", session.sid, exc)
            session.abort("parse error")
            await reply.error(400, BAD_REQUEST, cors)
            return True
        del body
        try:
            for n, packet in enumerate(eio.iter_payload(text), 1):
                if not session.is_open:
                    break  # closed meanwhile (a flood disconnected, say): the rest is moot
                await session.receive(packet)
                if n % POST_SLICE == 0:
                    await trio.lowlevel.checkpoint()
        except ProtocolError as exc:
            log.info("session %s: malformed polling payload: %s", session.sid, exc)
            session.abort("parse error")
            await reply.error(400, BAD_REQUEST, cors)
            return True
        await reply.send(200, b"ok", "text/html", cors)
        return True

    # ---- WebSocket -----------------------------------------------------------------------
    async def _websocket(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        reply: _Replier,
        info: RequestInfo,
        cors: Headers,
    ) -> None:
        key = info.headers.get("sec-websocket-key")
        if not key or info.headers.get("sec-websocket-version") != "13":
            await reply.error(400, BAD_REQUEST, cors)
            raise _Upgraded
        sid = info.query.get("sid")
        session: Session | None = None
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None:
                await reply.error(400, UNKNOWN_SID, cors)
                raise _Upgraded
            if session.transport.name != "polling" or session.upgrading:
                await reply.error(400, BAD_REQUEST, cors)
                raise _Upgraded
            session.upgrading = True
        elif not self.accepting:
            await reply.error(400, BAD_REQUEST, cors)
            raise _Upgraded
        accept = generate_accept_token(key.encode("latin-1"))
        try:
            await stream.send_all(
                conn.send(
                    h11.InformationalResponse(
                        status_code=101,
                        headers=[
                            ("upgrade", "websocket"),
                            ("connection", "Upgrade"),
                            ("sec-websocket-accept", accept.decode("ascii")),
                        ],
                    )
                )
            )
        except BaseException:
            if session is not None:
                session.upgrading = False
            raise
        trailing, _ = conn.trailing_data
        transport = WebSocketTransport(stream, self.config, trailing)
        if session is None:
            raise _Upgraded(partial(self._serve_websocket_session, transport, info))
        raise _Upgraded(partial(self._serve_upgrade, transport, session))

    async def _serve_websocket_session(
        self, transport: WebSocketTransport, info: RequestInfo
    ) -> None:
        session = await self._open_session(info, transport)
        transport.session = session
        # straight to the socket, like any packet for an idle connection: no writer task
        if not transport.try_write(Wire([session.handshake_packet()])):
            transport.send_text_now(eio.encode_text(session.handshake_packet()))
        await self._run_websocket(transport, session)

    async def _run_websocket(self, transport: WebSocketTransport, session: Session) -> None:
        async def on_frame(frame: str | bytes) -> None:
            await session.receive(eio.decode_frame(frame))

        with self._serving(session, "its WebSocket"):
            async with trio.open_nursery() as nursery:
                transport.attach(nursery)
                try:
                    reason = await transport.read_loop(on_frame)
                except ProtocolError as exc:
                    log.info("session %s: malformed packet: %s", session.sid, exc)
                    session.abort("parse error")
                    transport.close(CLOSE_PROTOCOL_ERROR, "parse error")
                    return
                session.abort(reason)
                transport.finish()

    async def _serve_upgrade(self, transport: WebSocketTransport, session: Session) -> None:
        """Probe, then switch the session from polling to this WebSocket."""
        with self._serving(session, "its WebSocket upgrade"):
            await self._upgrade(transport, session)

    async def _upgrade(self, transport: WebSocketTransport, session: Session) -> None:
        upgraded = False

        async def on_frame(frame: str | bytes) -> None:
            nonlocal upgraded
            packet = eio.decode_frame(frame)
            if upgraded:
                await session.receive(packet)
            elif packet.type is eio.PacketType.PING and packet.data == "probe":
                transport.send_text_now("3probe")
                session.probed = True
                session.wake_poll()
            elif packet.type is eio.PacketType.UPGRADE and session.probed and session.is_open:
                upgraded = True
                upgrade_deadline.deadline = float("inf")
                session.upgraded = True
                session.transport = transport
                transport.session = session
                transport.notify()  # flush what was queued for polling
            else:
                raise _UpgradeFailed

        async def close_with_session() -> None:
            await session.wait_closed()
            if not upgraded:
                transport.close()

        try:
            async with trio.open_nursery() as nursery:
                transport.attach(nursery)
                nursery.start_soon(close_with_session)
                upgrade_deadline = trio.CancelScope(
                    deadline=trio.current_time() + self.config.upgrade_timeout
                )
                reason = "transport close"
                with upgrade_deadline:
                    try:
                        reason = await transport.read_loop(on_frame)
                    except ProtocolError as exc:
                        log.info("session %s: malformed packet: %s", session.sid, exc)
                        if upgraded:
                            session.abort("parse error")
                        transport.close(CLOSE_PROTOCOL_ERROR, "parse error")
                        return
                    except _UpgradeFailed:
                        transport.close()
                        return
                if upgrade_deadline.cancelled_caught:
                    transport.close()  # the upgrade did not complete in time
                    return
                if upgraded:
                    session.abort(reason)
                transport.finish()
        finally:
            if not upgraded:
                session.upgrading = False
                session.probed = False


class _UpgradeFailed(Exception):
    pass


class _Replier:
    def __init__(self, conn: h11.Connection, stream: trio.SocketStream) -> None:
        self.conn = conn
        self.stream = stream

    async def send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: Headers | None = None,
        *,
        close: bool = False,
    ) -> None:
        headers: list[tuple[str, str]] = []
        if content_type:
            headers.append(("content-type", content_type))
        headers.append(("content-length", str(len(body))))
        if status == 200:
            headers.append(("cache-control", "no-store"))
        if extra:
            headers.extend(extra)
        if close:
            headers.append(("connection", "close"))
        data = self.conn.send(h11.Response(status_code=status, headers=headers))
        data += self.conn.send(h11.Data(data=body)) if body else b""
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def error(
        self, status: int, error: tuple[int, str], cors: Headers, *, close: bool = False
    ) -> None:
        body = json.dumps({"code": error[0], "message": error[1]}, separators=(",", ":"))
        await self.send(status, body.encode(), "application/json", cors, close=close)


async def _next_event(conn: h11.Connection, stream: trio.abc.ReceiveStream) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(bytes(data))
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        return event


async def _drain_body(conn: h11.Connection, stream: trio.abc.ReceiveStream, limit: int) -> bool:
    """Read and discard a request body we have no use for; False if it is over ``limit``."""
    size = 0
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                return False
        elif isinstance(event, h11.EndOfMessage) or event is None:
            return True


def _header(request: h11.Request, name: bytes) -> bytes | None:
    for key, value in request.headers:
        if key == name:
            return bytes(value)
    return None


def _content_length(request: h11.Request) -> int | None:
    value = _header(request, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _send_simple(
    conn: h11.Connection, stream: trio.SocketStream, status: int, text: str
) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    with contextlib.suppress(
        h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError
    ):
        await _Replier(conn, stream).send(status, text.encode(), "text/plain", close=True)


class _Contained(Exception):
    """A session's connection failed and has been dealt with (see ``_serving``)."""


class _Handshaking:
    """A connection's place among those that have not completed a request yet."""

    __slots__ = ("_engine", "evicted", "host", "scope")

    def __init__(self, engine: EngineServer, host: str) -> None:
        self._engine: EngineServer | None = engine
        self.host = host
        #: Around the connection's HTTP phase: cancelled when the place is taken back.
        self.scope = trio.CancelScope()
        self.evicted = False

    def release(self) -> None:
        """The connection completed a request (or closed); idempotent."""
        if self._engine is not None:
            self._engine._release(self)
            self._engine = None

    def evict(self) -> None:
        """Taken back for a newer connection: this one stops reading and is answered 503."""
        self.release()
        self.evicted = True
        self.scope.cancel()


_SEPARATOR = eio.SEPARATOR.encode()
_BUSY = "Too many connections handshaking: retry later"


def _peer(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "an unknown address"


def _request_started(conn: h11.Connection) -> bool:
    """Whether a request has begun arriving (bytes of it buffered, or its headers read)."""
    return conn.their_state is not h11.IDLE or bool(conn.trailing_data[0])


async def _next_request(
    conn: h11.Connection,
    stream: trio.abc.ReceiveStream,
    deadline: trio.CancelScope,
    header_timeout: float,
) -> Any:
    """The next request's headers; once its first byte is in, they are due within
    ``header_timeout`` (``deadline`` is the wait for that first byte)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.trailing_data[0]:
                deadline.deadline = min(deadline.deadline, trio.current_time() + header_timeout)
            data = await stream.receive_some(65536)
            if data:
                deadline.deadline = min(deadline.deadline, trio.current_time() + header_timeout)
            conn.receive_data(bytes(data))
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        return event
