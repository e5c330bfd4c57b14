"""Random identifiers (session ids, socket ids): 15 random bytes in URL-safe base64, as
``secrets.token_urlsafe(15)`` makes them, drawn from a pool that one ``os.urandom`` call fills
for 256 of them, where each id cost a system call of its own."""

from __future__ import annotations

import base64
import os

_ID_BYTES = 15
_POOL_IDS = 256
_pool = b""
_at = 0


def random_id() -> str:
    """20 characters from ``[A-Za-z0-9_-]``: 120 bits from the operating system's CSPRNG."""
    global _pool, _at
    if _at >= len(_pool):
        _pool = os.urandom(_ID_BYTES * _POOL_IDS)
        _at = 0
    chunk = _pool[_at : _at + _ID_BYTES]
    _at += _ID_BYTES
    return base64.urlsafe_b64encode(chunk).decode("ascii")
