"""Who may talk to the server from a browser page, and the CORS headers that say so."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

Headers = list[tuple[str, str]]

ALLOW_METHODS = "GET,POST,OPTIONS"


class OriginPolicy:
    """An allowlist of origins (``*`` for any).

    A request without ``Origin`` (not a browser) or from the server's own origin is always
    allowed; any other origin must be listed. Allowed cross-origin requests get their origin
    echoed with credentials allowed, so cookies and ``withCredentials`` clients work.
    """

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.allow_any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.allow_any or origin in self.origins:
            return True
        return host is not None and urlsplit(origin).netloc == host

    def headers(self, origin: str | None) -> Headers:
        if origin is None:
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        ]

    def preflight_headers(self, origin: str | None, request: Mapping[str, str]) -> Headers:
        headers = self.headers(origin)
        headers.append(("access-control-allow-methods", ALLOW_METHODS))
        wanted = request.get("access-control-request-headers")
        if wanted:
            headers.append(("access-control-allow-headers", wanted))
        headers.append(("access-control-max-age", "86400"))
        return headers
