"""Connection state recovery: what a client missed while it was away, given back once.

The wire contract is Socket.IO's (4.6 and later):

- the CONNECT answer carries a private session id, ``pid``, beside the public ``sid``;
- every stored packet (an EVENT with no ack id that is not volatile) gets an *offset*, a
  string appended as its last argument, so the client always knows the last one it saw;
- on reconnection the client puts ``pid`` and ``offset`` in its CONNECT payload. If the
  session is known, not expired, and the offset is still in the buffer, the socket comes back
  with its old id, its rooms and its ``data``, and every stored packet after that offset
  which was meant for it is sent again, in order.

One addition to the reference server: a client that never received a stored packet has no
offset to send (a client closed as a slow consumer before its first event got out, say). Its
session remembers where the buffer stood when it connected, and recovery starts there.

A namespace asks its adapter's :class:`Recovery` for all of this. In one process it is the
:class:`RecoveryStore` here, one per namespace; in a cluster on Redis streams it is the
streams adapter's, which keeps sessions and packets in Redis so that any node can restore
any client (see :mod:`server.hub.bridge.streams_adapter`).

Both halves of a :class:`RecoveryStore` are bounded: packets by count, by bytes (each is
kept once, as the frames every recipient was sent) and by age, sessions by age. Expired
entries are dropped as new ones arrive, so no timer is needed.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from server.hub.engine import Wire
from server.hub.selection import BroadcastOptions

#: Why a socket went away, when it may come back with its state (the connection was lost or
#: closed by us, as opposed to a deliberate namespace disconnect by either side).
RECOVERABLE_REASONS = frozenset(
    {
        "transport error",
        "transport close",
        "forced close",
        "ping timeout",
        "server shutting down",
        "forced server close",
        "slow consumer",
    }
)


@dataclass(slots=True)
class SavedSession:
    sid: str
    pid: str
    rooms: frozenset[str]
    data: dict[str, Any]
    disconnected_at: float
    #: Where the packet log stood when it connected: the first packet that may have been
    #: for it (an index here; a position in the stream for the streams adapter).
    base: Any


@dataclass(slots=True)
class Restored:
    session: SavedSession
    #: The last stored packet the client saw.
    seq: int


class Recovery(Protocol):
    """What a namespace asks of connection state recovery."""

    def position(self) -> Any:
        """Where the packet log stands now: a new socket's ``recovery_base``."""

    async def resume(self, pid: str, offset: str | None) -> Restored | None:
        """The session ``pid`` back, with where its client stopped (``offset``: the last
        stored packet it received; None if none); None when it cannot be restored whole.
        Taken at most once: put it back if the socket does not connect after all."""

    def missed(self, restored: Restored) -> list[Wire]:
        """The encoded packets a restored session missed, oldest first. Called with no
        checkpoint between it and the socket rejoining its rooms."""

    def put_back(self, restored: Restored) -> None:
        """A restore that did not complete: keep the session for another attempt."""

    def attached(
        self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any
    ) -> None:
        """A recoverable socket is connected here (new, or restored)."""

    def save(self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any) -> None:
        """A recoverable socket went away for a reason it may come back from."""

    def forget(self, sid: str, pid: str) -> None:
        """A recoverable socket left for good (a deliberate disconnect)."""

    def awaited(self, room: str) -> bool:
        """Whether a socket that went away and may come back to this node was in ``room``
        ("": any such socket): a broadcast from elsewhere to it is kept, even with no
        socket of the room connected here, for that socket to get when it is restored."""


@dataclass(slots=True)
class _Stored:
    seq: int
    opts: BroadcastOptions
    wire: Wire
    at: float


class RecoveryStore:
    def __init__(
        self,
        max_disconnection_duration: float,
        max_packets: int,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.max_disconnection_duration = max_disconnection_duration
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        #: The size of the packets kept, in bytes.
        self.bytes = 0
        self._clock = clock
        #: Offsets of this store start with this, so an offset from an earlier process (or
        #: another namespace) never matches one of ours.
        self._prefix = secrets.token_urlsafe(6) + "."
        self._next_seq = 0
        self._packets: deque[_Stored] = deque()
        #: pid -> session, in the order they were saved (oldest first).
        self._sessions: dict[str, SavedSession] = {}
        #: How many of those sessions are in each room.
        self._session_rooms: Counter[str] = Counter()
        #: Restores refused, by reason: "unknown", "expired", "offset".
        self.misses: dict[str, int] = {"unknown": 0, "expired": 0, "offset": 0}
        self.restored = 0

    # ---- packets -----------------------------------------------------------------------
    def next_offset(self) -> str:
        """The offset of the next packet :meth:`store` keeps; the caller appends it."""
        return f"{self._prefix}{self._next_seq:x}"

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def store(self, opts: BroadcastOptions, wire: Wire) -> None:
        """Keep ``wire`` (encoded with the offset :meth:`next_offset` gave) for recovery."""
        now = self._clock()
        self._packets.append(_Stored(self._next_seq, opts, wire, now))
        self.bytes += wire.nbytes
        self._next_seq += 1
        self._expire_packets(now)

    def _expire_packets(self, now: float) -> None:
        packets = self._packets
        threshold = now - self.max_disconnection_duration
        while packets and (
            len(packets) > self.max_packets
            or self.bytes > self.max_bytes
            or packets[0].at < threshold
        ):
            self.bytes -= packets.popleft().wire.nbytes

    def _seq_of(self, offset: str) -> int | None:
        if not offset.startswith(self._prefix):
            return None
        try:
            return int(offset[len(self._prefix) :], 16)
        except ValueError:
            return None

    @property
    def packet_count(self) -> int:
        return len(self._packets)

    # ---- sessions ----------------------------------------------------------------------
    def position(self) -> int:
        return self._next_seq

    async def resume(self, pid: str, offset: str | None) -> Restored | None:
        return self.restore(pid, offset)

    def attached(
        self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any
    ) -> None:
        return None  # kept in memory only when it goes away

    def forget(self, sid: str, pid: str) -> None:
        return None

    def save(self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any) -> None:
        now = self._clock()
        self._expire_sessions(now)
        self._drop_session(pid)  # re-inserted last: the dict stays in time order
        self._keep_session(SavedSession(sid, pid, frozenset(rooms), data, now, base))

    def _keep_session(self, session: SavedSession) -> None:
        self._sessions[session.pid] = session
        self._session_rooms.update(session.rooms)

    def _drop_session(self, pid: str) -> SavedSession | None:
        session = self._sessions.pop(pid, None)
        if session is not None:
            self._session_rooms.subtract(session.rooms)
            for room in session.rooms:
                if self._session_rooms[room] <= 0:
                    del self._session_rooms[room]
        return session

    def awaited(self, room: str) -> bool:
        self._expire_sessions(self._clock())
        return self._session_rooms[room] > 0 if room else bool(self._sessions)

    def _expire_sessions(self, now: float) -> None:
        threshold = now - self.max_disconnection_duration
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if oldest.disconnected_at >= threshold:
                break
            self._drop_session(oldest.pid)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def restore(self, pid: str, offset: str | None) -> Restored | None:
        """Take the session ``pid`` back with what it missed after ``offset`` (None: the
        client received no stored packet); None if it cannot be restored whole (unknown or
        expired session, offset no longer buffered).

        A session is restored at most once.
        """
        now = self._clock()
        self._expire_packets(now)
        session = self._drop_session(pid)
        if session is None:
            self.misses["unknown"] += 1
            return None
        if session.disconnected_at + self.max_disconnection_duration < now:
            self.misses["expired"] += 1
            return None
        seq = session.base - 1 if offset is None else self._seq_of(offset)
        packets = self._packets
        first = packets[0].seq if packets else self._next_seq
        # the client saw ``seq``; what follows it must all still be here
        if seq is None or seq >= self._next_seq or seq + 1 < first:
            self.misses["offset"] += 1
            return None
        self.restored += 1
        return Restored(session, seq)

    def missed(self, restored: Restored) -> list[Wire]:
        """The encoded packets a restored session missed, oldest first. Call it with no
        checkpoint between it and the socket rejoining its rooms."""
        rooms = restored.session.rooms
        seq = restored.seq
        return [s.wire for s in self._packets if s.seq > seq and s.opts.reaches(rooms)]

    def put_back(self, restored: Restored) -> None:
        """A restore that did not complete (the connection closed meanwhile): keep the
        session for the next attempt."""
        self._drop_session(restored.session.pid)
        self._keep_session(restored.session)
