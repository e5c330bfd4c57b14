"""HTTP/1.1 on one connection, with h11: reading requests and bodies with deadlines, and
answering them. What serves a request says what comes next as a value, an :data:`Outcome`:
the connection goes on to the next request, it closes, or it is now a WebSocket.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import h11
import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.cors import Headers, OriginPolicy

if TYPE_CHECKING:
    from server.hub.engine.handshaking import Slot
    from server.hub.engine.session import RequestInfo, Session, Transport

# The error codes and messages of the reference server, in its JSON error body.
TRANSPORT_UNKNOWN = (0, "Transport unknown")
UNKNOWN_SID = (1, "Session ID unknown")
BAD_HANDSHAKE_METHOD = (2, "Bad handshake method")
BAD_REQUEST = (3, "Bad request")
FORBIDDEN = (4, "Forbidden")
UNSUPPORTED_PROTOCOL_VERSION = (5, "Unsupported protocol version")

#: What the socket is read in.
READ_SIZE = 65536


class Done(Enum):
    """A request was served (or refused) and its connection ..."""

    #: ... may carry the next request (if the client keeps it alive);
    KEEP_ALIVE = "keep-alive"
    #: ... closes.
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Switched:
    """The connection is a WebSocket now: ``serve()`` serves it to its end. It is called
    once the HTTP parser and the request are dropped, so that an idle WebSocket does not keep
    them."""

    serve: Callable[[], Awaitable[None]]


Outcome: TypeAlias = Done | Switched

#: Strings up to this long are shared (see :func:`shared`); at most this many at once.
SHARED_CHARS = 32
SHARED_MAX = 4096
_shared: dict[str, str] = {}


def shared(text: str) -> str:
    """The one copy of ``text`` that every request with it gets (a header's name, a short
    value that clients send alike, the method), so that the sessions that keep their
    handshake's headers do not each keep their own. Not :func:`sys.intern`: what clients
    send is theirs to choose, and the table is bounded (emptied when full)."""
    if len(text) > SHARED_CHARS:
        return text
    found = _shared.get(text)
    if found is None:
        if len(_shared) >= SHARED_MAX:
            _shared.clear()
        found = _shared[text] = text
    return found


class Server(Protocol):
    """What serving a request may ask of the server (an :class:`EngineServer`)."""

    config: EngineConfig
    policy: OriginPolicy
    sessions: dict[str, Session]

    @property
    def accepting(self) -> bool:
        """New sessions are welcome (not once the server is shutting down)."""

    async def open_session(self, request: RequestInfo, transport: Transport) -> Session:
        """A new session on ``transport``, running when this returns."""

    def serve_in_connection(
        self,
        request: RequestInfo,
        transport: Transport,
        carry: Callable[[Session, trio.Nursery], Awaitable[None]],
    ) -> Awaitable[None]:
        """A new session on ``transport``; what serves it in the calling task to its end."""

    def upgraded(self, session: Session) -> None:
        """``session`` has just moved from long-polling to a WebSocket."""


class BodyError(Enum):
    """Why a request body could not be read whole."""

    TOO_LARGE = "too large"
    TIMED_OUT = "timed out"
    CUT_SHORT = "cut short"


class Exchange:
    """One request on a connection and the means to answer it."""

    def __init__(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        request: h11.Request,
        address: tuple[str, int] | None,
        counters: Counter[str],
        slot: Slot | None = None,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.request = request
        self.address = address
        self.target = request.target.decode("latin-1")
        self.path, _, self.query_string = self.target.partition("?")
        self.method = shared(request.method.decode("ascii"))
        # a session keeps its handshake's headers: their names, and the short values that
        # most clients send alike, are shared by every connection rather than copied
        self.headers = {
            shared(k.decode("latin-1")): shared(v.decode("latin-1")) for k, v in request.headers
        }
        self.origin = self.headers.get("origin")
        #: The CORS headers of every answer, once the origin has been allowed.
        self.cors: Headers = []
        self._counters = counters
        self._slot = slot

    def complete(self) -> None:
        """The request has arrived whole: its connection is no longer handshaking."""
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    def timed_out(self) -> None:
        """The body did not arrive in time (counted as ``request_timeouts``)."""
        self._counters["request_timeouts"] += 1

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.request.headers:
            if key == name:
                return bytes(value)
        return None

    def content_length(self) -> int | None:
        value = self.header(b"content-length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    async def read_body(
        self, limit: int, timeout: float, *, keep: bool = True
    ) -> bytes | BodyError:
        """The request's body, within ``limit`` bytes and ``timeout`` seconds (discarded
        unless ``keep``); or why it could not be had."""
        return await read_body(self.conn, self.stream, limit, timeout, keep=keep)

    async def respond(
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
        if body and self.method != "HEAD":  # the answer to HEAD has headers only
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def error(self, status: int, error: tuple[int, str], *, close: bool = False) -> None:
        """The reference server's JSON error body, with the CORS headers."""
        body = json.dumps({"code": error[0], "message": error[1]}, separators=(",", ":"))
        await self.respond(status, body.encode(), "application/json", self.cors, close=close)

    async def text(self, status: int, text: bytes, *, close: bool = False) -> None:
        await self.respond(status, text, "text/plain", self.cors, close=close)


async def next_event(conn: h11.Connection, stream: trio.abc.ReceiveStream) -> Any:
    """The next h11 event, reading as needed; None once the client is gone or h11 pauses."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(READ_SIZE)))
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        return event


async def read_body(
    conn: h11.Connection,
    stream: trio.abc.ReceiveStream,
    limit: int,
    timeout: float,
    *,
    keep: bool = True,
) -> bytes | BodyError:
    """The one body-reading loop: a request's body, read within ``limit`` bytes and
    ``timeout`` seconds after its headers (``body_timeout``); kept only if ``keep``."""
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout):
        while True:
            event = await next_event(conn, stream)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return BodyError.TOO_LARGE
                if keep:
                    chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                return BodyError.CUT_SHORT
    return BodyError.TIMED_OUT


def request_started(conn: h11.Connection) -> bool:
    """Whether a request has begun arriving (bytes of it buffered, or its headers read)."""
    return conn.their_state is not h11.IDLE or bool(conn.trailing_data[0])


async def next_request(
    conn: h11.Connection,
    stream: trio.abc.ReceiveStream,
    deadline: trio.CancelScope,
    header_timeout: float,
    seen: list[bytes] | None = None,
) -> Any:
    """The next request's headers; once its first byte is in, they are due within
    ``header_timeout`` (``deadline`` is the wait for that first byte). What is read from
    the stream is also appended to ``seen``, if given."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.trailing_data[0]:
                deadline.deadline = min(deadline.deadline, trio.current_time() + header_timeout)
            data = bytes(await stream.receive_some(READ_SIZE))
            if data:
                deadline.deadline = min(deadline.deadline, trio.current_time() + header_timeout)
                if seen is not None:
                    seen.append(data)
            conn.receive_data(data)
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        return event


async def send_simple(
    conn: h11.Connection, stream: trio.abc.Stream, status: int, text: str
) -> None:
    """A last plain-text answer (408, 503, a malformed request's 400) before the connection
    closes, if a response can still be sent; a client already gone is no error."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = text.encode()
    headers = [
        ("content-type", "text/plain"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    with contextlib.suppress(
        h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError
    ):
        data = conn.send(h11.Response(status_code=status, headers=headers))
        data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        await stream.send_all(data)
