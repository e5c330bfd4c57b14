"""Load clients: many raw Socket.IO-over-WebSocket clients in one process, on one epoll loop.

Each client is a non-blocking TCP socket that speaks just enough of the three layers:

- WebSocket (RFC 6455): the HTTP upgrade with ``Sec-WebSocket-Accept`` checked, masked client
  frames, unmasked server frames (continuations and close handled, no extensions);
- Engine.IO v4 over WebSocket only (``EIO=4&transport=websocket``): the open packet, and
  pong for every ping;
- Socket.IO v5: CONNECT with ``auth`` ``{"name": ...}``, EVENT, ACK.

What it counts: ``msg`` deliveries (with their latency), and for the presence join
(``enter``) the ``userJoined`` and ``onlineMembers`` events and the ``enter`` acks.

Why not trio-websocket: a delivery must cost the client far less than it costs the server,
because both share two cores. One task switch per message (trio) costs more than a whole
level-triggered epoll round here (about 5 µs per delivery, measured by ``bench.run`` and
reported as client CPU).

A worker runs :func:`worker_main` in its own process and obeys commands sent as
``(name, kwargs)`` tuples over a :class:`multiprocessing.connection.Connection`; each command
gets one ``dict`` reply. Commands that take time (``connect``, ``join``, ``send``) reply when
they are done, or at their deadline, while the loop keeps serving every other client.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import resource
import select
import socket
import time
from array import array
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# client states
TCP, HTTP, EIO_OPEN, SIO_CONNECT, READY, FAILED, CLOSED = range(7)
STATE_NAMES = ("tcp", "http", "eio_open", "sio_connect", "ready", "failed", "closed")

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
#: the receive buffer a stalled client asks for (the kernel rounds it up to its minimum)
STALLED_RCVBUF = 1024
#: the send time and run id the sender puts first in each payload (cheaper than json.loads)
STAMP = re.compile(rb'^42\["msg",\{"t":(\d+),"s":\d+,"r":(\d+),').match
#: the presence events that ``enter`` makes the servers send (compact JSON, as from all three)
USER_JOINED = b'42["userJoined"'
ONLINE_MEMBERS = b'42["onlineMembers"'
#: no cutoff: count every delivery until ``collect``
NO_CUTOFF = 2**63 - 1


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    return head + mask + body


class Client:
    __slots__ = (
        "ack_id",
        "buf",
        "frag",
        "key",
        "name",
        "out",
        "sock",
        "stall",
        "stalled",
        "state",
        "t_ready",
        "t_start",
    )

    def __init__(self, name: str, stall: bool) -> None:
        self.name = name
        self.stall = stall  # stop reading once joined
        self.stalled = False
        self.sock: socket.socket | None = None
        self.state = TCP
        self.buf = b""
        self.frag: bytes | None = None
        self.out = b""
        self.key = b""
        self.ack_id = 0
        self.t_start = 0
        self.t_ready = 0


class Worker:
    def __init__(self, conn: Connection, host: str, port: int) -> None:
        self.conn = conn
        self.addr = (host, port)
        self.host_header = f"{host}:{port}".encode()
        self.ep = select.epoll()
        self.by_fd: dict[int, Client] = {}
        self.clients: list[Client] = []
        self.queue: deque[Client] = deque()
        self.inflight = 0
        self.max_inflight = 100
        self.quit = False
        # recording of ``msg`` deliveries
        self.run: int | None = None
        self.received = 0
        self.latencies = array("q")  # µs
        self.stray = 0  # deliveries of another run (late ones)
        self.until = NO_CUTOFF  # deliveries received after this wall-clock ns are not counted
        self.late = 0  # deliveries of this run received after ``until``
        # pending joins: ack id per client
        self.join_waiting: dict[Client, int] = {}
        self.join_acked = 0
        # the presence join (``enter``): pending acks, and the events it brings
        self.enter_waiting: dict[Client, int] = {}
        self.enter_acked = 0
        self.enter_t_last = 0
        self.user_joined = 0
        self.user_joined_t_last = 0
        self.online = 0
        self.online_t_last = 0
        self.members_listed = 0
        # what the current long command waits for
        self.waiter: tuple[Callable[[], bool], Callable[[], dict[str, Any]], float] | None = None
        self.send_plan: dict[str, Any] | None = None
        self.ep.register(conn.fileno(), EPOLLIN)
        self.rbuf = bytearray(262144)
        self.rview = memoryview(self.rbuf)

    # -- the loop --------------------------------------------------------------------------

    def loop(self) -> None:
        pipe_fd = self.conn.fileno()
        by_fd = self.by_fd
        while not self.quit:
            for fd, ev in self.ep.poll(self.poll_timeout()):
                if fd == pipe_fd:
                    self.on_command()
                    continue
                c = by_fd.get(fd)
                if c is None:
                    continue
                if ev & EPOLLOUT:
                    self.on_writable(c)
                if ev & ~EPOLLOUT and c.state < FAILED:
                    self.on_readable(c)
            self.tick()

    def poll_timeout(self) -> float:
        if self.send_plan is not None:
            plan = self.send_plan
            due: float = (
                plan["start"] + plan["index"] * plan["interval"] - time.monotonic_ns()
            ) / 1e9
            return max(0.0, min(due, 0.05))
        return 0.05

    def tick(self) -> None:
        while self.queue and self.inflight < self.max_inflight:
            self.start_connect(self.queue.popleft())
        if self.send_plan is not None:
            self.send_due()
        if self.waiter is not None:
            done, reply, deadline = self.waiter
            if done() or time.monotonic() > deadline:
                self.waiter = None
                self.conn.send(reply())

    # -- commands --------------------------------------------------------------------------

    def on_command(self) -> None:
        try:
            name, kwargs = self.conn.recv()
        except EOFError:
            self.quit = True
            return
        getattr(self, "cmd_" + name)(**kwargs)

    def cmd_connect(
        self, n: int, prefix: str, stall: int = 0, inflight: int = 100, timeout: float = 60.0
    ) -> None:
        """Open ``n`` more clients (the first ``stall`` of them stall once joined)."""
        self.max_inflight = inflight
        new = [Client(f"{prefix}{i}", i < stall) for i in range(n)]
        self.clients.extend(new)
        self.queue.extend(new)
        t_start = time.time_ns()

        def done() -> bool:
            return all(c.state >= READY for c in new)

        def reply() -> dict[str, Any]:
            ready = [c for c in new if c.state == READY]
            return {
                "ready": len(ready),
                "failed": sum(c.state != READY for c in new),
                "t_start": t_start,
                "t_end": max((c.t_ready for c in ready), default=t_start),
                "connect_us": [(c.t_ready - c.t_start) // 1000 for c in ready],
            }

        self.waiter = (done, reply, time.monotonic() + timeout)
        self.tick()

    def cmd_join(self, room: str, timeout: float = 60.0) -> None:
        """Every ready client joins ``room`` with an ack; the reply says when all acks came."""
        t_start = time.time_ns()
        self.join_acked = 0
        self.join_waiting = {}
        sent = self.ask_every_ready("join", room, self.join_waiting)
        t_last = [t_start]

        def done() -> bool:
            if self.join_acked >= sent:
                t_last[0] = time.time_ns()
                return True
            return False

        def reply() -> dict[str, Any]:
            return {"sent": sent, "acked": self.join_acked, "t_start": t_start, "t_end": t_last[0]}

        self.waiter = (done, reply, time.monotonic() + timeout)

    def cmd_enter(self, room: str) -> None:
        """Every ready client sends ``enter(room)`` with an ack, at once. Replies at once;
        ``presence`` then tells what has come back."""
        self.enter_waiting = {}
        self.enter_acked = self.user_joined = self.online = self.members_listed = 0
        self.enter_t_last = self.user_joined_t_last = self.online_t_last = 0
        t_start = time.time_ns()
        sent = self.ask_every_ready("enter", room, self.enter_waiting)
        self.conn.send({"sent": sent, "t_start": t_start})

    def ask_every_ready(self, event: str, room: str, waiting: dict[Client, int]) -> int:
        """Every ready client emits ``event(room)`` with an ack id of its own, recorded in
        ``waiting``; returns how many did."""
        payload = json.dumps([event, room], separators=(",", ":")).encode()
        sent = 0
        for c in self.clients:
            if c.state == READY:
                c.ack_id += 1
                waiting[c] = c.ack_id
                self.send(c, b"42" + str(c.ack_id).encode() + payload)
                sent += 1
        return sent

    def cmd_presence(self) -> None:
        """What ``enter`` has brought back so far, and when the last of each kind came."""
        self.conn.send(
            {
                "acked": self.enter_acked,
                "t_last_ack": self.enter_t_last,
                "user_joined": self.user_joined,
                "t_last_user_joined": self.user_joined_t_last,
                "online": self.online,
                "t_last_online": self.online_t_last,
                "members_listed": self.members_listed,
                "states": self.states(),
            }
        )

    def cmd_record(self, run: int) -> None:
        """Count ``msg`` deliveries of run ``run`` from now on."""
        self.run = run
        self.received = 0
        self.stray = 0
        self.until = NO_CUTOFF
        self.late = 0
        self.latencies = array("q")
        self.conn.send({"receivers": self.receivers(), "cpu": time.process_time()})

    def cmd_cutoff(self, until_ns: int) -> None:
        """Count no delivery received after wall-clock ``until_ns`` (``late`` counts them)."""
        self.until = until_ns
        self.conn.send({"ok": True})

    def cmd_received(self) -> None:
        self.conn.send({"received": self.received})

    def cmd_collect(self) -> None:
        """Stop recording; return the deliveries and their latencies (µs, as bytes)."""
        self.run = None
        self.conn.send(
            {
                "received": self.received,
                "stray": self.stray,
                "late": self.late,
                "latencies": self.latencies.tobytes(),
                "states": self.states(),
                "healthy_closed": sum(c.state >= FAILED and not c.stall for c in self.clients),
                "cpu": time.process_time(),
            }
        )

    def cmd_send(
        self, room: str, rate: float, duration: float, run: int, pad: int, start_ns: int = 0
    ) -> None:
        """The first client broadcasts ``rate`` messages a second for ``duration`` seconds."""
        count = max(1, round(rate * duration))
        self.send_plan = {
            "room": json.dumps(room),
            "interval": round(1e9 / rate),
            "start": time.monotonic_ns(),
            "index": 0,
            "count": count,
            "run": run,
            "pad": "x" * pad,
            "t_start": time.time_ns(),
            "t_end": 0,
        }
        plan = self.send_plan

        def done() -> bool:
            return bool(plan["index"] >= plan["count"])

        def reply() -> dict[str, Any]:
            self.send_plan = None
            return {"sent": plan["index"], "t_start": plan["t_start"], "t_end": plan["t_end"]}

        self.waiter = (done, reply, time.monotonic() + duration + 30)

    def cmd_status(self) -> None:
        self.conn.send({"states": self.states(), "cpu": time.process_time()})

    def cmd_quit(self) -> None:
        for c in self.clients:
            if c.sock is not None:
                c.sock.close()
        self.quit = True
        self.conn.send({"ok": True})

    def receivers(self) -> int:
        return sum(c.state == READY and not c.stall for c in self.clients)

    def states(self) -> dict[str, int]:
        counts = dict.fromkeys(STATE_NAMES, 0)
        for c in self.clients:
            counts[STATE_NAMES[c.state]] += 1
        return counts

    # -- sending ---------------------------------------------------------------------------

    def send_due(self) -> None:
        plan = self.send_plan
        assert plan is not None
        c = self.clients[0]
        now = time.monotonic_ns()
        head = b'42["broadcast",' + plan["room"].encode() + b","
        while (
            plan["index"] < plan["count"]
            and now >= plan["start"] + plan["index"] * plan["interval"]
        ):
            index, run, pad = plan["index"], plan["run"], plan["pad"]
            body = f'{{"t":{time.time_ns()},"s":{index},"r":{run},"p":"{pad}"}}]'
            self.send(c, head + body.encode())
            plan["index"] += 1
            plan["t_end"] = time.time_ns()

    def send(self, c: Client, text: bytes) -> None:
        """Send one text frame, or queue it behind what the kernel has not taken yet."""
        data = ws_frame(text)
        if c.out:
            c.out += data
            return
        self.write(c, data)

    def write(self, c: Client, data: bytes) -> None:
        assert c.sock is not None
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self.close(c, FAILED if c.state < READY else CLOSED)
            return
        if n < len(data):
            c.out = data[n:]
            if not c.stalled:
                self.ep.modify(c.sock.fileno(), EPOLLIN | EPOLLOUT)

    # -- connection ------------------------------------------------------------------------

    def start_connect(self, c: Client) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if c.stall:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
        c.sock = s
        c.state = TCP
        c.t_start = time.time_ns()
        self.inflight += 1
        err = s.connect_ex(self.addr)
        if err not in (0, 115):  # EINPROGRESS
            self.close(c, FAILED)
            return
        self.by_fd[s.fileno()] = c
        self.ep.register(s.fileno(), EPOLLOUT)

    def on_writable(self, c: Client) -> None:
        assert c.sock is not None
        if c.state == TCP:
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.close(c, FAILED)
                return
            c.state = HTTP
            self.ep.modify(c.sock.fileno(), EPOLLIN)
            key = base64.b64encode(os.urandom(16))
            c.key = key
            self.write(
                c,
                b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: "
                + self.host_header
                + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                + key
                + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            return
        data, c.out = c.out, b""
        self.ep.modify(c.sock.fileno(), EPOLLIN)
        self.write(c, data)

    def close(self, c: Client, state: int) -> None:
        if c.state < READY:
            self.inflight -= 1
        c.state = state
        if c.sock is not None:
            fd = c.sock.fileno()
            if fd >= 0 and self.by_fd.pop(fd, None) is not None and not c.stalled:
                self.ep.unregister(fd)
            c.sock.close()

    def ready(self, c: Client) -> None:
        c.state = READY
        c.t_ready = time.time_ns()
        self.inflight -= 1

    # -- receiving -------------------------------------------------------------------------

    def on_readable(self, c: Client) -> None:
        assert c.sock is not None
        try:
            # into one preallocated buffer: recv(262144) would allocate (mmap) 256 KB each time
            n = c.sock.recv_into(self.rbuf)
            data = self.rview[:n].tobytes()
        except BlockingIOError:
            return
        except OSError:
            self.close(c, FAILED if c.state < READY else CLOSED)
            return
        if not data:
            self.close(c, FAILED if c.state < READY else CLOSED)
            return
        if c.buf:
            data = c.buf + data
            c.buf = b""
        if c.state == HTTP:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                c.buf = data
                return
            head = data[:end].decode("latin-1").lower()
            accept = base64.b64encode(hashlib.sha1(c.key + WS_GUID).digest()).decode().lower()
            if not head.startswith("http/1.1 101") or accept not in head:
                self.close(c, FAILED)
                return
            c.state = EIO_OPEN
            data = data[end + 4 :]
            if not data:
                return
        self.on_frames(c, data)

    def on_frames(self, c: Client, data: bytes) -> None:
        n = len(data)
        pos = 0
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            h = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (data[h] << 8) | data[h + 1]
                h += 2
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[h : h + 8], "big")
                h += 8
            if b1 & 0x80:  # servers never mask; be lenient anyway
                h += 4
            end = h + length
            if end > n:
                break
            payload = data[h:end]
            if b1 & 0x80:
                mask = data[h - 4 : h]
                key = (mask * (length // 4 + 1))[:length]
                payload = (
                    int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
                ).to_bytes(length, "little")
            pos = end
            opcode = b0 & 0x0F
            if opcode == 0:
                payload = (c.frag or b"") + payload
                if not b0 & 0x80:
                    c.frag = payload
                    continue
                c.frag = None
            elif opcode in (1, 2) and not b0 & 0x80:
                c.frag = payload
                continue
            if opcode in (0, 1):
                self.on_message(c, payload)
            elif opcode == 8:
                self.close(c, FAILED if c.state < READY else CLOSED)
                return
            elif opcode == 9:
                assert c.sock is not None
                self.write(c, ws_frame(payload, 10))
            if c.state >= FAILED:
                return
        if pos < n:
            c.buf = data[pos:]

    def on_message(self, c: Client, msg: bytes) -> None:
        if msg[:8] == b'42["msg"':
            if self.run is not None:
                now = time.time_ns()
                m = STAMP(msg)
                if m is None:  # not the compact form the three servers send: parse it all
                    body = json.loads(msg[2:])[1]
                    sent, run = body["t"], body["r"]
                else:
                    sent, run = int(m[1]), int(m[2])
                if run != self.run:
                    self.stray += 1
                elif now > self.until:
                    self.late += 1
                else:
                    self.received += 1
                    self.latencies.append((now - sent) // 1000)
            return
        if msg.startswith(USER_JOINED):
            self.user_joined += 1
            self.user_joined_t_last = time.time_ns()
            return
        if msg.startswith(ONLINE_MEMBERS):
            self.online += 1
            self.online_t_last = time.time_ns()
            # one quoted name per member, besides "onlineMembers" and "members"
            self.members_listed += msg.count(b'"') // 2 - 2
            return
        kind = msg[:1]
        if kind == b"2":
            self.send(c, b"3" + msg[1:])
        elif kind == b"0":
            c.state = SIO_CONNECT
            self.send(c, b"40" + json.dumps({"name": c.name}).encode())
        elif msg[:2] == b"40":
            self.ready(c)
        elif msg[:2] == b"43":
            i = 2
            while msg[i : i + 1].isdigit():
                i += 1
            ack = int(msg[2:i])
            if self.join_waiting.get(c) == ack:
                del self.join_waiting[c]
                self.join_acked += 1
                if c.stall and c.sock is not None:
                    c.stalled = True
                    self.ep.unregister(c.sock.fileno())
            elif self.enter_waiting.get(c) == ack:
                del self.enter_waiting[c]
                self.enter_acked += 1
                self.enter_t_last = time.time_ns()
        elif msg[:2] == b"44" or msg[:2] == b"41" or kind == b"1":
            self.close(c, FAILED if c.state < READY else CLOSED)


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_main(conn: Connection, host: str, port: int) -> None:
    raise_fd_limit()
    worker = Worker(conn, host, port)
    with contextlib.suppress(KeyboardInterrupt):
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            cProfile.runctx(
                "worker.loop()", globals(), {"worker": worker}, f"/tmp/bench-prof-{os.getpid()}"
            )
        else:
            worker.loop()
