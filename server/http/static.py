"""The web client (``web/dist``, built by ``npm run build``) served at ``/`` on the app port.

The page learns where the hub is from a tag this module adds to ``index.html`` as it serves
it::

    <meta name="hub" content='{"port": null, "url": null, "sameOrigin": true}'>

- By default the hub and the app share one port, and the page talks to the hub on its own
  origin (``sameOrigin``).
- When the hub has a port of its own (``--hub-port``: ``app.config["HUB_PORT"]``, set by
  ``python -m server`` once the hub listens, read at request time), the page reaches it on
  its own host name and that port, so a page opened as ``localhost`` or as ``127.0.0.1``
  calls the hub by that same name, which the hub's CORS allowlist (the app's own origins)
  accepts.
- Through a reverse proxy (the request carries ``X-Forwarded-For`` or ``Forwarded``), the
  page uses its own origin: the proxy serves ``/socket.io/`` there (``deploy/nginx.conf``).
- ``app.config["HUB_URL"]``, or else the ``HUB_URL`` environment variable, names the hub
  outright and wins over both.

Any path that is not a file of the build gets ``index.html`` (the page routes itself), except
under ``/api/``, which this blueprint does not match at all. Without a build, every page
answers 404 with a line that says how to build it, so a missing build is plain to see.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import trio
from quart import Blueprint, Response, current_app, request, send_from_directory
from quart.blueprints import BlueprintSetupState
from werkzeug.exceptions import NotFound
from werkzeug.routing import PathConverter

#: ``web/dist`` of this checkout.
DIST = Path(__file__).resolve().parents[2] / "web" / "dist"

NOT_BUILT = (
    "The web client is not built. `make run` builds it when it is missing; "
    "or run `cd web && npm ci && npm run build`, then reload.\n"
)

#: Hashed file names (``assets/index-3f9c1a.js``) never change content: cache them a year.
ASSET_MAX_AGE = 365 * 24 * 3600


def hub_tag(hub_port: int | None, hub_url: str | None = None, same_origin: bool = False) -> str:
    config = json.dumps(
        {"port": hub_port, "url": hub_url, "sameOrigin": same_origin}, separators=(",", ":")
    )
    return f'<meta name="hub" content="{html.escape(config, quote=True)}">'


class PagePath(PathConverter):
    """Any path outside ``/api/``: the API's unknown paths and methods stay the API's 404s."""

    regex = r"(?!api(?:/|$))[^/].*?"


def create_web(dist: Path = DIST) -> Blueprint:
    web = Blueprint("web", __name__)

    @web.record_once
    def add_converter(state: BlueprintSetupState) -> None:
        state.app.url_map.converters["page"] = PagePath

    async def index() -> Response:
        try:
            page = await trio.Path(dist / "index.html").read_text(encoding="utf-8")
        except FileNotFoundError:
            return Response(NOT_BUILT, status=404, content_type="text/plain; charset=utf-8")
        # the build's index.html is a few hundred bytes: read per request, so a rebuild
        # is served without a restart
        hub_port = current_app.config.get("HUB_PORT")
        proxied = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        tag = hub_tag(
            int(hub_port) if hub_port else None,
            current_app.config.get("HUB_URL") or os.environ.get("HUB_URL") or None,
            same_origin=proxied or not hub_port,
        )
        head_end = page.find("</head>")
        page = page[:head_end] + tag + page[head_end:] if head_end >= 0 else tag + page
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response

    @web.get("/")
    async def root() -> Response:
        return await index()

    @web.get("/<page:path>")
    async def file_or_page(path: str) -> Response:
        if path != "index.html":
            try:
                # safe_join inside refuses paths that leave ``dist``
                response = await send_from_directory(dist, path)
            except NotFound:
                pass
            else:
                if path.startswith("assets/"):
                    response.cache_control.max_age = ASSET_MAX_AGE
                    response.cache_control.public = True
                return response
        return await index()

    return web
