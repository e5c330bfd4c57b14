"""Notifications that wait for users who are offline, sent to each connection exactly once,
however many processes there are.

A notification is stored once (unread), then sent to every connection of its user that is
open, on any process: the process that made it sends it to its own sockets in the room
``user:<userId>`` and tells the other processes (a server-side event over the bridge), which
do the same for theirs. When a socket connects, it joins that room first, then is sent each
of its user's unread notifications, oldest first. The client marks them read
(``notificationRead`` or ``POST /api/notifications/<id>/read``).

Exactly once per connection, in the database: before a notification is sent to a socket,
the pair (socket id, notification id) is claimed in ``notification_deliveries``; only the
claim that inserted the row sends. The two ways a notification reaches a socket (live, and
the replay on connect) may both find it when it is created while the user connects, on the
same process or on two; one of them wins. And none misses it: a notification committed
before the replay's query is in its answer; one committed later is announced after the
socket joined the room, so it arrives live.

A socket recovered by connection state recovery gets back what was sent to it while it was
away (the hub stores every packet sent to a socket); what was created while it was away and
sent to nobody is sent to it on its return, by the same claims.
"""

from __future__ import annotations

import logging
from typing import Any

from server.hub import Hub, Socket
from server.store import Notification, Store

log = logging.getLogger(__name__)

#: Sent on connect at most; the rest follow on the next connect (and REST lists them all).
MAX_REPLAY = 500
#: The server-side event that tells the other processes of a new notification.
ANNOUNCE = "notification:new"


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

    def install(self) -> Notifier:
        self.hub.on_server_side(ANNOUNCE, self._announced)
        return self

    async def notify(
        self, user_id: str, type: str, title: str, body: str, link: str
    ) -> Notification:
        """Store a notification for ``user_id`` and send it to their open connections."""
        notification = await self.store.add_notification(user_id, type, title, body, link)
        payload = event_payload(notification)
        self.hub.server_side_emit(ANNOUNCE, user_id, payload)  # after the commit
        await self._send_here(user_id, payload)
        return notification

    async def welcome(self, socket: Socket, user_id: str) -> int:
        """Join ``socket`` to its user's room, then send it every unread notification that
        has not reached it yet; returns how many were sent."""
        socket.join(user_room(user_id))  # first: what is created from now on comes live
        unread = await self.store.list_notifications(
            user_id, unread_only=True, oldest_first=True, limit=MAX_REPLAY
        )
        if not unread or not socket.connected:
            return 0
        claimed = await self.store.claim_deliveries(socket.id, [n.id for n in unread])
        sent, unsent = 0, []
        for notification in unread:
            if notification.id not in claimed:
                continue  # it reached this socket live meanwhile
            if socket.emit("notification", event_payload(notification)):
                sent += 1
            else:
                unsent.append(notification.id)  # the socket closed meanwhile
        await self.store.release_deliveries(socket.id, unsent)
        return sent

    async def _announced(self, user_id: Any, payload: Any) -> None:
        """Another process made a notification: send it to this process's sockets."""
        if isinstance(user_id, str) and isinstance(payload, dict):
            await self._send_here(user_id, payload)

    async def _send_here(self, user_id: str, payload: dict[str, Any]) -> None:
        notification_id = payload.get("id")
        if not isinstance(notification_id, int):
            return
        sockets = [
            s
            for s in await self.hub.to(user_room(user_id)).local.fetch_sockets()
            if isinstance(s, Socket)
        ]
        for socket in sockets:
            if not socket.connected:
                continue
            try:
                claimed = await self.store.claim_deliveries(socket.id, [notification_id])
                if notification_id in claimed and not socket.emit("notification", payload):
                    await self.store.release_deliveries(socket.id, [notification_id])
            except Exception:
                # the notification is stored: a socket that did not get it because of this
                # gets it on its next connect (unless it was claimed and not released)
                log.exception("sending notification %d to %s failed", notification_id, socket.id)
