"""A small chat on the hub: the README's example, runnable and tested.

python -m examples.quickstart --port 5000
"""

from __future__ import annotations

import argparse

import trio

from server.hub import ConnectRefused, Hub, Socket
from server.lifecycle import cancel_on_signal

hub = Hub(cors_origins=("http://localhost:3000",))


@hub.use
def require_name(socket: Socket) -> None:
    """Middleware: runs before the connection is accepted."""
    name = socket.handshake.auth.get("name")
    if not isinstance(name, str) or not name:
        raise ConnectRefused("a name is required")
    socket.data["name"] = name


@hub.on("connect")
def on_connect(socket: Socket) -> None:
    socket.emit("welcome", f"hello {socket.data['name']}")


@hub.on("join")
def on_join(socket: Socket, room: str) -> list[str]:
    socket.join(room)
    socket.to(room).emit("joined", socket.data["name"])  # everyone else in the room
    return sorted(socket.rooms - {socket.id})  # the return value answers the client's ack


@hub.on("say")
async def on_say(socket: Socket, room: str, text: str) -> None:
    hub.to(room).emit("said", {"from": socket.data["name"], "text": text})


@hub.on("typing")
def on_typing(socket: Socket, room: str) -> None:
    socket.to(room).volatile.emit("typing", socket.data["name"])  # may be dropped


@hub.on("quiz")
async def on_quiz(socket: Socket) -> str:
    answer = await socket.emit_with_ack("question", "2 + 2?", timeout=5)  # the client's ack
    return "right" if answer == 4 else "wrong"


@hub.on("disconnect")
def on_disconnect(socket: Socket, reason: str) -> None:
    hub.emit("left", socket.data.get("name"), reason)


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signal, nursery.cancel_scope)
        await nursery.start(hub.serve, "127.0.0.1", port)
        print(f"listening on http://127.0.0.1:{port}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    trio.run(main, parser.parse_args().port)
