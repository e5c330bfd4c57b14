"""A log line every ``interval`` seconds: connected clients, and users per project room."""

from __future__ import annotations

import logging

import trio

from server.hub import Hub
from server.realtime.service import Realtime

log = logging.getLogger("monitor")


def summary(hub: Hub, realtime: Realtime) -> str:
    rooms = realtime.room_users()
    listed = ", ".join(f"project:{pid}={users}" for pid, users in rooms.items()) or "none"
    return f"{hub.client_count} clients connected; users per project room: {listed}"


async def run_monitor(
    hub: Hub,
    realtime: Realtime,
    interval: float = 30.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Log :func:`summary` every ``interval`` seconds until cancelled."""
    task_status.started()
    while True:
        await trio.sleep(interval)
        log.info("%s", summary(hub, realtime))
