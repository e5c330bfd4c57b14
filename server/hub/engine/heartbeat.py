"""One timer task for every session's heartbeat.

Every session pings after the same ``ping_interval`` and waits the same ``ping_timeout`` for
the pong, so deadlines are appended in time order: two FIFO deques hold them and the task
sleeps until the earliest. That is O(1) per ping and a few dozen bytes per session, instead of
a task or a cancel scope per session. An entry whose session has since moved on (pong
received, session closed) is recognised by its token and skipped.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

import trio

log = logging.getLogger("hub.engine")


class Beating(Protocol):
    heartbeat_token: int

    def send_ping(self) -> None: ...
    def ping_timed_out(self) -> None: ...
    def failed(self, error: BaseException, where: str) -> None: ...
    @property
    def is_open(self) -> bool: ...


class Heartbeat:
    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._pings: deque[tuple[float, Beating, int]] = deque()
        self._timeouts: deque[tuple[float, Beating, int]] = deque()
        self._wakeup = trio.Event()

    def schedule_ping(self, session: Beating) -> None:
        """Ping ``session`` after one interval (called on open and on every pong)."""
        session.heartbeat_token += 1
        self._push(self._pings, trio.current_time() + self.ping_interval, session)

    def _push(self, queue: deque[tuple[float, Beating, int]], when: float, s: Beating) -> None:
        queue.append((when, s, s.heartbeat_token))
        if len(queue) == 1:
            self._wakeup.set()

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            self._fire(now)
            nearest = min((q[0][0] for q in (self._pings, self._timeouts) if q), default=None)
            self._wakeup = trio.Event()
            if nearest is None:
                await self._wakeup.wait()
            else:
                with trio.move_on_at(nearest):
                    await self._wakeup.wait()

    def _fire(self, now: float) -> None:
        pings, timeouts = self._pings, self._timeouts
        while pings and pings[0][0] <= now:
            _, session, token = pings.popleft()
            if token == session.heartbeat_token and session.is_open:
                session.heartbeat_token += 1
                try:
                    session.send_ping()
                except Exception as exc:  # one session's fault ends that session only
                    session.failed(exc, "its heartbeat")
                    continue
                timeouts.append((now + self.ping_timeout, session, session.heartbeat_token))
        while timeouts and timeouts[0][0] <= now:
            _, session, token = timeouts.popleft()
            if token == session.heartbeat_token and session.is_open:
                try:
                    session.ping_timed_out()
                except Exception as exc:
                    session.failed(exc, "its heartbeat")
