"""Connections that have not completed a request yet ("handshaking"), capped.

Past a cap (per client address, or of all), the oldest of them is taken back, answered 503
and closed, to make room for the new one: a newcomer always gets its chance, so half-open
connections cannot lock anyone out, and their number (so the file descriptors they hold)
stays bounded.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import trio

log = logging.getLogger("hub.engine")

#: What a connection taken back is answered, with 503.
BUSY = "Too many connections handshaking: retry later"


class Slot:
    """A connection's place among those still handshaking."""

    __slots__ = ("_owner", "evicted", "host", "scope")

    def __init__(self, owner: Handshakes, host: str) -> None:
        self._owner: Handshakes | None = owner
        self.host = host
        #: Around the connection's HTTP phase: cancelled when the place is taken back.
        self.scope = trio.CancelScope()
        self.evicted = False

    def release(self) -> None:
        """The connection completed a request (or closed); idempotent."""
        if self._owner is not None:
            self._owner._release(self)
            self._owner = None

    def evict(self) -> None:
        """Taken back for a newer connection: this one stops reading and is answered 503."""
        self.release()
        self.evicted = True
        self.scope.cancel()


class Handshakes:
    """The handshaking connections, oldest first: all of them, and by client address (dicts
    as ordered sets). 0 for a cap: none."""

    def __init__(self, per_address: int, overall: int) -> None:
        self.per_address = per_address
        self.overall = overall
        self._all: dict[Slot, None] = {}
        self._from: dict[str, dict[Slot, None]] = {}
        #: ``refused_handshaking_per_address`` and ``refused_handshaking_total``.
        self.refused: Counter[str] = Counter()
        self._logged_at = -math.inf

    def __len__(self) -> int:
        return len(self._all)

    def admit(self, host: str) -> Slot:
        """A place for a new connection from ``host``, making room first if need be."""
        same = self._from.get(host)
        if self.per_address and same is not None and len(same) >= self.per_address:
            self._evict(next(iter(same)), "handshaking_per_address")
        if self.overall and len(self._all) >= self.overall:
            self._evict(next(iter(self._all)), "handshaking_total")
        slot = Slot(self, host)
        self._all[slot] = None
        self._from.setdefault(host, {})[slot] = None
        return slot

    def _evict(self, slot: Slot, reason: str) -> None:
        self.refused[f"refused_{reason}"] += 1
        now = trio.current_time()
        if now - self._logged_at >= 10.0:  # at most a line every 10 s
            self._logged_at = now
            log.warning(
                "too many connections handshaking (%d in all, %d from %s; limits %d, %d): "
                "refusing the oldest",
                len(self._all),
                len(self._from.get(slot.host, ())),
                slot.host,
                self.overall,
                self.per_address,
            )
        slot.evict()

    def _release(self, slot: Slot) -> None:
        self._all.pop(slot, None)
        same = self._from.get(slot.host)
        if same is not None:
            same.pop(slot, None)
            if not same:
                del self._from[slot.host]
