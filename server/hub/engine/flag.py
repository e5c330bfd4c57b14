"""An event that costs a :class:`trio.Event` only once someone waits for it.

Every session and every WebSocket has an event that is set once, when it ends, and that
nobody waits for on most of them (a WebSocket-born session's close, the peer's close frame).
A :class:`trio.Event` carries a set of waiting tasks from the start; this carries a flag,
and the event is made by the first task that waits.
"""

from __future__ import annotations

import trio


class Flag:
    """Set once; :meth:`wait` returns once it is set (a checkpoint, as
    :meth:`trio.Event.wait`)."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: trio.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if self._set:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()
