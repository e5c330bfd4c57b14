"""Engine.IO only: every message is sent back as it came.

The configuration of the Engine.IO protocol's test-suite server: ping interval 300 ms, ping
timeout 200 ms, max payload 1,000,000 bytes, any origin, path ``/engine.io/``, polling and
WebSocket on one port::

    python -m examples.engineio_echo --port 3000
"""

from __future__ import annotations

import argparse
import logging

import trio

from server.hub.engine import EngineConfig, EngineServer, Session, Wire
from server.lifecycle import cancel_on_signal

CONFIG = EngineConfig(
    path="/engine.io/",
    ping_interval=0.3,
    ping_timeout=0.2,
    max_payload=1_000_000,
    cors_origins=("*",),
)


class Echo:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def on_message(self, data: str | bytes) -> None:
        self.session.send(Wire.messages([data]))

    async def on_close(self, reason: str) -> None:
        pass


async def main(host: str, port: int) -> None:
    engine = EngineServer(CONFIG, Echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signal, nursery.cancel_scope)
        listeners = await nursery.start(engine.serve, host, port)
        bound = listeners[0].socket.getsockname()[1]
        print(f"engine.io echo listening on http://{host}:{bound}/engine.io/", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, args.host, args.port)


if __name__ == "__main__":
    cli()
