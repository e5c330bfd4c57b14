"""A minimal Socket.IO client on trio-websocket, for tests that need exact control of packets.

It answers pings by itself and hands every other packet to the test. It uses our codecs,
which ``tests/protocol`` checks against the specifications' own vectors.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from server.hub.protocol import engineio as eio
from server.hub.protocol import socketio as sio

#: The offsets our server appends to stored events (connection state recovery): the
#: in-memory store's, or a Redis stream entry's id (streams mode).
OFFSET = re.compile(r"[A-Za-z0-9_-]{8}\.[0-9a-f]+|[0-9]+-[0-9]+")


class RawClient:
    """Like the stock clients, it keeps each namespace's ``pid`` and the offset of the last
    event received there; unlike them, it hands events over without the offset."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.decoder = sio.Decoder()
        self.handshake: dict[str, Any] = {}
        self.sids: dict[str, str] = {}
        self.pids: dict[str, str] = {}
        self.offsets: dict[str, str] = {}
        self._ack_id = 100

    async def send_text(self, text: str) -> None:
        await self.ws.send_message(text)

    async def send_packet(self, packet: sio.Packet) -> None:
        for part in sio.encode(packet):
            if isinstance(part, bytes):
                await self.ws.send_message(part)
            else:
                await self.ws.send_message("4" + part)

    async def emit(self, event: str, *args: Any, nsp: str = "/", ack: bool = False) -> int | None:
        ack_id = None
        if ack:
            ack_id = self._ack_id
            self._ack_id += 1
        await self.send_packet(sio.Packet(sio.PacketType.EVENT, nsp, [event, *args], ack_id))
        return ack_id

    async def ack(self, ack_id: int, *args: Any, nsp: str = "/") -> None:
        await self.send_packet(sio.Packet(sio.PacketType.ACK, nsp, list(args), ack_id))

    async def receive(self, timeout: float = 5.0) -> sio.Packet:
        """The next Socket.IO packet (pings are answered on the way)."""
        with trio.fail_after(timeout):
            while True:
                message = await self.ws.get_message()
                if isinstance(message, str):
                    packet = eio.decode_text(message)
                    if packet.type is eio.PacketType.PING:
                        await self.ws.send_message("3")
                        continue
                    if packet.type is not eio.PacketType.MESSAGE:
                        continue
                    data: str | bytes = packet.data
                else:
                    data = bytes(message)
                result = self.decoder.feed(data)
                if result is not None:
                    return self._without_offset(result)

    def _without_offset(self, packet: sio.Packet) -> sio.Packet:
        if (
            packet.type is sio.PacketType.EVENT
            and packet.nsp in self.pids
            and packet.id is None
            and len(packet.data) > 1
            and isinstance(packet.data[-1], str)
            and OFFSET.fullmatch(packet.data[-1])
        ):
            self.offsets[packet.nsp] = packet.data[-1]
            return sio.Packet(packet.type, packet.nsp, packet.data[:-1], None, packet.binary)
        return packet

    async def receive_event(self, name: str, timeout: float = 5.0) -> list[Any]:
        """Arguments of the next ``name`` event, skipping other packets."""
        with trio.fail_after(timeout):
            while True:
                packet = await self.receive(timeout)
                if packet.type is sio.PacketType.EVENT and packet.data[0] == name:
                    return list(packet.data[1:])

    async def connect_namespace(
        self, nsp: str = "/", auth: dict[str, Any] | None = None
    ) -> sio.Packet:
        await self.send_packet(sio.Packet(sio.PacketType.CONNECT, nsp, auth))
        answer = await self.receive()
        if answer.type is sio.PacketType.CONNECT:
            self.sids[nsp] = answer.data["sid"]
            if "pid" in answer.data:
                self.pids[nsp] = answer.data["pid"]
        return answer

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (answering pings meanwhile)."""
        try:
            with trio.fail_after(timeout):
                while True:
                    message = await self.ws.get_message()
                    if message == "2":
                        await self.ws.send_message("3")
        except ConnectionClosed:
            return True


@asynccontextmanager
async def raw_client(
    url: str, nsp: str | None = "/", auth: dict[str, Any] | None = None, query: str = ""
) -> AsyncIterator[RawClient]:
    """Open a WebSocket-only connection and (unless ``nsp`` is None) join a namespace."""
    ws_url = url.replace("http://", "ws://") + f"/socket.io/?EIO=4&transport=websocket{query}"
    async with open_websocket_url(ws_url) as ws:
        client = RawClient(ws)
        opening = await ws.get_message()
        assert isinstance(opening, str) and opening.startswith("0"), opening
        client.handshake = json.loads(opening[1:])
        if nsp is not None:
            answer = await client.connect_namespace(nsp, auth)
            assert answer.type is sio.PacketType.CONNECT, answer
        yield client
