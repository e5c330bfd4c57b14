"""The app on the app port: REST API, /metrics, /healthz (and, later, the web client at /).

It reaches the hub in-process, through its public API and the real-time service.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from server.http.api import create_api
from server.http.dev import create_dev
from server.http.metrics import HttpCounts, create_monitoring
from server.http.static import create_web
from server.hub import Hub, OriginPolicy
from server.hub.bridge import Bridge
from server.realtime import Realtime

log = logging.getLogger("server.http")

#: The largest request body the API reads.
MAX_BODY = 1_000_000
#: Seconds a request's body may go without a byte arriving.
READ_TIMEOUT = 30


def create_app(
    hub: Hub,
    realtime: Realtime | None = None,
    *,
    demo_project_id: int | None = None,
    cors_origins: tuple[str, ...] = (),
    bridge: Bridge | None = None,
) -> QuartTrio:
    """The app; without ``realtime`` it serves only /healthz and /metrics.

    ``demo_project_id`` (``--dev``) registers ``POST /api/dev/token``. ``cors_origins`` are
    the browser origins allowed to call the API from elsewhere (``*`` for any). ``bridge``
    (with Redis) adds its health and counters to /healthz and /metrics.
    """
    app = QuartTrio(__name__)
    # the hub's rule for who may call from a browser page; the API's own methods and headers
    cors = OriginPolicy(
        cors_origins,
        methods="GET, POST, PUT, OPTIONS",
        allow_headers="Authorization, Content-Type",
        max_age=600,
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    http: HttpCounts = Counter()
    app.register_blueprint(create_monitoring(hub, realtime, http, bridge))
    if realtime is not None:
        app.register_blueprint(create_api(realtime))
        if demo_project_id is not None:
            app.register_blueprint(create_dev(realtime, demo_project_id))
    app.register_blueprint(create_web())  # the board page at /, from web/dist

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            return exc
        response = jsonify({"error": exc.name})
        if exc.code == 413:
            # the rest of the body is never read: the connection cannot carry another request
            response.headers["Connection"] = "close"
        return response, exc.code or 500

    @app.errorhandler(Exception)
    async def internal_error(exc: Exception) -> Any:
        log.error("%s %s failed", request.method, request.path, exc_info=exc)
        return jsonify({"error": "Internal error"}), 500

    @app.after_request
    async def count_and_allow(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        http[(request.method, rule, response.status_code)] += 1
        origin = request.headers.get("Origin")
        if origin and cors.allows(origin, request.headers.get("Host")):
            if request.method == "OPTIONS":
                asked = {k.lower(): v for k, v in request.headers.items()}
                allowed = cors.preflight_headers(origin, asked)
            else:
                allowed = cors.headers(origin)
            for name, value in allowed:
                response.headers[name] = value
        return response

    return app


async def serve_app(
    app: QuartTrio,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with Hypercorn until cancelled; ``task_status`` gets the bound URLs."""
    config = hypercorn_config()
    config.bind = [f"{host}:{port}"]
    await serve(app, config, task_status=task_status)


def hypercorn_config() -> Config:
    """How Hypercorn serves the app, on its own listener or on the hub's."""
    config = Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    # a request whose body stops arriving is closed after this many seconds without a byte
    # (Hypercorn's keep-alive timeout already closes a connection that sends no request)
    config.read_timeout = READ_TIMEOUT
    return config
