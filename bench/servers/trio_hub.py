"""Ours: the hub, with the bench's events.

python -m bench.servers.trio_hub --port N [--max-queue 4096] [--with-app]

``--with-app``: the hub shares its port with a Quart-Trio app (``serve_with_app``), as
``python -m server`` runs by default; ``GET /healthz`` on the same port is the app's.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
from functools import partial
from importlib.metadata import version
from typing import Any

import trio
from quart_trio import QuartTrio

from server.http.shared_port import serve_with_app
from server.hub import ConnectRefused, Hub, Socket
from server.hub.adapter import AdapterFactory
from server.lifecycle import cancel_on_signal


def build_hub(max_queue: int, adapter_factory: AdapterFactory | None = None, **options: Any) -> Hub:
    hub = Hub(
        adapter_factory=adapter_factory,
        ping_interval=25.0,
        ping_timeout=20.0,
        max_queue=max_queue,
        cors_origins=("*",),
        # every bench client comes from 127.0.0.1, as every client comes from the proxy
        # behind one: no per-address cap on connections still handshaking or not yet joined
        # (with the default 128, a thousand clients connecting at once met a few 503s; the
        # other servers have no such cap)
        max_handshaking_per_address=0,
        max_unjoined_per_address=0,
        **options,
    )

    @hub.use
    def require_name(socket: Socket) -> None:
        name = socket.handshake.auth.get("name")
        if not name:
            raise ConnectRefused("a name is required")
        socket.data["name"] = name

    @hub.on("join")
    def on_join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @hub.on("enter")
    async def on_enter(socket: Socket, room: str) -> bool:
        # a presence join: the room hears of the newcomer, the newcomer gets the room's names
        socket.join(room)
        socket.to(room).emit("userJoined", {"name": socket.data["name"]})
        members = await hub.to(room).fetch_sockets()
        socket.emit("onlineMembers", {"members": [s.data["name"] for s in members]})
        return True

    @hub.on("broadcast")
    def on_broadcast(socket: Socket, room: str, payload: Any) -> None:
        hub.to(room).emit("msg", payload)

    @hub.on("echo")
    def on_echo(socket: Socket, payload: Any) -> Any:
        return payload

    return hub


def build_app(hub: Hub) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "clients": hub.client_count}

    return app


async def main(host: str, port: int, max_queue: int, with_app: bool = False) -> None:
    hub = build_hub(max_queue)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(cancel_on_signal, nursery.cancel_scope)
            if with_app:
                serving = partial(serve_with_app, hub, build_app(hub), host, port)
                listeners = await nursery.start(serving)
            else:
                listeners = await nursery.start(hub.serve, host, port)
            bound = listeners[0].socket.getsockname()
            print(
                f"listening {bound[0]}:{bound[1]} trio={version('trio')} max_queue={max_queue}"
                f" with_app={with_app}",
                flush=True,
            )
    finally:
        print(f"stats {dict(hub.stats)}", flush=True)


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-queue", type=int, default=4096)
    parser.add_argument("--with-app", action="store_true", help="share the port with an app")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    raise_fd_limit()
    trio.run(main, args.host, args.port, args.max_queue, args.with_app)
