"""The attackers of ``bench.soak``, run in a child process of their own.

Why a separate process: the control client measures round trips in the parent, and an
attacker that holds the GIL (building 1 MB bodies, sending thousands of frames) would show up
as the server's latency. Here they only share the two cores with the server, as a real
attacker on the same host would.

Every attacker speaks the wire itself (raw HTTP/1.1 over sockets, raw Engine.IO packets, or
``websocket-client`` with hand-written JSON text), so it sends exactly the bytes described,
which no stock client would. :func:`child_main` runs one of :data:`ATTACKS` and reports over a
pipe: ``("ready", {})`` once the attack is under way, then ``("result", dict)`` after the
parent's ``stop`` event (or ``("error", text)``).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import select
import socket
import statistics
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import websocket

from bench.clients import raise_fd_limit, ws_frame

HOST = "127.0.0.1"
RS = "\x1e"  # the record separator between Engine.IO packets in a polling body
POLLING = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"
#: a lone UTF-16 surrogate, written as the JSON escape: text that has no UTF-8 form once decoded
SURROGATE = "\\ud800"

Result = dict[str, Any]


class Closed(ConnectionError):
    """The server closed (or reset) a connection we were using."""


# ---- bookkeeping ---------------------------------------------------------------------------


class Registry:
    """Every socket an attack has open, so that ``stop`` can unblock every thread at once:
    a shut-down socket makes a blocked ``recv`` or ``sendall`` return at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self.closing = False

    def add(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.add(sock)
        if self.closing:
            _shutdown(sock)
        return sock

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)
        sock.close()

    def shutdown_all(self) -> None:
        self.closing = True
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def median_ms(seconds: list[float]) -> float | None:
    return round(statistics.median(seconds) * 1000, 1) if seconds else None


# ---- raw HTTP/1.1 ----------------------------------------------------------------------------


class HttpConn:
    """One keep-alive HTTP/1.1 connection on a blocking socket; responses carry a
    Content-Length (the hub always sends one)."""

    def __init__(self, port: int, registry: Registry, timeout: float = 30.0) -> None:
        self.port = port
        self.registry = registry
        self.sock = registry.add(socket.create_connection((HOST, port), timeout=timeout))
        self.buf = b""

    def close(self) -> None:
        self.registry.discard(self.sock)

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            self.sock.sendall(head + body)
        except OSError as exc:
            raise Closed(str(exc)) from None
        return self.response()

    def response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
        except (IndexError, ValueError):
            raise Closed(f"not an HTTP response: {lines[0][:80]!r}") from None
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise Closed(str(exc)) from None
        if not data:
            raise Closed("EOF")
        self.buf += data


def eio_handshake(conn: HttpConn) -> str:
    """A new Engine.IO polling session: ``0{"sid": ...}``; its sid."""
    status, body = conn.request("GET", POLLING)
    text = body.decode()
    try:
        if status == 200 and text.startswith("0"):
            sid: str = json.loads(text[1:])["sid"]
            return sid
    except (ValueError, KeyError, TypeError):
        pass
    raise Closed(f"handshake refused: {status} {text[:80]}")


def noop_body(max_bytes: int) -> bytes:
    """As many NOOP packets as fit in ``max_bytes``: ``6\\x1e6\\x1e...6``."""
    count = (max_bytes + 1) // 2
    return RS.join(["6"] * count).encode()


# ---- Socket.IO over websocket-client -----------------------------------------------------------


def open_member(port: int, token: str, project_id: int) -> websocket.WebSocket:
    """A WebSocket member, connected with ``token`` and joined to the project (ack id 0)."""
    ws = websocket.create_connection(
        f"ws://{HOST}:{port}{WEBSOCKET}", timeout=10, enable_multithread=True
    )
    try:
        _expect(ws, "0")
        ws.send("40" + json.dumps({"token": token}))
        reply = _expect(ws, "40", "44")
        if reply.startswith("44"):
            raise Closed(f"CONNECT refused: {reply}")
        ws.send(f'420["joinProject",{project_id}]')
        _expect(ws, "430")
    except BaseException:
        abort(ws)
        ws.close()
        raise
    ws.settimeout(None)
    return ws


def abort(ws: websocket.WebSocket) -> None:
    """Cut the TCP connection under ``ws``: a thread blocked in its ``recv`` returns."""
    ws.abort()  # type: ignore[no-untyped-call]


def _expect(ws: websocket.WebSocket, *prefixes: str) -> str:
    """The next message that starts with one of ``prefixes`` (pings answered on the way)."""
    while True:
        msg = ws.recv()
        if not isinstance(msg, str) or msg == "":
            raise Closed("closed during the handshake")
        if msg == "2":
            ws.send("3")
        elif msg.startswith(prefixes):
            return msg


def parse_ack(msg: str) -> tuple[int, Any]:
    """``43<id>[answer]`` -> (id, answer)."""
    i = 2
    while msg[i].isdigit():
        i += 1
    args = json.loads(msg[i:])
    return int(msg[2:i]), args[0] if args else None


class Reader(threading.Thread):
    """Reads one member's messages until the connection ends: answers pings, hands acks and
    events to ``on_ack`` / ``on_event``, and notes when and how the server ended it."""

    def __init__(
        self,
        ws: websocket.WebSocket,
        t0: float,
        on_ack: Callable[[int, Any], None],
        on_event: Callable[[str], None] = lambda msg: None,
    ) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.t0 = t0
        self.on_ack = on_ack
        self.on_event = on_event
        self.ended_after: float | None = None
        self.end_reason = ""
        self.stopping = False

    def run(self) -> None:
        reason = "closed"
        try:
            while True:
                msg = self.ws.recv()
                if msg == "" or not isinstance(msg, str):
                    reason = "WebSocket close" if msg == "" else "binary frame"
                    break
                if msg == "2":
                    self.ws.send("3")
                elif msg.startswith("43"):
                    self.on_ack(*parse_ack(msg))
                elif msg.startswith("42"):
                    self.on_event(msg)
                elif msg.startswith(("41", "1")):
                    reason = "Socket.IO DISCONNECT" if msg.startswith("41") else "Engine.IO CLOSE"
                    break
        except (OSError, websocket.WebSocketException) as exc:
            reason = type(exc).__name__
        if not self.stopping:
            self.ended_after = round(time.monotonic() - self.t0, 2)
            self.end_reason = reason


# ---- scenario: noop-posts --------------------------------------------------------------------


class NoopStats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = 0
        self.statuses: Counter[int] = Counter()
        self.post_s: list[float] = []
        self.sessions = 0
        self.handshake_failures = 0
        self.connections_closed = 0
        self.polls_answered = 0
        self.pongs = 0


def noop_posts(args: Result, stop: threading.Event, ready: Callable[[], None]) -> Result:
    """K attackers POST ~1 MB bodies of NOOP packets back to back, each on its own polling
    session (half of them Socket.IO-connected), with a GET kept pending beside it."""
    registry = Registry()
    stats = NoopStats()
    body = noop_body(args["post_bytes"])
    threads = [
        threading.Thread(
            target=_noop_attacker, args=(i, args, body, registry, stop, stats), daemon=True
        )
        for i in range(args["attackers"])
    ]
    for thread in threads:
        thread.start()
    ready()
    stop.wait()
    registry.shutdown_all()
    for thread in threads:
        thread.join(timeout=10)
    return {
        "attackers": args["attackers"],
        "body_bytes": len(body),
        "posts_answered": stats.answered,
        "post_statuses": dict(stats.statuses),
        "post_median_ms": median_ms(stats.post_s),
        "sessions_opened": stats.sessions,
        "handshake_failures": stats.handshake_failures,
        "connections_closed_by_server": stats.connections_closed,
        "polls_answered": stats.polls_answered,
        "pongs_sent": stats.pongs,
    }


def _noop_attacker(
    index: int,
    args: Result,
    body: bytes,
    registry: Registry,
    stop: threading.Event,
    stats: NoopStats,
) -> None:
    port = args["hub_port"]
    while not stop.is_set():
        try:
            conn = HttpConn(port, registry)
        except OSError:
            with stats.lock:
                stats.handshake_failures += 1
            stop.wait(0.2)
            continue
        try:
            _noop_session(index, args, body, conn, registry, stop, stats)
        except Closed:
            if not stop.is_set():
                with stats.lock:
                    stats.connections_closed += 1
        finally:
            conn.close()


def _noop_session(
    index: int,
    args: Result,
    body: bytes,
    conn: HttpConn,
    registry: Registry,
    stop: threading.Event,
    stats: NoopStats,
) -> None:
    """One session: handshake, CONNECT (even attackers), then NOOP bodies until it ends."""
    try:
        sid = eio_handshake(conn)
    except Closed:
        with stats.lock:
            stats.handshake_failures += 1
        stop.wait(0.2)
        return
    with stats.lock:
        stats.sessions += 1
    target = f"{POLLING}&sid={sid}"
    if index % 2 == 0:
        conn.request("POST", target, ("40" + json.dumps({"token": args["token"]})).encode())
    pong_due = threading.Event()
    poller = threading.Thread(
        target=_keep_polling,
        args=(args["hub_port"], target, registry, stop, stats, pong_due),
        daemon=True,
    )
    poller.start()
    try:
        while not stop.is_set():
            payload = body
            if pong_due.is_set():  # answer the server's ping, or it closes the session
                pong_due.clear()
                payload = b"3" + RS.encode() + body[2:]
                with stats.lock:
                    stats.pongs += 1
            t = time.monotonic()
            status, _ = conn.request("POST", target, payload)
            with stats.lock:
                stats.statuses[status] += 1
                if status == 200:
                    stats.answered += 1
                    stats.post_s.append(time.monotonic() - t)
            if status != 200:
                return  # the session is over: a new one
    finally:
        poller.join(timeout=0 if stop.is_set() else 0.1)


def _keep_polling(
    port: int,
    target: str,
    registry: Registry,
    stop: threading.Event,
    stats: NoopStats,
    pong_due: threading.Event,
) -> None:
    """A GET always pending, as a polling client keeps one; notes pings for the poster."""
    try:
        conn = HttpConn(port, registry, timeout=120)
    except OSError:
        return
    try:
        while not stop.is_set():
            status, body = conn.request("GET", target)
            if status != 200:
                return
            with stats.lock:
                stats.polls_answered += 1
            packets = body.decode("utf-8", "replace").split(RS)
            if "2" in packets:
                pong_due.set()
            if "1" in packets or "6" in packets:
                return  # CLOSE, or the NOOP that ends a poll of a closing session
    except Closed:
        pass
    finally:
        conn.close()


# ---- scenario: half-open ---------------------------------------------------------------------


class HalfOpen:
    """One half-open connection: its request's headers sent, 100 body bytes promised."""

    __slots__ = ("ended", "head", "outcome", "sock", "status", "t_sent")

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.sock = sock
        self.head = head
        self.t_sent = 0.0
        self.ended: float | None = None
        self.status: int | None = None
        self.outcome = "connecting"


def half_open(args: Result, stop: threading.Event, ready: Callable[[], None]) -> Result:
    """M connections each send a complete request head with ``Content-Length: 100`` and then
    nothing: half a POST on a real session (one session each), half a handshake GET. With
    ``kind="websocket"`` instead: M WebSocket upgrades, each of which then never sends a
    Socket.IO CONNECT (the server answers 101 and its OPEN packet; nothing more comes)."""
    m, port = args["connections"], args["hub_port"]
    sids: list[str] = []
    session_error = None
    if args.get("kind") == "websocket":
        heads = [_websocket_head(port)] * m
    else:
        posts = m // 2
        sids, session_error = _open_sessions(port, posts)
        heads = [
            _half_open_head(port, sids[i % len(sids)] if sids else "none") for i in range(posts)
        ]
        heads += [_half_open_head(port, None)] * (m - posts)
    ep = select.epoll()
    everything = [_half_open_connect(ep, head, port) for head in heads]
    pending = {c.sock.fileno(): c for c in everything if c.outcome == "connecting"}
    t_open = time.monotonic()
    announced = False
    while not stop.is_set():
        for fd, ev in ep.poll(0.1):
            _half_open_event(ep, pending, pending[fd], ev)
        if not announced and (
            all(c.outcome != "connecting" for c in pending.values())
            or time.monotonic() - t_open > 5
        ):
            announced = True
            ready()
    if not announced:
        ready()
    for c in pending.values():
        c.sock.close()
    ep.close()
    result = _half_open_result(everything, time.monotonic() - t_open)
    result.update(sessions_for_posts=len(sids), session_error=session_error)
    return result


def _half_open_connect(ep: select.epoll, head: bytes, port: int) -> HalfOpen:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    c = HalfOpen(sock, head)
    if sock.connect_ex((HOST, port)) not in (0, errno.EINPROGRESS):
        c.outcome, c.ended = "refused", 0.0
        sock.close()
    else:
        ep.register(sock.fileno(), select.EPOLLOUT)
    return c


def _open_sessions(port: int, n: int) -> tuple[list[str], str | None]:
    """``n`` polling sessions for the half-open POSTs, opened over one keep-alive connection
    (so that opening them does not itself hold connections)."""
    registry = Registry()
    sids: list[str] = []
    conn: HttpConn | None = None
    try:
        while len(sids) < n:
            if conn is None:
                conn = HttpConn(port, registry, timeout=10)
            sids.append(eio_handshake(conn))
    except (OSError, ValueError) as exc:
        return sids, f"{type(exc).__name__}: {exc}"
    finally:
        if conn is not None:
            conn.close()
    return sids, None


def _half_open_head(port: int, sid: str | None) -> bytes:
    method, target = ("GET", POLLING) if sid is None else ("POST", f"{POLLING}&sid={sid}")
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n"
    ).encode()


def _websocket_head(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {WEBSOCKET} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _half_open_event(ep: select.epoll, conns: dict[int, HalfOpen], c: HalfOpen, ev: int) -> None:
    fd = c.sock.fileno()
    now = time.monotonic()
    if c.outcome == "connecting":
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            _half_open_end(ep, conns, c, "refused", now)
            return
        try:
            c.sock.send(c.head)  # a few hundred bytes: a fresh socket's buffer takes them
        except OSError:
            _half_open_end(ep, conns, c, "refused", now)
            return
        c.t_sent = now
        c.outcome = "held"
        ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
        return
    try:
        data = c.sock.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        _half_open_end(ep, conns, c, "reset", now)
        return
    if data:
        if c.status is None and data.startswith(b"HTTP/1."):
            c.status = int(data.split(None, 2)[1])
            if c.status != 101:  # an answer means the server gave up on the request
                c.ended = now - c.t_sent
        return
    _half_open_end(ep, conns, c, "answered" if c.status is not None else "closed", now)


def _half_open_end(
    ep: select.epoll, conns: dict[int, HalfOpen], c: HalfOpen, outcome: str, now: float
) -> None:
    c.outcome = outcome
    if c.ended is None:
        c.ended = now - c.t_sent if c.t_sent else 0.0
    fd = c.sock.fileno()
    ep.unregister(fd)
    del conns[fd]
    c.sock.close()


def _by_status(conns: list[HalfOpen]) -> dict[int, list[float]]:
    """Seconds from the request head to the server's answer, per HTTP status."""
    times: dict[int, list[float]] = {}
    for c in conns:
        if c.status is not None and c.ended is not None:
            times.setdefault(c.status, []).append(c.ended)
    return times


def _half_open_result(conns: list[HalfOpen], held_s: float) -> Result:
    """Outcomes: ``held`` (still open, unanswered), ``refused`` (the connect failed),
    ``answered`` (an HTTP response, then closed), ``closed`` (EOF, no answer), ``reset``;
    a held connection that got a response without being closed counts as refused too."""
    outcomes = Counter(c.outcome for c in conns)
    given_up = [
        c
        for c in conns
        if c.outcome not in ("held", "connecting") or (c.status and c.status != 101)
    ]
    ended = [c.ended for c in given_up if c.ended is not None]
    return {
        "connections": len(conns),
        "outcomes": dict(outcomes),
        "refused_or_closed": len(given_up),
        "answered_statuses": {
            str(k): v
            for k, v in Counter(c.status for c in conns if c.status not in (None, 101)).items()
        },
        "upgraded": sum(1 for c in conns if c.status == 101),
        "median_s_to_close": round(statistics.median(ended), 4) if ended else None,
        "median_s_to_answer_by_status": {
            str(status): round(statistics.median(times), 3)
            for status, times in _by_status(conns).items()
        },
        "held_s": round(held_s, 1),
    }


# ---- scenario: surrogate-bomb ----------------------------------------------------------------


class SlowReader:
    """A WebSocket member that does the handshake, joins, and then reads nothing until the
    end, so the server queues its broadcasts; its receive buffer is kept small."""

    def __init__(self, port: int, token: str, project_id: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect((HOST, port))
        self.sock = sock
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {WEBSOCKET} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise Closed(f"upgrade refused: {head[:60]!r}")
        self._until("0")
        self.send("40" + json.dumps({"token": token}))
        self._until("40")
        self.send(f'420["joinProject",{project_id}]')
        self._until("430")

    def send(self, text: str) -> None:
        self.sock.sendall(ws_frame(text.encode()))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise Closed("EOF")
        self.buf += data

    def frame(self) -> tuple[int, bytes]:
        """The next server frame (unmasked): (opcode, payload)."""
        while len(self.buf) < 2:
            self._fill()
        opcode, length, h = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if length >= 126:
            h = 4 if length == 126 else 10
            while len(self.buf) < h:
                self._fill()
            length = int.from_bytes(self.buf[2:h], "big")
        while len(self.buf) < h + length:
            self._fill()
        payload, self.buf = self.buf[h : h + length], self.buf[h + length :]
        return opcode, payload

    def _until(self, prefix: str) -> None:
        while True:
            opcode, payload = self.frame()
            if opcode == 8:
                raise Closed("closed during the handshake")
            if payload == b"2":
                self.send("3")
            elif payload.startswith(prefix.encode()):
                return

    def drain(self, budget: float) -> Result:
        """Read what the server kept for us, for ``budget`` seconds at most."""
        frames, closed, deadline = 0, "", time.monotonic() + budget
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
                opcode, payload = self.frame()
                frames += 1
                if opcode == 8 or payload in (b"1", b"41"):
                    closed = "close frame" if opcode == 8 else payload.decode()
                    break
        except TimeoutError:
            pass
        except (OSError, Closed) as exc:
            closed = type(exc).__name__
        finally:
            self.sock.close()
        return {"frames_read_at_end": frames, "closed_by_server": closed or None}


class Bomb:
    """The bomber's counts: acks by kind and answer, canaries, and its own connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kinds: dict[int, str] = {}
        self.acks: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.canaries_seen = 0
        self.connects = 0
        self.disconnects: list[float] = []
        self.reasons: Counter[str] = Counter()

    def on_ack(self, ack_id: int, answer: Any) -> None:
        kind = self.kinds.pop(ack_id, "?")
        ok = isinstance(answer, dict) and answer.get("ok") is True
        verdict = "ok" if ok else str(answer.get("error") if isinstance(answer, dict) else answer)
        with self.lock:
            self.acks[f"{kind}: {verdict}"] += 1

    def on_event(self, msg: str) -> None:
        if '"canary ' in msg:
            with self.lock:
                self.canaries_seen += 1


def surrogate_bomb(args: Result, stop: threading.Event, ready: Callable[[], None]) -> Result:
    """The bomber sends ``cursorMove`` and ``chatMessage`` with lone surrogates (as JSON
    escapes), each round followed by a clean ``canary N`` message; a slow reader sits in
    the room throughout."""
    port, project = args["hub_port"], args["project_id"]
    slow: SlowReader | None = None
    slow_error = None
    try:
        slow = SlowReader(port, args["slow_token"], project)
    except (OSError, Closed) as exc:
        slow_error = f"{type(exc).__name__}: {exc}"
    bomb = Bomb()
    t0 = time.monotonic()
    ready()
    _bomb_until_stopped(args, bomb, stop, t0)
    result: Result = {
        "rounds_per_s": args["rate"],
        "sent": dict(bomb.sent),
        "acks": dict(bomb.acks),
        "canaries_sent": bomb.sent["canary"],
        "canaries_seen_by_bomber": bomb.canaries_seen,
        "bomber_connects": bomb.connects,
        "bomber_disconnected_after_s": bomb.disconnects,
        "bomber_disconnect_reasons": dict(bomb.reasons),
        "slow_reader_error": slow_error,
    }
    if slow is not None:
        result["slow_reader"] = slow.drain(2.0)
    return result


def _bomb_until_stopped(args: Result, bomb: Bomb, stop: threading.Event, t0: float) -> None:
    """Rounds at ``rate`` per second; a closed bomber connects again (once a second)."""
    port, project = args["hub_port"], args["project_id"]
    ws: websocket.WebSocket | None = None
    reader: Reader | None = None
    ack_id = 0
    n = 0
    stop.wait(args.get("start_delay", 0.0))  # the room is being prepared
    while not stop.is_set():
        if reader is not None and not reader.is_alive():
            bomb.disconnects.append(reader.ended_after or 0.0)
            bomb.reasons[reader.end_reason] += 1
            ws, reader = None, None
        if ws is None:
            try:
                ws = open_member(port, args["token"], project)
            except (OSError, Closed, websocket.WebSocketException):
                stop.wait(1.0)
                continue
            bomb.connects += 1
            reader = Reader(ws, t0, bomb.on_ack, bomb.on_event)
            reader.start()
        n += 1
        round_ = (
            ("cursorMove", {"projectId": project, "taskId": SURROGATE, "position": {"\\udfff": 1}}),
            ("chatMessage", {"projectId": project, "message": f"bomb {n} {SURROGATE}"}),
            ("canary", {"projectId": project, "message": f"canary {n}"}),
        )
        for kind, body in round_:
            ack_id += 1
            bomb.kinds[ack_id] = kind
            event = "chatMessage" if kind == "canary" else kind
            # json.dumps would write the backslash as "\\\\": the escapes go in by hand
            packed = json.dumps(body, separators=(",", ":")).replace("\\\\u", "\\u")
            text = f'42{ack_id}["{event}",{packed}]'
            try:
                ws.send(text)
            except (OSError, websocket.WebSocketException):
                break
            bomb.sent[kind] += 1
        stop.wait(1.0 / args["rate"])
    if ws is not None and reader is not None:
        reader.stopping = reader.is_alive()
        if not reader.stopping:
            bomb.disconnects.append(reader.ended_after or 0.0)
            bomb.reasons[reader.end_reason] += 1
        abort(ws)
        ws.close()


# ---- scenario: chat-flood --------------------------------------------------------------------

EMOJI = "😀🎉🔥🚀💬🐍🌈🍕"


class Flood:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acks: Counter[str] = Counter()
        self.last_ack = time.monotonic()
        self.received = 0

    def on_ack(self, ack_id: int, answer: Any) -> None:
        ok = isinstance(answer, dict) and answer.get("ok") is True
        verdict = "ok" if ok else str(answer.get("error") if isinstance(answer, dict) else answer)
        with self.lock:
            self.acks[verdict] += 1
            self.last_ack = time.monotonic()

    def on_event(self, msg: str) -> None:
        self.received += 1


def chat_flood(args: Result, stop: threading.Event, ready: Callable[[], None]) -> Result:
    """One member sends ``chatMessage`` (100 emoji) as fast as it can, never waiting for an
    ack; a reader thread counts the acks and the broadcasts it gets back."""
    try:
        ws = open_member(args["hub_port"], args["token"], args["project_id"])
    except (OSError, Closed, websocket.WebSocketException) as exc:
        ready()
        return {"connect_error": f"{type(exc).__name__}: {exc}"}
    flood = Flood()
    t0 = time.monotonic()
    reader = Reader(ws, t0, flood.on_ack, flood.on_event)
    reader.start()
    message = (EMOJI * (100 // len(EMOJI) + 1))[:100]
    prefix = '["chatMessage",{"projectId":' + str(args["project_id"]) + ',"message":"'
    sending = threading.Event()
    sending.set()
    threading.Thread(target=_unblock_send, args=(ws, stop, sending), daemon=True).start()
    ready()
    sent = 0
    send_error = None
    while not stop.is_set() and reader.is_alive():
        try:
            ws.send(f'42{sent + 1}{prefix}{message} {sent + 1}"}}]')
        except (OSError, websocket.WebSocketException) as exc:
            send_error = f"{type(exc).__name__} after {time.monotonic() - t0:.2f} s"
            break
        sent += 1
    sending.clear()
    flood_s = time.monotonic() - t0
    _wait_for_acks(flood, sent, reader)
    reader.stopping = reader.is_alive()
    abort(ws)
    ws.close()
    reader.join(timeout=2)
    return {
        "sent": sent,
        "flood_s": round(flood_s, 2),
        "send_rate_per_s": round(sent / flood_s) if flood_s else None,
        "acks": dict(flood.acks),
        "acked_ok": flood.acks["ok"],
        "refused": flood.acks["Rate limit exceeded"],
        "unanswered": sent - sum(flood.acks.values()),
        "broadcasts_received": flood.received,
        "disconnected_after_s": reader.ended_after,
        "disconnect_reason": reader.end_reason or None,
        "send_error": send_error,
    }


def _unblock_send(ws: websocket.WebSocket, stop: threading.Event, sending: threading.Event) -> None:
    """A server that stopped reading leaves ``send`` blocked for ever: 5 s after ``stop``,
    a flooder still inside ``send`` has its socket cut."""
    stop.wait()
    deadline = time.monotonic() + 5
    while sending.is_set() and time.monotonic() < deadline:
        time.sleep(0.1)
    if sending.is_set():
        abort(ws)


def _wait_for_acks(flood: Flood, sent: int, reader: Reader, quiet: float = 1.0) -> None:
    """After the flood, give the server up to 10 s to answer the rest (until 1 s passes
    with no new ack), so that the stored count is compared with what it finished."""
    deadline = time.monotonic() + 10
    while reader.is_alive() and time.monotonic() < deadline:
        with flood.lock:
            done = sum(flood.acks.values()) >= sent
            idle = time.monotonic() - flood.last_ack > quiet
        if done or idle:
            return
        time.sleep(0.1)


# ---- the child process -----------------------------------------------------------------------

Attack = Callable[[Result, threading.Event, Callable[[], None]], Result]
ATTACKS: dict[str, Attack] = {
    "noop_posts": noop_posts,
    "half_open": half_open,
    "surrogate_bomb": surrogate_bomb,
    "chat_flood": chat_flood,
}


def child_main(name: str, args: Result, conn: Connection) -> None:
    """Entry point of the attack process (multiprocessing, spawn). ``stop`` comes as a
    message on the pipe (or as its end, if the parent is gone): a multiprocessing Event
    would hang the parent's ``set`` if this process died with a thread waiting on it."""
    raise_fd_limit()
    stop = threading.Event()

    def wait_for_stop() -> None:
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    try:
        result = ATTACKS[name](args, stop, lambda: conn.send(("ready", {})))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    else:
        conn.send(("result", result))
    finally:
        conn.close()
