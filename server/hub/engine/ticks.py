"""Ticks: telling a burst from an idle moment, so that a burst costs one write per socket.

A *tick* is one batch of Trio's scheduler: the tasks that became runnable together, run one
after the other. When the hub is idle a packet arrives alone, is handled in one tick and
goes out at once, one system call per recipient (the fast path of
:mod:`~server.hub.engine.websocket`). When it is busy, one reader's step works through many
messages that came in one read (up to 128), and each broadcasts: every recipient gets
several frames within one tick. Writing each with a system call of its own is what cost
most (DESIGN: one ``os.write`` per delivery, where Node's sockets write several frames per
call once they are backed up).

So the first frame a connection gets in a tick is written at once, as before; the ones
that follow it in the same tick are *gathered* (kept in order, bounded in bytes and count)
and written with one call when the tick is over, by :class:`Ticker`'s task, which runs in
the next batch. One packet on an idle hub costs what it did; k packets to one socket in a
burst cost two calls instead of k.

A broadcast writes in two passes over each chunk of :data:`DIRECT_CHUNK` recipients
(:class:`DirectWrites`): first each is looked at (its session and connection: is it open,
idle, not written to in this tick?) and the idle ones are listed; then the frames, one
``bytes`` for all of them, are written to that list of descriptors in a tight loop. Looking
and writing interleaved cost about 1.3 µs more per recipient (measured over 1,000 loopback
clients): between two system calls, each of which runs the client's side of loopback TCP on
our core, the next recipient's objects had left the cache. Chunks, not one pass over all:
looking at 1,000 recipients first delayed the first delivery by about 3 ms.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Protocol

import trio

log = logging.getLogger("hub.engine")

#: A connection's gathered frames are written at once past these bounds, even mid-tick.
GATHER_BYTES = 64 * 1024
GATHER_COUNT = 256
#: A broadcast writes to its idle recipients this many at a time (see :class:`DirectWrites`).
DIRECT_CHUNK = 64


class Gathering(Protocol):
    """A transport with frames gathered in this tick."""

    def flush_gathered(self) -> None:
        """Write what was gathered (without waiting: the rest, if any, goes to the
        connection's writer)."""


class DirectWriter(Protocol):
    """A transport that took a frame into a :class:`DirectWrites` batch."""

    def left_unwritten(self, rest: bytes) -> None:
        """The batch could not write ``rest`` (the end of its frames, or all of them): it
        goes out first, through the connection's writer."""


class DirectWrites:
    """One broadcast's writes to idle connections, made a chunk of recipients at a time.

    A transport that would write a frame at once adds its descriptor instead
    (:meth:`add`); every :data:`DIRECT_CHUNK` of them, and at the end, :meth:`write` writes
    the frames to each. Between the two nothing else runs (no checkpoint), so nothing else
    can reach the socket first: a connection that is sent more in the same tick gathers it
    (:class:`Ticker` writes it after the tick), and while a batch is open
    (:attr:`Ticker.batching`) a gathering past its bounds waits for the tick's end too.

    Used as ``with DirectWrites(wire.frames, ticker) as batch:``, passing ``batch`` to each
    recipient's ``send``; leaving the block writes.
    """

    __slots__ = ("fds", "frames", "ticker", "transports")

    def __init__(self, frames: bytes, ticker: Ticker) -> None:
        self.frames = frames
        self.ticker = ticker
        self.fds: list[int] = []
        self.transports: list[DirectWriter] = []

    def __enter__(self) -> DirectWrites:
        self.ticker.batching += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        # what was added was promised as sent: written even if the first pass failed
        self.ticker.batching -= 1
        self.write()

    def add(self, transport: DirectWriter, fd: int) -> None:
        self.transports.append(transport)
        self.fds.append(fd)
        if len(self.fds) >= DIRECT_CHUNK:
            self.write()

    def write(self) -> None:
        """Write the frames to every connection added (once: the list is emptied)."""
        fds, self.fds = self.fds, []
        transports, self.transports = self.transports, []
        if not fds:
            return
        frames = self.frames
        size = len(frames)
        write = os.write
        short: list[tuple[int, int]] = []
        for i, fd in enumerate(fds):
            try:
                written = write(fd, frames)
            except OSError:  # full (BlockingIOError), or broken: the writer finds out which
                written = 0
            if written < size:
                short.append((i, written))
        for i, written in short:
            try:
                transports[i].left_unwritten(frames[written:])
            except Exception:  # a fault stays in its connection
                log.exception("handing a connection its unwritten frames failed")
        ticker = self.ticker
        ticker.stats["direct"] += len(fds)
        ticker.wrote()


class Ticker:
    """The tick count of one Trio run, and the connections that gathered frames in it.

    One task (a system task, started on first use) waits for a tick in which something was
    written; it runs in the batch after it, so by then every task of that tick has run: it
    counts the tick as over and flushes what was gathered.
    """

    __slots__ = ("_dirty", "_scheduled", "_wake", "batching", "stats", "tick")

    def __init__(self) -> None:
        #: The current tick; a transport that wrote in it remembers its number.
        self.tick = 0
        #: direct (written in the tick they were sent), gathered (written at its end),
        #: flushes (the writes of gathered frames): for /metrics and the bench.
        self.stats: Counter[str] = Counter()
        #: Open :class:`DirectWrites` batches (gathered frames wait for the tick's end).
        self.batching = 0
        self._dirty: list[Gathering] = []
        self._scheduled = False
        self._wake = trio.Event()

    def wrote(self) -> None:
        """A frame went out in this tick: the tick must be ended (counted) once it is over."""
        if not self._scheduled:
            self._scheduled = True
            self._wake.set()

    def gathered(self, transport: Gathering) -> None:
        """``transport`` holds frames for the end of this tick (called for its first)."""
        self._dirty.append(transport)
        self.wrote()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            # this runs in the batch after the one that wrote: that tick is over
            self.tick += 1
            self._scheduled = False
            dirty, self._dirty = self._dirty, []
            for transport in dirty:
                try:
                    transport.flush_gathered()
                except Exception:  # a fault stays in its connection (see flush_gathered)
                    log.exception("flushing a connection's gathered frames failed")


_TICKER: trio.lowlevel.RunVar[Ticker] = trio.lowlevel.RunVar("hub_ticker")


def current_ticker() -> Ticker:
    """This Trio run's :class:`Ticker` (made, and its task started, on first use)."""
    try:
        return _TICKER.get()
    except LookupError:
        ticker = Ticker()
        _TICKER.set(ticker)
        trio.lowlevel.spawn_system_task(ticker.run, name="hub ticker")
        return ticker


def ticker_stats() -> Counter[str]:
    """This run's ticker counts (empty when nothing has been written yet)."""
    try:
        return _TICKER.get().stats.copy()
    except (LookupError, RuntimeError):  # no ticker yet, or not in a Trio run
        return Counter()
