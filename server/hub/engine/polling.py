"""Long-polling: the handshake GET, the GET that waits for packets, the POST that brings the
client's, and the answer Node gives to any other method.
"""

from __future__ import annotations

import logging

import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.exchange import (
    BAD_HANDSHAKE_METHOD,
    BAD_REQUEST,
    BodyError,
    Done,
    Exchange,
    Outcome,
    Server,
)
from server.hub.engine.session import RequestInfo, Session, contain
from server.hub.engine.ticks import DirectWrites
from server.hub.engine.wire import Wire
from server.hub.protocol import ProtocolError
from server.hub.protocol import engineio as eio

log = logging.getLogger("hub.engine")

#: Packets of one POST dispatched between two checkpoints: a body of a million one-byte
#: packets must not hold the event loop while it is worked through.
POST_SLICE = 128

_SEPARATOR = eio.SEPARATOR.encode()
_TEXT = "text/plain; charset=UTF-8"


class PollingTransport:
    """Long-polling has no connection of its own: requests come and go, the session waits."""

    name = "polling"

    def notify(self) -> None:
        pass  # the session wakes a pending GET itself

    def try_write(self, wire: Wire, batch: DirectWrites | None = None) -> bool:
        return False  # a polling response carries everything queued at once

    def unread_for(self) -> float:
        return 0.0  # the session knows whether a GET is waiting (Session.unread_for)


async def handshake(engine: Server, ex: Exchange, info: RequestInfo) -> Outcome:
    """A request without a sid: a GET opens a session, and is answered its OPEN packet."""
    if ex.method != "GET":
        await ex.error(400, BAD_HANDSHAKE_METHOD)
        return Done.KEEP_ALIVE
    if not engine.accepting:
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
    session = await engine.open_session(info, PollingTransport())
    body = eio.encode_payload([session.handshake_packet()])
    await ex.respond(200, body.encode(), _TEXT, ex.cors)
    return Done.KEEP_ALIVE


async def serve(config: EngineConfig, ex: Exchange, session: Session) -> Outcome:
    """A request for a session that long-polling carries."""
    if ex.method == "GET":
        return await poll(config, ex, session)
    if ex.method == "POST":
        return await post(config, ex, session)
    # as Node's polling transport answers any other method: 500, and the session lives on
    await ex.respond(500, b"", None, ex.cors)
    return Done.KEEP_ALIVE


async def poll(config: EngineConfig, ex: Exchange, session: Session) -> Outcome:
    """A GET: answered with what is queued, once there is something (a ping at the latest)."""
    if session.poll_pending:
        # two GETs at once: the first gets the CLOSE packet, this one an error
        session.close("transport error")
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
    with contain(session, "its polling GET"):
        return await _wait_and_answer(config, ex, session)
    return Done.CLOSE  # a fault, contained: the session is over


async def _wait_and_answer(config: EngineConfig, ex: Exchange, session: Session) -> Outcome:
    wires: list[Wire] = []
    client_gone = False
    # what a client may send while its GET waits: one pipelined request at most
    budget = config.max_header_bytes + config.max_payload

    async def watch_for_eof(cancel_scope: trio.CancelScope) -> None:
        nonlocal client_gone, budget
        while True:
            try:
                data = await ex.stream.receive_some(4096)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            budget -= len(data)
            if not data or budget < 0:
                client_gone = True
                cancel_scope.cancel()
                return
            ex.conn.receive_data(bytes(data))  # a pipelined request: kept for later

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_for_eof, nursery.cancel_scope)
        wires = await session.poll()
        nursery.cancel_scope.cancel()
    if client_gone:
        session.abort("transport error")
        return Done.CLOSE
    body = _SEPARATOR.join(record for wire in wires for record in wire.records())
    await ex.respond(200, body, _TEXT, ex.cors)
    return Done.KEEP_ALIVE


async def post(config: EngineConfig, ex: Exchange, session: Session) -> Outcome:
    """A POST: its packets, handed to the session in order. A broken POST (too big, one
    while another is sending, binary, incomplete) ends the session."""
    limit = config.max_payload
    length = ex.content_length()
    if length is not None and length > limit:
        session.abort("transport error")
        await ex.text(413, b"Payload Too Large", close=True)
        return Done.CLOSE
    if session.post_pending:
        session.abort("transport error")
        await ex.error(400, BAD_REQUEST, close=True)
        return Done.CLOSE
    if ex.header(b"content-type") == b"application/octet-stream":
        # protocol 4 polling carries binary as base64 text; Node refuses raw binary bodies
        session.abort("transport error")
        await ex.error(400, BAD_REQUEST, close=True)
        return Done.CLOSE
    session.post_pending = True
    try:
        try:
            body = await ex.read_body(limit, config.body_timeout)
        except trio.Cancelled:
            session.abort("transport error")  # half a body: the rest is lost
            raise
        if isinstance(body, BodyError):
            session.abort("transport error")
            if body is BodyError.TOO_LARGE:
                await ex.text(413, b"Payload Too Large", close=True)
            elif body is BodyError.TIMED_OUT:
                ex.timed_out()
                await ex.text(408, b"Request Timeout", close=True)
            return Done.CLOSE
        ex.complete()
        with contain(session, "its polling POST"):
            return await dispatch(ex, session, body)
        return Done.CLOSE  # a fault, contained: the session is over
    finally:
        session.post_pending = False


async def dispatch(ex: Exchange, session: Session, body: bytes) -> Outcome:
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
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
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
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
    await ex.respond(200, b"ok", "text/html", ex.cors)
    return Done.KEEP_ALIVE
