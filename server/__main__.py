"""``python -m server``: one ``trio.run``, one root nursery holding the hub and the app.

Task tree::

    root nursery
    ├── signal watcher: SIGINT / SIGTERM -> hub.shutdown(grace) -> cancel the root
    ├── hub.serve (hub port): /socket.io/, long-polling and WebSocket
    └── serve_app (app port): Hypercorn + Quart-Trio
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import trio

from server.http.app import create_app, serve_app
from server.hub import Hub
from server.lifecycle import cancel_on_signal
from server.settings import Settings, parse

log = logging.getLogger("server")


def build_hub(settings: Settings) -> Hub:
    return Hub(
        cors_origins=settings.allowed_origins,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        max_payload=settings.max_payload,
        connect_timeout=settings.connect_timeout,
    )


async def run(settings: Settings) -> None:
    hub = build_hub(settings)
    app = create_app(hub)
    async with trio.open_nursery() as root:

        async def drain() -> None:
            await hub.shutdown(settings.shutdown_grace)

        await root.start(cancel_on_signal, root.cancel_scope, drain)
        listeners = await root.start(hub.serve, settings.host, settings.hub_port)
        hub_port = listeners[0].socket.getsockname()[1]
        binds = await root.start(serve_app, app, settings.host, settings.port)
        log.info("hub listening on http://%s:%d/socket.io/", settings.host, hub_port)
        log.info("app listening on %s", ", ".join(binds))
    log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse(argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    trio.run(run, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
