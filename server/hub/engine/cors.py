"""Who may talk to the server from a browser page, and the CORS headers that say so.

One policy for the hub and the app: the same rule decides who may talk to either; only
what a preflight answers (the methods and headers of each) differs.
"""

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

    def __init__(
        self,
        origins: tuple[str, ...],
        *,
        methods: str = ALLOW_METHODS,
        allow_headers: str | None = None,
        max_age: int = 86400,
    ) -> None:
        self.allow_any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        self.methods = methods
        #: Headers a preflight allows; None: whatever the browser asks for.
        self.allow_headers = allow_headers
        self.max_age = max_age

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
        headers.append(("access-control-allow-methods", self.methods))
        wanted = self.allow_headers or request.get("access-control-request-headers")
        if wanted:
            headers.append(("access-control-allow-headers", wanted))
        headers.append(("access-control-max-age", str(self.max_age)))
        return headers
