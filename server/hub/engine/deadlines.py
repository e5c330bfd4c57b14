"""One task for many deadlines: a FIFO queue per timeout.

Deadlines added with the same timeout fall due in the order they were added (the clock only
goes forward), so each timeout keeps its deadlines in a deque: adding one is an append, the
earliest is at the front, and one task sleeps until the earliest front of them all. Where a
timer or a cancel scope per deadline would cost a heap entry, a task switch or a few hundred
bytes each, this costs one small object and O(1) work per deadline. It serves the heartbeat
(two timeouts, the ping interval and the ping timeout, for every session) and the Socket.IO
layer's connect timeout.

Cancelling does not search a deque: the entry (its :class:`Deadline`, which is its token)
forgets its callback and item at once, so nothing is kept alive by it, and it is skipped
when it reaches the front.

::

    deadlines: Deadlines[Client] = Deadlines(
        failed=lambda client, exc: client.session.failed(exc, "its connect timeout")
    )
    nursery.start_soon(deadlines.run)
    entry = deadlines.add(45.0, Client.connect_deadline_passed, client)
    ...
    entry.cancel()        # the client joined in time (idempotent)
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar, cast

import trio

log = logging.getLogger("hub.engine")

T = TypeVar("T")

#: Deadlines fired between two checkpoints: ten thousand sessions pinged at one instant
#: must not hold the event loop while it works through them.
FIRE_SLICE = 512


class Deadline(Generic[T]):
    """One deadline of a :class:`Deadlines` queue: due at ``when``; cancel it, or let it
    fire."""

    __slots__ = ("_callback", "_item", "when")

    def __init__(self, when: float, callback: Callable[[T], object], item: T) -> None:
        self.when = when
        self._callback: Callable[[T], object] | None = callback
        self._item: T | None = item

    @property
    def pending(self) -> bool:
        """Neither fired nor cancelled yet."""
        return self._callback is not None

    def cancel(self) -> None:
        """It will not fire; its callback and item are let go now. Idempotent."""
        self._callback = None
        self._item = None


class Deadlines(Generic[T]):
    """Deadlines fired by one task (:meth:`run`), a FIFO deque per timeout.

    ``failed(item, error)`` is told of an exception raised by a callback (by default it is
    logged); the other deadlines fire as before, so one item's fault stays with that item.
    """

    def __init__(self, failed: Callable[[T, Exception], object] | None = None) -> None:
        self._failed = failed
        #: timeout -> its deadlines, earliest first
        self._queues: dict[float, deque[Deadline[T]]] = {}
        self._wakeup = trio.Event()
        self._running = False
        self._stopped: trio.Event | None = None

    def add(self, timeout: float, callback: Callable[[T], object], item: T) -> Deadline[T]:
        """Call ``callback(item)`` ``timeout`` seconds from now, in the task of :meth:`run`;
        the returned :class:`Deadline` cancels it."""
        entry = Deadline(trio.current_time() + timeout, callback, item)
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        queue.append(entry)
        if len(queue) == 1:  # a new front: it may be the earliest of all
            self._wakeup.set()
        return entry

    def __len__(self) -> int:
        """Deadlines held, including cancelled ones not reached yet."""
        return sum(len(queue) for queue in self._queues.values())

    @property
    def running(self) -> bool:
        return self._running

    async def run(self) -> None:
        """Fire deadlines as they fall due, until cancelled.

        One ``run()`` serves a queue at a time: a second one (a server serving on several
        listeners starts one per listener) waits, and takes over if the first ends, so no
        deadline ever fires twice.
        """
        while self._running:
            assert self._stopped is not None
            await self._stopped.wait()
        self._running = True
        self._stopped = trio.Event()
        try:
            while True:
                self._fire_due(trio.current_time())
                self._wakeup = trio.Event()
                with trio.move_on_at(self._nearest()):
                    await self._wakeup.wait()
        finally:
            self._running = False
            self._stopped.set()

    def _nearest(self) -> float:
        return min((queue[0].when for queue in self._queues.values() if queue), default=math.inf)

    def _fire_due(self, now: float) -> None:
        """Fire what is due, earliest first across the timeouts, at most :data:`FIRE_SLICE`
        (the rest after a checkpoint: :meth:`run` comes straight back)."""
        queues = self._queues
        for _ in range(FIRE_SLICE):
            queue = min((q for q in queues.values() if q), key=_front, default=None)
            if queue is None or queue[0].when > now:
                break
            entry = queue.popleft()
            callback, item = entry._callback, entry._item
            if callback is None:
                continue  # cancelled
            entry.cancel()  # fired: no longer pending, and its item is let go
            try:
                callback(cast(T, item))
            except Exception as exc:
                self._report(cast(T, item), exc)
        if len(queues) > 8:  # timeouts that came and went: keep the deques of those in use
            for timeout in [timeout for timeout, queue in queues.items() if not queue]:
                del queues[timeout]

    def _report(self, item: T, error: Exception) -> None:
        if self._failed is None:
            log.error("a deadline's callback failed", exc_info=error)
            return
        try:
            self._failed(item, error)
        except Exception:
            log.exception("a deadline's failure handler failed")


def _front(queue: deque[Deadline[T]]) -> float:
    return queue[0].when
