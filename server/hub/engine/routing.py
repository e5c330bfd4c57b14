"""Where a request goes: the checks every Engine.IO request passes (path, origin, protocol
version, transport), then long-polling (:mod:`.polling`) or the WebSocket handshake
(:mod:`.upgrade`). Each refusal is the reference server's status and error body.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from server.hub.engine import polling, upgrade
from server.hub.engine.exchange import (
    BAD_REQUEST,
    FORBIDDEN,
    TRANSPORT_UNKNOWN,
    UNKNOWN_SID,
    UNSUPPORTED_PROTOCOL_VERSION,
    BodyError,
    Done,
    Exchange,
    Outcome,
    Server,
    shared,
)
from server.hub.engine.session import RequestInfo
from server.hub.protocol import engineio as eio


async def route(engine: Server, ex: Exchange) -> Outcome:
    """Serve one request whose headers have arrived; what the connection does next."""
    config = engine.config
    if ex.method != "POST":
        # a body we have no use for is read (within the limits) and dropped; a POST's is
        # read by the POST, which knows its session
        body = await ex.read_body(config.max_payload, config.body_timeout, keep=False)
        if body is BodyError.TIMED_OUT:
            ex.timed_out()
            await ex.respond(408, b"Request Timeout", "text/plain", close=True)
            return Done.CLOSE
        if body is BodyError.TOO_LARGE:
            await ex.respond(413, b"Payload Too Large", "text/plain", close=True)
            return Done.CLOSE
        if body is BodyError.CUT_SHORT:
            return Done.CLOSE
        ex.complete()

    if ex.path != config.path and ex.path + "/" != config.path:
        await ex.respond(404, b"Not Found", "text/plain")
        return Done.KEEP_ALIVE
    policy = engine.policy
    if not policy.allows(ex.origin, ex.headers.get("host")):
        await ex.error(403, FORBIDDEN)
        return Done.KEEP_ALIVE
    ex.cors = policy.headers(ex.origin)
    if ex.method == "OPTIONS":
        await ex.respond(204, b"", None, policy.preflight_headers(ex.origin, ex.headers))
        return Done.KEEP_ALIVE
    # a new session keeps it (as its handshake's): names and short values shared, as headers
    query = {shared(k): shared(v) for k, v in parse_qsl(ex.query_string, keep_blank_values=True)}
    if query.get("EIO") != str(eio.PROTOCOL_VERSION):
        await ex.error(400, UNSUPPORTED_PROTOCOL_VERSION)
        return Done.KEEP_ALIVE
    transport = query.get("transport")
    if transport not in config.transports:
        await ex.error(400, TRANSPORT_UNKNOWN)
        return Done.KEEP_ALIVE
    info = RequestInfo(
        method=ex.method,
        url=ex.target,
        path=ex.path,
        query=query,
        headers=ex.headers,
        address=ex.address,
        time=time.time(),
    )
    if transport == "websocket":
        return await upgrade.handshake(engine, ex, info)

    sid = query.get("sid")
    if sid is None:
        return await polling.handshake(engine, ex, info)
    session = engine.sessions.get(sid)
    if session is None:
        await ex.error(400, UNKNOWN_SID)
        return Done.KEEP_ALIVE
    if not session.polling:  # upgraded: polling requests for its sid are refused
        await ex.error(400, BAD_REQUEST)
        return Done.KEEP_ALIVE
    return await polling.serve(config, ex, session)
