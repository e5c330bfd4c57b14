"""Socket.IO clients for the nginx test, each from a source address of its own.

nginx keeps a client on one process by hashing its address; on loopback every address in
127.0.0.0/8 is ours, so each client binds a different one. Two kinds, as browsers behave:
a polling-only client (HTTP long-polling through the proxy, request after request), and one
that starts on polling and upgrades to WebSocket (probe, then upgrade).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
import trio_websocket

from server.hub.protocol import engineio as eio
from server.hub.protocol import socketio as sio


class ProxiedClient:
    def __init__(self, base: str, source: str) -> None:
        self.base = base
        self.source = source
        self.http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address=source), timeout=30
        )
        self.sid = ""
        self.ws: trio_websocket.WebSocketConnection | None = None
        self.decoder = sio.Decoder()
        self._pending: list[str | bytes] = []

    def _url(self, transport: str) -> str:
        url = f"{self.base}/socket.io/?EIO=4&transport={transport}"
        return url + (f"&sid={self.sid}" if self.sid else "")

    async def open(self) -> None:
        response = await self.http.get(self._url("polling"))
        response.raise_for_status()
        assert response.text.startswith("0"), response.text
        self.sid = json.loads(response.text[1:])["sid"]

    async def send(self, packet: sio.Packet) -> None:
        parts = sio.encode(packet)
        assert len(parts) == 1, "no binary in these tests"
        text = "4" + str(parts[0])
        if self.ws is not None:
            await self.ws.send_message(text)
            return
        response = await self.http.post(self._url("polling"), content=text.encode())
        assert response.status_code == 200, response.text

    async def _messages(self) -> list[str | bytes]:
        if self.ws is not None:
            return [await self.ws.get_message()]
        response = await self.http.get(self._url("polling"))
        assert response.status_code == 200, response.text
        return list(response.text.split("\x1e"))

    async def receive(self, timeout: float = 10.0) -> sio.Packet:
        with trio.fail_after(timeout):
            while True:
                if not self._pending:
                    self._pending = await self._messages()
                message = self._pending.pop(0)
                assert isinstance(message, str)
                packet = eio.decode_text(message)
                if packet.type is eio.PacketType.PING:
                    await self._pong()
                    continue
                if packet.type is not eio.PacketType.MESSAGE:
                    continue
                assert isinstance(packet.data, str)
                result = self.decoder.feed(packet.data)
                if result is not None:
                    return result

    async def _pong(self) -> None:
        if self.ws is not None:
            await self.ws.send_message("3")
        else:
            await self.http.post(self._url("polling"), content=b"3")

    async def receive_event(self, name: str, timeout: float = 10.0) -> list[Any]:
        with trio.fail_after(timeout):
            while True:
                packet = await self.receive(timeout)
                if packet.type is sio.PacketType.EVENT and packet.data[0] == name:
                    return list(packet.data[1:])

    async def connect(self, auth: dict[str, Any]) -> str:
        await self.send(sio.Packet(sio.PacketType.CONNECT, "/", auth))
        answer = await self.receive()
        assert answer.type is sio.PacketType.CONNECT, answer
        sid: str = answer.data["sid"]
        return sid

    async def call(self, event: str, *args: Any, ack_id: int = 1) -> Any:
        await self.send(sio.Packet(sio.PacketType.EVENT, "/", [event, *args], ack_id))
        while True:
            packet = await self.receive()
            if packet.type is sio.PacketType.ACK and packet.id == ack_id:
                return packet.data[0] if packet.data else None

    async def upgrade(self, nursery: trio.Nursery) -> None:
        """Polling to WebSocket through the proxy, from the same source address."""
        split = urlsplit(self.base)
        assert split.hostname is not None and split.port is not None
        stream = await trio.open_tcp_stream(split.hostname, split.port, local_address=self.source)
        resource = f"/socket.io/?EIO=4&transport=websocket&sid={self.sid}"
        ws = await trio_websocket.wrap_client_stream(nursery, stream, split.hostname, resource)
        await ws.send_message("2probe")
        assert await ws.get_message() == "3probe"
        await ws.send_message("5")
        self.ws = ws

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.aclose()
        await self.http.aclose()
