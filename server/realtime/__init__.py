"""The project tool's real-time service: authentication at the handshake, project rooms,
chat, typing, cursors, presence per user, task events and notifications that wait for users
who are offline. Built on the hub's public API and the store."""

from server.realtime.access import NO_ACCESS, Access, Forbidden, NotFound
from server.realtime.auth import (
    TOKEN_INVALID,
    TOKEN_MISSING,
    Identity,
    InvalidToken,
    TokenVerifier,
    bearer_token,
)
from server.realtime.monitor import run_monitor, summary
from server.realtime.notifier import user_room
from server.realtime.service import Realtime, project_room

__all__ = [
    "NO_ACCESS",
    "TOKEN_INVALID",
    "TOKEN_MISSING",
    "Access",
    "Forbidden",
    "Identity",
    "InvalidToken",
    "NotFound",
    "Realtime",
    "TokenVerifier",
    "bearer_token",
    "project_room",
    "run_monitor",
    "summary",
    "user_room",
]
