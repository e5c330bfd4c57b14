"""The reference server that the Socket.IO protocol specification tests against.

Ping interval 300 ms, ping timeout 200 ms, max payload 1,000,000 bytes, connect timeout 1 s,
any origin; on connection it emits ``auth`` with the handshake's auth payload; ``message`` is
answered with ``message-back`` and the same arguments; ``message-with-ack`` is acknowledged
with the same arguments; namespace ``/custom`` emits ``auth`` on connection too::

    python -m examples.socketio_reference --port 3000

A few extra events serve the interop tests: ``server-ack-request`` (the server asks the client
for an ack), ``join`` / ``to-room`` (rooms), and namespace ``/private`` behind a middleware
that wants ``auth.token == "secret"``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import trio

from server.hub import AckTimeout, ConnectRefused, Disconnected, Hub, Socket
from server.lifecycle import cancel_on_signal


def build() -> Hub:
    hub = Hub(
        ping_interval=0.3,
        ping_timeout=0.2,
        max_payload=1_000_000,
        connect_timeout=1.0,
        cors_origins=("*",),
    )

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    @hub.on("message")
    def on_message(socket: Socket, *args: Any) -> None:
        socket.emit("message-back", *args)

    @hub.on("message-with-ack")
    def on_message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @hub.on("server-ack-request")
    async def on_server_ack_request(socket: Socket, payload: Any = None) -> None:
        try:
            answer = await socket.emit_with_ack("please-ack", payload, timeout=2.0)
        except (AckTimeout, Disconnected) as exc:
            socket.emit("ack-result", {"error": str(exc)})
            return
        socket.emit("ack-result", [answer])

    @hub.on("join")
    def on_join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @hub.on("to-room")
    def on_to_room(socket: Socket, room: str, data: Any) -> None:
        hub.to(room).emit("room-message", data)

    custom = hub.of("/custom")

    @custom.on("connect")
    def on_custom_connect(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    private = hub.of("/private")

    @private.use
    def require_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "secret":
            raise ConnectRefused("not authorized", {"reason": "no token"})

    return hub


async def main(host: str, port: int) -> None:
    hub = build()
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signal, nursery.cancel_scope)
        listeners = await nursery.start(hub.serve, host, port)
        bound = listeners[0].socket.getsockname()[1]
        print(f"socket.io reference server listening on http://{host}:{bound}/", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, args.host, args.port)


if __name__ == "__main__":
    cli()
