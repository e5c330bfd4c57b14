"""Raw-wire clients for the conformance tests.

* :class:`Polling`: Engine.IO long-polling requests, with httpx.
* :func:`open_ws` / :class:`WsClient`: one Engine.IO WebSocket, with trio-websocket. A
  background reader answers the server's pings (``"2"`` -> ``"3"``) and keeps them out of
  what the test receives, the way the official suites' ``waitForPackets`` ignores ``"2"``;
  ``auto_pong=False`` hands every ping to the test instead.
* :func:`raw_request`: a bare HTTP/1.1 request, for what httpx will not send (a body shorter
  than its ``Content-Length``, a chunked body of a chosen size).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import httpx
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    open_websocket_url,
)

SEP = "\x1e"
#: The longest any single wait may take before the test fails (the server answers in ms).
TIMEOUT = 3.0
#: Timings of both example servers, in seconds.
PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
MAX_PAYLOAD = 1_000_000
EIO_PATH = "/engine.io/"
SIO_PATH = "/socket.io/"


def query(sid: str | None = None, *, transport: str = "polling", **extra: str) -> str:
    params = {"EIO": "4", "transport": transport}
    if sid is not None:
        params["sid"] = sid
    params.update(extra)
    return urlencode(params)


def ws_url(base: str, path: str, sid: str | None = None, **extra: str) -> str:
    return f"{base.replace('http', 'ws', 1)}{path}?{query(sid, transport='websocket', **extra)}"


def error_body(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    return body


# ---- long-polling -----------------------------------------------------------------------
class Polling:
    """Engine.IO long-polling requests on ``path`` of the client's base URL."""

    def __init__(self, http: httpx.AsyncClient, path: str) -> None:
        self.http = http
        self.path = path

    def url(self, sid: str | None = None, **extra: str) -> str:
        return f"{self.path}?{query(sid, **extra)}"

    async def handshake(self, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        response = await self.http.get(self.url(), headers=headers)
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.text.startswith("0"), response.text
        value: dict[str, Any] = json.loads(response.text[1:])
        return value

    async def open(self) -> str:
        sid: str = (await self.handshake())["sid"]
        return sid

    async def get(self, sid: str, **extra: str) -> httpx.Response:
        return await self.http.get(self.url(sid, **extra))

    async def post(self, sid: str, body: str | bytes) -> httpx.Response:
        return await self.http.post(
            self.url(sid), content=body, headers={"content-type": "text/plain;charset=UTF-8"}
        )

    async def poll(self, sid: str) -> list[str]:
        """One GET that must succeed; its records. Pings are answered and left out."""
        response = await self.get(sid)
        assert response.status_code == 200, (response.status_code, response.text)
        records = response.text.split(SEP)
        if "2" in records:
            pong = await self.post(sid, "3")
            assert pong.status_code == 200, pong.text
        return [r for r in records if r != "2"]

    async def poll_until(self, sid: str, wanted: str, timeout: float = TIMEOUT) -> list[str]:
        """Poll (answering pings) until a record equals ``wanted``; every record seen."""
        seen: list[str] = []
        with trio.fail_after(timeout):
            while wanted not in seen:
                seen.extend(await self.poll(sid))
        return seen


# ---- WebSocket --------------------------------------------------------------------------
class WsClient:
    """One raw Engine.IO WebSocket connection."""

    def __init__(self, ws: Any, auto_pong: bool) -> None:
        self.ws = ws
        self.auto_pong = auto_pong
        self.pings_answered = 0
        self.close_reason: CloseReason | None = None
        self.handshake: dict[str, Any] | None = None
        self._send, self._recv = trio.open_memory_channel[str | bytes](math.inf)

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.get_message()
                if message == "2" and self.auto_pong:
                    try:
                        await self.ws.send_message("3")
                    except ConnectionClosed:
                        pass
                    else:
                        self.pings_answered += 1
                    continue
                self._send.send_nowait(message)
        except ConnectionClosed as exc:
            self.close_reason = exc.reason
        finally:
            self._send.close()

    async def send(self, message: str | bytes) -> None:
        await self.ws.send_message(message)

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        """The next message (pings excluded when ``auto_pong``); fails if the server closes."""
        with trio.fail_after(timeout):
            try:
                return await self._recv.receive()
            except trio.EndOfChannel:
                raise AssertionError(f"connection closed: {self.close_reason}") from None

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        message = await self.recv(timeout)
        assert isinstance(message, str), message
        return message

    async def recv_many(self, count: int, timeout: float = TIMEOUT) -> list[str | bytes]:
        with trio.fail_after(timeout):
            return [await self.recv() for _ in range(count)]

    async def expect_closed(
        self, timeout: float = TIMEOUT, allowed: Iterable[str | bytes] = ("1", "2")
    ) -> CloseReason:
        """Wait for the server to end the connection; meanwhile only ``allowed`` may come
        (the CLOSE packet, and pings when the test answers them itself)."""
        allowed = tuple(allowed)
        with trio.fail_after(timeout):
            async for message in self._recv:
                assert message in allowed, f"unexpected {_short(message)} before the close"
        assert self.close_reason is not None
        return self.close_reason

    async def quiet_for(self, duration: float) -> None:
        """Nothing but pings (answered) may arrive for ``duration`` seconds."""
        with trio.move_on_after(duration):
            message = await self.recv(duration + 1)
            raise AssertionError(f"unexpected {_short(message)}")
        assert self.close_reason is None, self.close_reason

    async def echo(self, text: str) -> None:
        """Engine.IO echo server: a message comes back as it went."""
        await self.send("4" + text)
        assert await self.recv() == "4" + text

    async def sio_connect(
        self, nsp: str = "/", auth: str = "", *, expect_auth: bool = True
    ) -> dict[str, Any]:
        """Socket.IO CONNECT; returns the server's CONNECT payload. The reference server
        then emits ``auth`` with the CONNECT payload: checked here with ``expect_auth``."""
        prefix = "" if nsp == "/" else nsp + ","
        await self.send(f"40{prefix}{auth}")
        answer = await self.recv_text()
        assert answer.startswith("40" + prefix), answer
        payload: dict[str, Any] = json.loads(answer[2 + len(prefix) :])
        if expect_auth:
            assert await self.recv() == f'42{prefix}["auth",{auth or "{}"}]'
        return payload

    async def sio_echo(self, text: str) -> None:
        """Socket.IO reference server: ``message`` is answered with ``message-back``."""
        await self.send(f'42["message",{json.dumps(text)}]')
        assert await self.recv() == f'42["message-back",{json.dumps(text)}]'


def _short(message: str | bytes) -> str:
    """A message for an assertion text: big ones are cut, their size shown."""
    if len(message) <= 80:
        return repr(message)
    return f"{message[:60]!r}... ({len(message)} long)"


def _single_leaf(group: BaseExceptionGroup[Any]) -> BaseException | None:
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else None


@asynccontextmanager
async def open_ws(
    url: str,
    *,
    auto_pong: bool = True,
    handshake: bool = True,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[WsClient]:
    """A WebSocket to ``url``; with ``handshake``, the OPEN packet is read and checked first."""
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    async with open_websocket_url(
        url,
        extra_headers=extra,
        connect_timeout=TIMEOUT,
        disconnect_timeout=TIMEOUT,
        message_queue_size=64,
        max_message_size=4 * MAX_PAYLOAD,
    ) as ws:
        client = WsClient(ws, auto_pong)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._read)
                if handshake:
                    opening = await client.recv_text()
                    assert opening.startswith("0"), opening
                    client.handshake = json.loads(opening[1:])
                yield client
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # the nursery wraps what the test raised: hand the test's own error to pytest
            leaf = _single_leaf(group)
            if leaf is None:
                raise
            raise leaf from None


async def ws_refused(url: str, headers: Mapping[str, str] | None = None) -> ConnectionRejected:
    """The server must refuse this WebSocket handshake; returns the refusal (HTTP status, body)."""
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    try:
        async with open_websocket_url(
            url, extra_headers=extra, connect_timeout=TIMEOUT, disconnect_timeout=TIMEOUT
        ) as ws:
            raise AssertionError(f"handshake accepted: {await ws.get_message()!r}")
    except ConnectionRejected as refusal:
        return refusal


# ---- bare HTTP/1.1 ----------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    #: The server closed the connection after this response.
    closed: bool


async def raw_request(
    base: str,
    method: str,
    target: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: Iterable[bytes] = (),
    finish: bool = True,
    check_closed: bool = False,
) -> RawResponse:
    """Send a request with ``body`` as separate writes (the caller gives ``Content-Length``
    or ``Transfer-Encoding: chunked``), ending it only if ``finish``, and read the response.
    A body the server stops reading does not fail the request. With ``check_closed``, also
    wait a moment to see whether the server closes the connection after its response."""
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method=method, target=target, headers=[("host", parts.netloc), *headers])
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        with trio.fail_after(TIMEOUT):
            await stream.send_all(conn.send(request))
            try:
                for chunk in body:
                    await stream.send_all(conn.send(h11.Data(data=chunk)))
                if finish:
                    await stream.send_all(conn.send(h11.EndOfMessage()))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the server answered early and closed: read what it said
            status = 0
            response_headers: dict[str, str] = {}
            data = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        conn.receive_data(await stream.receive_some(65536))
                    except trio.BrokenResourceError as exc:
                        raise AssertionError(f"reset before the response: {exc!r}") from exc
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    response_headers = {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers
                    }
                elif isinstance(event, h11.Data):
                    data += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise AssertionError("connection closed before a complete response")
        closed = False
        if check_closed:
            with trio.move_on_after(0.5):
                try:
                    while await stream.receive_some(65536):
                        pass
                except trio.BrokenResourceError:
                    pass
                closed = True
    return RawResponse(status, response_headers, bytes(data), closed)
