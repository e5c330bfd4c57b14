"""Notifications that wait for users who are offline.

A notification is stored once (unread), then emitted to the room ``user:<userId>``: every
tab of that user that is connected receives it at once. When a user connects, each of their
unread notifications is sent to that socket, oldest first; the client marks them read
(``notificationRead`` or ``POST /api/notifications/<id>/read``), and every notification
carries its id so a client can tell one it has already shown.

Per user, "store and emit" and "read the unread and join the room" exclude each other, so a
notification created while a user is connecting reaches that socket exactly once: either in
the replay or live, never both and never neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from server.hub import Hub, Socket
from server.store import Notification, Store

#: Sent on connect at most; the rest follow on the next connect (and REST lists them all).
MAX_REPLAY = 500


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def event_payload(notification: Notification) -> dict[str, Any]:
    """``{id, type, title, body, link, timestamp}``: what the ``notification`` event carries."""
    payload = notification.as_json()
    del payload["read"]
    return payload


class Notifier:
    def __init__(self, hub: Hub, store: Store) -> None:
        self.hub = hub
        self.store = store
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def _exclusive(self, user_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(user_id, (None, 0))
        if lock is None:
            lock = trio.Lock()
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_id]
            if users == 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)

    async def notify(
        self, user_id: str, type: str, title: str, body: str, link: str
    ) -> Notification:
        """Store a notification for ``user_id`` and push it to their connected tabs."""
        async with self._exclusive(user_id):
            notification = await self.store.add_notification(user_id, type, title, body, link)
            self.hub.to(user_room(user_id)).emit("notification", event_payload(notification))
        return notification

    async def welcome(self, socket: Socket, user_id: str) -> int:
        """Join ``socket`` to its user's room and send it every unread notification."""
        async with self._exclusive(user_id):
            unread = await self.store.list_notifications(
                user_id, unread_only=True, oldest_first=True, limit=MAX_REPLAY
            )
            socket.join(user_room(user_id))
            for notification in unread:
                socket.emit("notification", event_payload(notification))
        return len(unread)
