"""Every session's heartbeat, on one deadline queue (:mod:`server.hub.engine.deadlines`).

Every session pings after the same ``ping_interval`` and waits the same ``ping_timeout`` for
the pong, so two FIFO deques hold every session's next deadline and one task fires them: no
timer, task or cancel scope per session. A session holds its one pending heartbeat deadline
(``heartbeat_token``): a pong or the close cancels it, so the entry left in the queue is
skipped when it comes up, and does not keep the session alive meanwhile.
"""

from __future__ import annotations

from typing import Protocol

from server.hub.engine.deadlines import Deadline, Deadlines


class Beating(Protocol):
    #: The session's pending heartbeat deadline (its next ping, or the wait for its pong).
    heartbeat_token: Deadline[Beating] | None

    def send_ping(self) -> None: ...
    def ping_timed_out(self) -> None: ...
    def failed(self, error: BaseException, where: str) -> None: ...
    @property
    def is_open(self) -> bool: ...


def _failed(session: Beating, error: Exception) -> None:
    session.failed(error, "its heartbeat")  # one session's fault ends that session only


class Heartbeat:
    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.deadlines: Deadlines[Beating] = Deadlines(failed=_failed)
        self._fire_ping = self._ping  # one bound method for every deadline, not one each

    def schedule_ping(self, session: Beating) -> None:
        """Ping ``session`` after one interval (called on open and on the awaited pong)."""
        self._set(session, self.deadlines.add(self.ping_interval, self._fire_ping, session))

    def stop(self, session: Beating) -> None:
        """No more heartbeat for ``session`` (it closed); idempotent."""
        self._set(session, None)

    async def run(self) -> None:
        await self.deadlines.run()

    @staticmethod
    def _set(session: Beating, deadline: Deadline[Beating] | None) -> None:
        pending = session.heartbeat_token
        if pending is not None:
            pending.cancel()
        session.heartbeat_token = deadline

    def _ping(self, session: Beating) -> None:
        session.heartbeat_token = None
        if session.is_open:
            session.send_ping()
            self._set(session, self.deadlines.add(self.ping_timeout, _timed_out, session))


def _timed_out(session: Beating) -> None:
    session.heartbeat_token = None
    if session.is_open:
        session.ping_timed_out()
