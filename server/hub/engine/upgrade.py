"""The WebSocket opening handshake, and what the WebSocket then carries: a session of its
own, or a polling session it upgrades (probe, then the switch).

The handshake answers 101 and returns :class:`~server.hub.engine.exchange.Switched`: the
connection's task drops its HTTP parser and then serves the WebSocket here to its end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial

import h11
import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.exchange import (
    BAD_REQUEST,
    UNKNOWN_SID,
    Done,
    Exchange,
    Outcome,
    Server,
    Switched,
)
from server.hub.engine.frames import CLOSE_NO_STATUS, CLOSE_PROTOCOL_ERROR, accept_token
from server.hub.engine.session import RequestInfo, Session
from server.hub.engine.websocket import WebSocketTransport
from server.hub.engine.wire import Wire
from server.hub.protocol import ProtocolError
from server.hub.protocol import engineio as eio

log = logging.getLogger("hub.engine")

#: Why a WebSocket's reading stopped, besides the transport's own reasons.
PARSE_ERROR = "parse error"
UPGRADE_FAILED = "upgrade failed"


async def handshake(engine: Server, ex: Exchange, info: RequestInfo) -> Outcome:
    """``transport=websocket``: the opening handshake, for a new session or, with a sid, to
    upgrade a polling one."""
    if ex.headers.get("upgrade", "").lower() != "websocket":
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
    key = ex.headers.get("sec-websocket-key")
    if not key or ex.headers.get("sec-websocket-version") != "13":
        await ex.error(400, BAD_REQUEST, close=True)
        return Done.CLOSE
    sid = info.query.get("sid")
    if sid is None:
        if not engine.accepting:
            await ex.error(400, BAD_REQUEST, close=True)
            return Done.CLOSE
        # the 101 goes out with the session's OPEN packet, in one write (see carry)
        transport = await _accept(ex, key, engine.config, now=False)
        # the session is served in this connection's task: see Session.serve
        return Switched(
            partial(engine.serve_in_connection, info, transport, partial(carry, transport))
        )
    session = engine.sessions.get(sid)
    if session is None:
        await ex.error(400, UNKNOWN_SID, close=True)
        return Done.CLOSE
    # A sid that cannot be upgraded (it is on a WebSocket already, or another one is
    # upgrading it) gets its WebSocket all the same, closed at once: what Node's server does
    # and the protocol's test suite expects ("ignores WebSocket connection with same sid").
    upgrading = session.begin_upgrade()
    try:
        transport = await _accept(ex, key, engine.config)
    except BaseException:
        if upgrading:
            session.upgrade_failed()
        raise
    if not upgrading:
        return Switched(partial(refuse, transport))
    return Switched(partial(serve_upgrade, engine.config, transport, session, engine.upgraded))


async def _accept(
    ex: Exchange, key: str, config: EngineConfig, *, now: bool = True
) -> WebSocketTransport:
    """The handshake's answer (101), and the transport of the WebSocket it opens. Sent at
    once, or (``now=False``) by the transport together with its first packet."""
    accept = accept_token(key.encode("latin-1"))
    response = h11.InformationalResponse(
        status_code=101,
        headers=[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", accept.decode("ascii")),
        ],
    )
    answer = ex.conn.send(response)
    trailing, _ = ex.conn.trailing_data  # frames that came with the request
    transport = WebSocketTransport(ex.stream, config, trailing)
    if now:
        await ex.stream.send_all(answer)
    else:
        transport.prelude = answer
    return transport


async def carry(transport: WebSocketTransport, session: Session, nursery: trio.Nursery) -> None:
    """The WebSocket carries ``session``, born on it: the handshake, then its messages to the
    session, until either ends. An unexpected error in here ends the session (logged with
    its sid, counted: :meth:`Session.failed`); it never reaches another connection."""
    transport.session = session
    transport.attach(nursery)
    # straight to the socket with the 101, like any packet for an idle connection
    transport.open_with(Wire([session.handshake_packet()]))
    try:
        reason = await transport.read_loop(partial(_receive, session))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise  # the client went away: not a fault
    except Exception as exc:
        session.failed(exc, "its WebSocket")
    else:
        _end(transport, session, reason)


async def _receive(session: Session, frame: str | bytes) -> str | None:
    """A message of the WebSocket that carries ``session``, to the session."""
    packet = _decode(session, frame)
    if packet is None:
        return PARSE_ERROR
    await session.receive(packet)
    return None


async def serve_upgrade(
    config: EngineConfig,
    transport: WebSocketTransport,
    session: Session,
    upgraded: Callable[[Session], None] | None = None,
) -> None:
    """Probe, then switch ``session`` from polling to this WebSocket, which then carries it.

    Until the switch the session stays on polling: if this WebSocket goes away, sends
    anything but the probe and then ``5``, or takes longer than ``upgrade_timeout``, it is
    closed and polling goes on. If the session closes meanwhile, the WebSocket is closed.
    An unexpected error in here ends the session (as in :func:`carry`). ``upgraded`` is
    told of the switch.
    """
    try:
        await _upgrade(config, transport, session, upgraded)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise
    except Exception as exc:
        session.failed(exc, "its WebSocket upgrade")


async def _upgrade(
    config: EngineConfig,
    transport: WebSocketTransport,
    session: Session,
    upgraded: Callable[[Session], None] | None,
) -> None:
    deadline = trio.CancelScope(deadline=trio.current_time() + config.upgrade_timeout)
    #: Around the task that closes this WebSocket if the session closes before the switch;
    #: cancelled at the switch, after which the session's close reaches it as its transport.
    watching = trio.CancelScope()

    async def on_frame(frame: str | bytes) -> str | None:
        packet = _decode(session, frame)
        if packet is None:
            return PARSE_ERROR
        if transport.session is session:  # upgraded: the session's own packets
            await session.receive(packet)
            return None
        if packet.type is eio.PacketType.PING and packet.data == "probe":
            if not session.probe():
                return UPGRADE_FAILED  # the session closed meanwhile
            transport.send_text_now("3probe")
            return None
        if packet.type is eio.PacketType.UPGRADE and session.upgrade(transport):
            transport.session = session
            transport.notify()  # flush what was queued for polling
            deadline.deadline = math.inf
            watching.cancel()  # an idle upgraded connection is one task, as any other
            if upgraded is not None:
                upgraded(session)
            return None
        return UPGRADE_FAILED

    async def close_with_session() -> None:
        with watching:
            await session.wait_closed()
            if transport.session is None:
                transport.close()  # closed before the switch: this WebSocket has nothing to carry

    try:
        async with trio.open_nursery() as nursery:
            transport.attach(nursery)
            nursery.start_soon(close_with_session)
            reason = "transport close"
            with deadline:
                reason = await transport.read_loop(on_frame)
            if transport.session is session:
                _end(transport, session, reason)
            else:
                session.upgrade_failed()  # polling goes on
                if reason == PARSE_ERROR:
                    transport.close(CLOSE_PROTOCOL_ERROR, "parse error")
                elif deadline.cancelled_caught or reason == UPGRADE_FAILED:
                    transport.close()  # refused, or not completed in time
                else:
                    transport.finish()
    finally:
        if transport.session is None:
            session.upgrade_failed()


async def refuse(transport: WebSocketTransport) -> None:
    """A WebSocket accepted only to be closed: a close frame without a status code, as Node
    sends; the client's close is awaited for a moment (``CLOSE_GRACE``)."""

    async def ignore(frame: str | bytes) -> None:
        return None

    async with trio.open_nursery() as nursery:
        transport.attach(nursery)
        transport.close(CLOSE_NO_STATUS)
        await transport.read_loop(ignore)


def _decode(session: Session, frame: str | bytes) -> eio.Packet | None:
    try:
        return eio.decode_frame(frame)
    except ProtocolError as exc:
        log.info("session %s: malformed packet: %s", session.sid, exc)
        return None


def _end(transport: WebSocketTransport, session: Session, reason: str) -> None:
    """Reading the WebSocket that carries ``session`` stopped for ``reason``: so does the
    session, and the WebSocket closes (with 1002 for a malformed packet)."""
    if reason == PARSE_ERROR:
        session.abort(PARSE_ERROR)
        transport.close(CLOSE_PROTOCOL_ERROR, "parse error")
    else:
        session.abort(reason)
        transport.finish()
