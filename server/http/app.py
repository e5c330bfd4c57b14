from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import jsonify
from quart_trio import QuartTrio

from server.hub import Hub


def create_app(hub: Hub) -> QuartTrio:
    """The app on the app port; it reaches the hub in-process through its public API."""
    app = QuartTrio(__name__)

    @app.get("/healthz")
    async def healthz() -> Any:
        return jsonify({"status": "ok", "hub": {"clients": hub.client_count}})

    return app


async def serve_app(
    app: QuartTrio,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with Hypercorn until cancelled; ``task_status`` gets the bound URLs."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    await serve(app, config, task_status=task_status)
