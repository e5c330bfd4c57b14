"""The python-socketio peer: ``AsyncServer(async_mode="asgi")`` on uvicorn, one worker.

python -m bench.servers.pysio_server --port N
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
from importlib.metadata import version
from typing import Any

import socketio  # type: ignore[import-untyped]
import uvicorn


def build_app() -> Any:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*",
        ping_interval=25,
        ping_timeout=20,
        max_http_buffer_size=1_000_000,
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not isinstance(auth, dict) or not auth.get("name"):
            raise socketio.exceptions.ConnectionRefusedError("a name is required")
        await sio.save_session(sid, {"name": auth["name"]})

    @sio.event
    async def join(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    @sio.event
    async def enter(sid: str, room: str) -> bool:
        # a presence join: the room hears of the newcomer, the newcomer gets the room's names
        name = (await sio.get_session(sid))["name"]
        await sio.enter_room(sid, room)
        await sio.emit("userJoined", {"name": name}, room=room, skip_sid=sid)
        # the manager's participants of the room (this process's: python-socketio has no
        # cluster-wide listing), with the name each saved in its session at connect
        members = [
            (await sio.get_session(other))["name"]
            for other, _ in list(sio.manager.get_participants("/", room))
        ]
        await sio.emit("onlineMembers", {"members": members}, to=sid)
        return True

    @sio.event
    async def broadcast(sid: str, room: str, payload: Any) -> None:
        await sio.emit("msg", payload, room=room)

    @sio.event
    async def echo(sid: str, payload: Any) -> Any:
        return payload

    return socketio.ASGIApp(sio)


class AnnouncingServer(uvicorn.Server):
    """Prints ``listening`` once uvicorn's sockets accept connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        config = self.config
        http = getattr(config, "http_protocol_class", None)
        ws = getattr(config, "ws_protocol_class", None)
        print(
            f"listening {config.host}:{config.port} python-socketio={version('python-socketio')}"
            f" uvicorn={version('uvicorn')} http={getattr(http, '__name__', http)}"
            f" ws={getattr(ws, '__name__', ws)}"
            f" loop={type(asyncio.get_running_loop()).__module__}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    config = uvicorn.Config(
        build_app(),
        host=args.host,
        port=args.port,
        workers=1,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws_ping_interval=None,
        ws_ping_timeout=None,
        backlog=4096,
        timeout_graceful_shutdown=2,
    )
    AnnouncingServer(config).run()


if __name__ == "__main__":
    main()
