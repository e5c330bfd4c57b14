"""The WebSocket transport: the client's frames read by :mod:`.frames`, ours built by
:func:`~server.hub.engine.wire.ws_frame`.

One reader (the connection's task) per connection, and a writer task only while one is
needed.

Sending has a fast path: when nothing is queued and no writer exists, a packet's frames
(encoded once, shared by every recipient of a broadcast) are written straight to the
non-blocking socket with one system call, without a task switch. Only what the kernel does
not take at once, the rest of a partial write and anything after it, waits for a writer task,
started then; it takes everything queued (the session's packets and our control frames:
pongs, the probe answer, the close), writes it in one ``send_all``, and ends when nothing is
left. An idle connection therefore holds no writer task at all.

Under load the fast path gathers: a connection's second and later frames within one tick of
the scheduler are kept and written together when the tick is over (:mod:`.ticks`), so a
burst of k packets to one socket costs two system calls, not k.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import sys
import termios
from collections.abc import Awaitable, Callable

import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.flag import Flag
from server.hub.engine.frames import (
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    Close,
    FrameError,
    FrameReader,
    Ping,
    close_frame,
    pong_frame,
)
from server.hub.engine.session import Session
from server.hub.engine.ticks import GATHER_BYTES, GATHER_COUNT, DirectWrites, current_ticker
from server.hub.engine.wire import OP_TEXT, Wire, ws_frame

log = logging.getLogger("hub.engine")

#: How long a closing server waits for the client's close frame before dropping the TCP.
CLOSE_GRACE = 1.0
#: Once the session is closing, what is left to write (queued packets, the close frame) must
#: be written within this many seconds; a peer that does not read it in time (a stalled client
#: after a ping timeout or a slow-consumer close) has its connection cut.
CLOSE_FLUSH_TIMEOUT = 5.0
#: Bytes of queued packets the writer takes (and joins into one write) at a time: what a
#: connection's backlog costs beyond its queue (whose packets are shared with the other
#: recipients of a broadcast) is this copy, whatever the queue holds.
WRITE_BATCH = 256 * 1024
#: What the reader asks of the socket at a time.
READ_SIZE = 65536
#: Messages the reader delivers between two checkpoints: one chunk of 64 KiB can hold
#: thousands of tiny frames, and working through them must not hold the event loop.
READ_SLICE = 128


#: The ioctl that tells how many bytes a TCP socket holds that its peer has not taken yet
#: (Linux; elsewhere only the time since the writer last got through is known).
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


def unread_bytes(fd: int) -> int | None:
    """Bytes written to socket ``fd`` that its peer has not taken (None: unknown here)."""
    if _OUTQ is None:
        return None
    try:
        answer = fcntl.ioctl(fd, _OUTQ, b"\0\0\0\0")
    except OSError:
        return None
    return int.from_bytes(answer, sys.byteorder, signed=True)


class WebSocketTransport:
    name = "websocket"

    # slots: an idle connection holds one of these, and a broadcast reads several of its
    # fields per recipient; without an instance dict it is smaller and one block of memory
    __slots__ = (
        "_close_frame",
        "_control",
        "_fd",
        "_finished",
        "_flush_deadline",
        "_gathered",
        "_gathered_bytes",
        "_nursery",
        "_partial",
        "_progress_at",
        "_send_scope",
        "_tick",
        "_ticker",
        "_writer_running",
        "config",
        "frames",
        "peer_closed",
        "prelude",
        "session",
        "stream",
        "writer_writes",
    )

    def __init__(self, stream: trio.abc.Stream, config: EngineConfig, trailing: bytes) -> None:
        self.stream = stream
        self.config = config
        #: The client's frames (the bytes read with the upgrade request first).
        self.frames = FrameReader(config.max_payload, trailing)
        #: Set once this connection carries the session's packets.
        self.session: Session | None = None
        self._control: list[bytes] = []
        self._close_frame: bytes | None = None
        self._finished = False
        #: The writer task exists only while there is something to write (see _kick).
        self._nursery: trio.Nursery | None = None
        #: A writer runs, or is wanted (started once attached): something waits that a
        #: direct write must not jump (a partial write's rest, control frames, the close, the
        #: session's queue). The one flag a broadcast looks at per recipient.
        self._writer_running = False
        #: Set when reading has stopped (the peer's close frame, EOF, or an error).
        self.peer_closed = Flag()
        #: The socket for direct writes; None where the stream is not a plain TCP socket.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        #: The unwritten end of a partial direct write: it goes out before anything else.
        self._partial: bytes | None = None
        #: The handshake's 101 response, when it is to go out with the first packet.
        self.prelude: bytes | None = None
        #: The writer's current ``send_all``, so that closing can put a deadline on it.
        self._send_scope: trio.CancelScope | None = None
        self._flush_deadline = math.inf
        #: Packets that went out through the writer task (the fast path's are counted by the
        #: ticker: a count per connection would cost every recipient of a broadcast).
        self.writer_writes = 0
        self._ticker = current_ticker()
        #: The tick in which this connection last wrote at once; frames gathered after it in
        #: the same tick (None: none), and their size.
        self._tick = -1
        self._gathered: list[bytes] | None = None
        self._gathered_bytes = 0
        #: When the client last took a write whole (or its backlog began): see unread_for.
        self._progress_at = 0.0

    # called by the session when it has packets queued or is closing
    def notify(self) -> None:
        session = self.session
        if session is not None and not session.is_open:
            self._closing()
        self._kick()

    def _closing(self) -> None:
        """From now on, writing has a deadline (:data:`CLOSE_FLUSH_TIMEOUT`)."""
        if self._flush_deadline == math.inf:
            self._flush_deadline = trio.current_time() + CLOSE_FLUSH_TIMEOUT
            if self._send_scope is not None:
                self._send_scope.deadline = self._flush_deadline

    def try_write(self, wire: Wire, batch: DirectWrites | None = None) -> bool:
        """Write ``wire`` at once if the connection is idle; False if it must be queued.

        True means its frames are the socket's now: written whole, or written in part with
        the rest kept as the writer's first job. With ``batch`` (a broadcast's), the write
        is the batch's: made when it ends, before anything else can reach this socket.
        """
        if self._writer_running or self._fd is None:
            return False
        frames = wire.frames
        ticker = self._ticker
        if self._tick == ticker.tick:
            # this connection wrote in this tick already: a burst; gathered for its end
            gathered = self._gathered
            if gathered is None:
                gathered = self._gathered = []
                ticker.gathered(self)
            gathered.append(frames)
            self._gathered_bytes += len(frames)
            ticker.stats["gathered"] += 1
            if (
                self._gathered_bytes >= GATHER_BYTES or len(gathered) >= GATHER_COUNT
            ) and not ticker.batching:
                self.flush_gathered()
            return True
        if batch is not None:
            batch.add(self, self._fd)
            self._tick = ticker.tick
            return True
        try:
            written = os.write(self._fd, frames)
        except BlockingIOError:
            return False
        except OSError:
            return False  # the writer meets the same error and closes the session
        ticker.stats["direct"] += 1
        self._tick = ticker.tick
        ticker.wrote()
        if written < len(frames):
            self._partial = frames[written:]
            self._kick()
        return True

    def left_unwritten(self, rest: bytes) -> None:
        """A broadcast's batch wrote only part of its frames (or none): ``rest`` goes out
        first, through the writer (which meets the error, if the socket is broken)."""
        self._partial = rest
        self._kick()

    def unread_for(self) -> float:
        """Seconds since the client last took a whole write, while its socket holds bytes
        it has not taken; 0.0 when it holds none: the client has read everything it was
        given, and what waits in the session's queue is the hub's own backlog."""
        if not self._writer_running:
            return 0.0  # every write so far went through whole
        if self._fd is not None and unread_bytes(self._fd) == 0:
            return 0.0
        return trio.current_time() - self._progress_at

    def open_with(self, wire: Wire) -> None:
        """The first packet of the connection (the session's OPEN), written with the
        handshake's :attr:`prelude` if it has not gone out yet: one system call for both,
        and no task; what the kernel does not take goes to the writer."""
        data = wire.frames
        if self.prelude is not None:
            data, self.prelude = self.prelude + data, None
        written = 0
        if self._fd is not None:
            try:
                written = os.write(self._fd, data)
            except OSError:  # full, or broken: the writer finds out which
                written = 0
            # counted and ticked as any packet written at once (see try_write)
            ticker = self._ticker
            ticker.stats["direct"] += 1
            self._tick = ticker.tick
            ticker.wrote()
        if written < len(data):
            self._partial = data[written:]
            self._kick()

    def flush_gathered(self) -> None:
        """Write the frames gathered in this tick with one call (:mod:`.ticks`); what the
        kernel does not take goes to the writer task, which takes it first."""
        gathered = self._gathered
        if not gathered:
            return
        if self._writer_running:
            return  # the writer takes them before anything else
        self._gathered = None
        self._gathered_bytes = 0
        stream = self.stream
        assert isinstance(stream, trio.SocketStream) and self._fd is not None
        if stream.socket.fileno() != self._fd:
            return  # the connection ended in this tick: its descriptor may be another's now
        data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
        self._ticker.stats["flushes"] += 1
        try:
            written = os.write(self._fd, data)
        except OSError:  # full (BlockingIOError), or broken: the writer finds out which
            written = 0
        if written < len(data):
            self._partial = data[written:]
            self._kick()

    def send_text_now(self, text: str) -> None:
        """A frame that does not go through the session queue (handshake, probe answer)."""
        self._control.append(ws_frame(text.encode(), OP_TEXT))
        self._kick()

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send a close frame after what is already queued, then end the connection."""
        if self._close_frame is None:  # b"": one was sent (or the peer's answered)
            self._close_frame = close_frame(code, reason)
        self._finished = True
        self._closing()
        self._kick()

    def finish(self) -> None:
        """Nothing more will be sent: the writer flushes its control frames and stops."""
        self._finished = True
        self._kick()

    def attach(self, nursery: trio.Nursery) -> None:
        """Run this connection's writer, when it needs one, in ``nursery`` (the connection's,
        which it cancels once the connection is over)."""
        self._nursery = nursery
        if self._writer_running:  # wanted before there was a nursery to run it in
            self._start_writer()

    def _kick(self) -> None:
        """Something must go out through the writer: start it unless it is running.

        An idle connection has no writer task (a task is a good part of what an idle
        connection costs): the writer exists while there is a backlog, control frames or
        the close to write, and ends when there is nothing left.
        """
        if self._writer_running:
            return
        self._writer_running = True
        self._progress_at = trio.current_time()  # a backlog begins: the client's clock runs
        if self._nursery is not None:
            self._start_writer()

    def _start_writer(self) -> None:
        assert self._nursery is not None
        try:
            self._nursery.start_soon(self._write, name="websocket writer")
        except RuntimeError:  # the connection's nursery has closed: nothing more goes out
            self._nursery = None

    async def _write(self) -> None:
        assert self._nursery is not None
        connection_scope = self._nursery.cancel_scope
        try:
            while True:
                chunks = [] if self._partial is None else [self._partial]
                self._partial = None
                if self._gathered:
                    chunks.extend(self._gathered)
                    self._gathered = None
                    self._gathered_bytes = 0
                chunks.extend(self._control)
                self._control = []
                session = self.session
                if session is not None and session.transport is self:
                    wires = session.take_all(WRITE_BATCH)
                    self.writer_writes += len(wires)
                    chunks.extend(wire.frames for wire in wires)
                    if not session.is_open and not session.queue and not self._finished:
                        self.close()  # the last of a closing session's packets is taken
                finished = self._finished
                if finished and self._close_frame:
                    chunks.append(self._close_frame)
                    self._close_frame = b""
                if not chunks and not finished:
                    # no checkpoint since the last look: nothing can have come in between
                    self._writer_running = False
                    return
                if chunks:
                    try:
                        with trio.CancelScope(deadline=self._flush_deadline) as scope:
                            self._send_scope = scope
                            await self.stream.send_all(b"".join(chunks))
                        self._progress_at = trio.current_time()
                    finally:
                        self._send_scope = None
                    if scope.cancelled_caught:
                        log.info("connection cut: the peer did not read its last packets")
                        break
                if finished:
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if self.session is not None and self.session.transport is self:
                self.session.abort("transport error")
        # the writer stays "running" from here on: nothing more is written
        with trio.move_on_after(CLOSE_GRACE):
            await self.peer_closed.wait()
        connection_scope.cancel()

    async def read_loop(self, on_frame: Callable[[str | bytes], Awaitable[str | None]]) -> str:
        """Deliver each complete message to ``on_frame``; returns why reading stopped: the
        peer closed (``"transport close"``), the connection broke or a message was too big
        (``"transport error"``), or ``on_frame`` returned a reason to stop.

        On a TCP socket it reads the socket itself, waiting for it to be readable: an idle
        connection waits in this frame alone, not under the stream's layers of coroutines.
        While it waits it holds nothing of what it read before (a client that sent one
        large message and then went idle does not keep it in memory)."""
        delivered = 0
        frames = self.frames
        chunk: bytes | None = None
        item: str | bytes | Ping | Close | None = None
        try:
            first = True
            while True:
                if not first:  # bytes that came with the upgrade request are parsed first
                    chunk = item = None
                    fd = self._fd
                    if fd is None:  # not a socket's stream (the tests' in-memory streams)
                        chunk = bytes(await self.stream.receive_some(READ_SIZE))
                    else:  # as the stream would: a checkpoint, whether or not it waits
                        await trio.lowlevel.checkpoint_if_cancelled()
                        waited = False
                        while True:
                            try:
                                chunk = os.read(fd, READ_SIZE)
                                break
                            except BlockingIOError:
                                pass  # waited for outside: the error would be kept meanwhile
                            except OSError as exc:
                                raise trio.BrokenResourceError(exc) from exc
                            await trio.lowlevel.wait_readable(fd)
                            waited = True
                        if not waited:
                            # a client that keeps its socket full must not hold the loop
                            await trio.lowlevel.cancel_shielded_checkpoint()
                    if not chunk:
                        return "transport close"
                    frames.feed(chunk)
                first = False
                try:
                    while (item := frames.next()) is not None:
                        if isinstance(item, str | bytes):
                            stop = await on_frame(item)
                            if stop is not None:
                                return stop
                            delivered += 1
                            if delivered % READ_SLICE == 0:
                                await trio.lowlevel.checkpoint()
                        elif isinstance(item, Ping):
                            self._control.append(pong_frame(item.payload))
                            self._kick()
                        else:  # the peer's close: answered with its code, unless we began
                            if self._close_frame is None:
                                self._control.append(close_frame(item.code, item.reason))
                                self._close_frame = b""
                            self.finish()
                            return "transport close"
                except FrameError as error:
                    self.close(error.code, error.reason)
                    return "transport error" if error.code == CLOSE_TOO_BIG else "transport close"
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return "transport error"
        finally:
            self.peer_closed.set()
