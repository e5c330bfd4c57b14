"""The engine in memory: clients on ``trio.testing.memory_stream_pair``, no sockets.

:func:`memory_engine` runs an :class:`EngineServer`'s sessions in the test's nursery, and
each :meth:`Memory.connect` hands the server side of a new stream pair to
``handle_stream``, as the accept loop hands it a TCP connection. With the ``autojump_clock``
fixture (``MockClock(autojump_threshold=0)``) every timeout (heartbeat, upgrade, read
deadlines) passes as soon as nothing else can run, so tests use the real defaults (a 25 s
ping interval, a 10 s upgrade timeout) and take milliseconds; they assert the exact times.

* :class:`Http`: HTTP/1.1 requests with h11 on one stream (keep-alive).
* :class:`Ws`: a WebSocket with wsproto's client side (masked frames), opened with a
  handshake of our own; it answers WebSocket pings itself and hands Engine.IO pings (``"2"``)
  to the test like any other message.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import h11
import trio
import trio.testing
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from server.hub.engine import EngineConfig, EngineServer, Session, Wire
from server.hub.engine.handshaking import Slot

PATH = "/engine.io/"
#: The defaults a stock client sees (Node's), with the echo server's path.
CONFIG = EngineConfig(path=PATH, cors_origins=("*",))


def target(sid: str | None = None, transport: str = "polling", **extra: str) -> str:
    query = f"EIO=4&transport={transport}"
    if sid is not None:
        query += f"&sid={sid}"
    for key, value in extra.items():
        query += f"&{key}={value}"
    return f"{PATH}?{query}"


class Echo:
    """Every message is sent back as it came; the messages and the close are recorded."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.got: list[str | bytes] = []
        self.closed: str | None = None

    async def on_message(self, data: str | bytes) -> None:
        self.got.append(data)
        self.session.send(Wire.messages([data]))

    async def on_close(self, reason: str) -> None:
        self.closed = reason


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class Closed(Exception):
    """The server closed the connection before a complete response."""


class Http:
    """HTTP/1.1 on one stream, one request after another."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def send(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        finish: bool = True,
    ) -> None:
        """The request; its body whole, and its end unless ``finish`` is False."""
        all_headers = [("host", "test"), *headers]
        framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers)
        if not framed and (body or method in ("POST", "PUT")):
            all_headers.append(("content-length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.conn.send(h11.Data(data=body))
        if finish:
            data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def response(self) -> Response:
        status, headers, body = 0, {}, bytearray()
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError:  # closed before a complete response
                raise Closed from None
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                self.conn.receive_data(bytes(data))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise Closed
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return Response(status, headers, bytes(body))

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        await self.send(method, target, body, headers)
        return await self.response()


async def read_until_closed(stream: trio.abc.Stream) -> bytes:
    """Everything the server sends until it closes."""
    data = b""
    try:
        while chunk := await stream.receive_some(65536):
            data += chunk
    except trio.BrokenResourceError:
        pass
    return data


@dataclass
class Message:
    """What a WebSocket received: a message, or the close (``code`` set)."""

    data: str | bytes | None = None
    code: int | None = None


class Ws:
    """A client WebSocket over a memory stream."""

    def __init__(self, stream: trio.abc.Stream, trailing: bytes) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT, trailing_data=trailing)
        self._text: list[str] = []
        self._data: list[bytes] = []
        self.close_code: int | None = None

    @staticmethod
    async def handshake(stream: trio.abc.Stream, target: str) -> Ws | Response:
        """The opening handshake: the connection, or the refusal if not 101."""
        conn = h11.Connection(h11.CLIENT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = h11.Request(
            method="GET",
            target=target,
            headers=[
                ("host", "test"),
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", key),
            ],
        )
        await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                return Ws(stream, conn.trailing_data[0])
            elif isinstance(event, h11.Response):
                # a refusal: its status, headers and body
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
                body = bytearray()
                while not isinstance(event, h11.EndOfMessage):
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(bytes(await stream.receive_some(65536)))
                    elif isinstance(event, h11.Data):
                        body += event.data
                return Response(status, headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                raise Closed

    async def send(self, message: str | bytes) -> None:
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(message)
        await self.stream.send_all(self.ws.send(event))

    async def receive(self) -> Message:
        """The next message, or the close (answered, as a client does)."""
        while True:
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        text = "".join(self._text)
                        self._text.clear()
                        return Message(text)
                elif isinstance(event, BytesMessage):
                    self._data.append(bytes(event.data))
                    if event.message_finished:
                        data = b"".join(self._data)
                        self._data.clear()
                        return Message(data)
                elif isinstance(event, Ping):
                    await self.stream.send_all(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    if self.ws.state is ConnectionState.REMOTE_CLOSING:
                        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                            await self.stream.send_all(self.ws.send(event.response()))
                    return Message(code=event.code)
            try:
                data = bytes(await self.stream.receive_some(65536))
            except trio.BrokenResourceError:
                data = b""
            self.ws.receive_data(data or None)  # None: the connection is gone

    async def recv(self) -> str | bytes:
        """The next message, which must not be the close."""
        message = await self.receive()
        assert message.data is not None, f"closed with {message.code}"
        return message.data

    async def expect_closed(self) -> list[str | bytes]:
        """The messages that came before the server closed; the close code is kept."""
        before = []
        while (message := await self.receive()).data is not None:
            before.append(message.data)
        return before

    async def close(self, code: int = 1000) -> None:
        await self.stream.send_all(self.ws.send(CloseConnection(code=code)))


class Memory:
    """An engine whose connections are memory streams."""

    def __init__(self, server: EngineServer, nursery: trio.Nursery) -> None:
        self.server = server
        self.nursery = nursery

    def connect(self, slot: Slot | None = None) -> trio.abc.Stream:
        client, served = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.server.handle_stream, served, slot)
        return client

    def connect_admitted(self) -> trio.abc.Stream:
        """A connection counted among those handshaking, as the accept loop does it."""
        client, served = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.server.handle_stream, served, self.server.admit(served))
        return client

    async def request(self, method: str, target: str, body: bytes = b"") -> Response:
        """One request on a connection of its own."""
        stream = self.connect()
        try:
            return await Http(stream).request(method, target, body)
        finally:
            await stream.aclose()

    async def open(self) -> str:
        """A polling handshake; the new session's sid."""
        response = await self.request("GET", target())
        assert response.status == 200, response
        assert response.text.startswith("0"), response.text
        sid: str = json.loads(response.body[1:])["sid"]
        return sid

    async def get(self, sid: str) -> Response:
        return await self.request("GET", target(sid))

    async def post(self, sid: str, body: str | bytes) -> Response:
        data = body.encode() if isinstance(body, str) else body
        return await self.request("POST", target(sid), data)

    async def ws(self, sid: str | None = None) -> Ws:
        """A WebSocket that must be accepted; for a new session, its OPEN packet is read."""
        ws = await Ws.handshake(self.connect(), target(sid, "websocket"))
        assert isinstance(ws, Ws), ws
        return ws

    def session(self, sid: str) -> Session:
        return self.server.sessions[sid]

    def handler(self, sid: str) -> Echo:
        handler = self.session(sid).handler
        assert isinstance(handler, Echo)
        return handler


@asynccontextmanager
async def memory_engine(
    config: EngineConfig = CONFIG, handler: Any = Echo
) -> AsyncIterator[Memory]:
    server = EngineServer(config, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_sessions)
        yield Memory(server, nursery)
        nursery.cancel_scope.cancel()


def handshake_of(message: str | bytes) -> dict[str, Any]:
    assert isinstance(message, str) and message.startswith("0"), message
    value: dict[str, Any] = json.loads(message[1:])
    return value
