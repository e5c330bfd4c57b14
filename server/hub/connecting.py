"""Connections waiting for their first CONNECT: the connect timeout, and a cap on them.

A connection that has not joined a namespace holds a session (and, over WebSocket, a file
descriptor) for up to ``connect_timeout`` seconds without having shown any credentials, so
their number is capped, per client address and in all (at most a quarter of the process's
file descriptor limit). Past a cap the oldest waiting one is closed to make room, so a
client that floods handshakes only ever evicts its own connections.

The timeouts are one :class:`~server.hub.engine.deadlines.Deadlines` queue (the class the
heartbeat's queue is too, each with a task of its own): every connection has the same
timeout, so they fall due in the order connections arrived, and no connection carries a
timer of its own.
"""

from __future__ import annotations

import logging
from typing import Protocol

from server.hub.engine.config import within_descriptors
from server.hub.engine.deadlines import Deadline, Deadlines
from server.hub.engine.session import Session

log = logging.getLogger("hub")


class Joining(Protocol):
    """A connection that may be waiting for its first CONNECT."""

    session: Session

    def connect_deadline_passed(self) -> None:
        """No namespace joined in time (or room is needed): close the connection."""


class ConnectDeadlines:
    def __init__(self, timeout: float, per_address: int = 0, overall: int = 0) -> None:
        self.timeout = timeout
        self.per_address = per_address
        self.overall = within_descriptors(overall, 4)
        self._deadlines: Deadlines[Joining] = Deadlines(failed=_failed)
        #: The connections waiting, oldest first, with their deadline: all of them and by
        #: client address (dicts as ordered sets).
        self._waiting: dict[Joining, tuple[str, Deadline[Joining]]] = {}
        self._waiting_from: dict[str, dict[Joining, None]] = {}
        #: Connections closed to make room for newer ones.
        self.evicted = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def run(self) -> None:
        """Close what did not join in time, until cancelled (one task for all)."""
        await self._deadlines.run()

    def add(self, client: Joining, host: str) -> None:
        same = self._waiting_from.get(host)
        if self.per_address and same is not None and len(same) >= self.per_address:
            self._evict(next(iter(same)))
        if self.overall and len(self._waiting) >= self.overall:
            self._evict(next(iter(self._waiting)))
        deadline = self._deadlines.add(self.timeout, _passed, client)
        self._waiting[client] = (host, deadline)
        self._waiting_from.setdefault(host, {})[client] = None

    def done(self, client: Joining) -> None:
        """``client`` joined a namespace, or closed: it no longer waits; idempotent."""
        entry = self._waiting.pop(client, None)
        if entry is None:
            return
        host, deadline = entry
        deadline.cancel()
        same = self._waiting_from[host]
        del same[client]
        if not same:
            del self._waiting_from[host]

    def _evict(self, client: Joining) -> None:
        self.done(client)
        self.evicted += 1
        if self.evicted % 1000 == 1:
            log.warning(
                "too many connections waiting for their first CONNECT (%d in all): closing "
                "the oldest (%d so far)",
                len(self._waiting),
                self.evicted,
            )
        client.connect_deadline_passed()


def _passed(client: Joining) -> None:
    client.connect_deadline_passed()


def _failed(client: Joining, error: Exception) -> None:
    client.session.failed(error, "its connect timeout")
