"""Which sockets a broadcast (or a request about sockets) is for: plain data, known to every
layer above the engine (adapters, recovery, the bridge) and depending on none of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    #: Only sockets in any of these rooms (none: every socket of the namespace).
    rooms: frozenset[str] = frozenset()
    #: Not the sockets in any of these rooms (a socket's id is a room too).
    except_rooms: frozenset[str] = frozenset()
    #: Dropped rather than queued for a client whose queue is full.
    volatile: bool = False
    #: Only this process: never relayed to other nodes.
    local: bool = False

    def reaches(self, rooms: frozenset[str] | set[str]) -> bool:
        """Whether a socket in ``rooms`` (its own id among them) is selected."""
        if self.rooms and rooms.isdisjoint(self.rooms):
            return False
        return rooms.isdisjoint(self.except_rooms)
