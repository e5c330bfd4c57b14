"""The server side of the Socket.IO Admin UI (``@socket.io/admin-ui``), for the hub.

The UI (the hosted dashboard, or the package's ``ui/dist`` served anywhere) is a browser
page that connects with the stock ``socket.io-client`` to namespace ``/admin`` and draws
what it is sent there. :func:`instrument` makes the hub speak that namespace's protocol, as
the package's ``instrument(io, options)`` does for a Node server:

- connecting: basic authentication (``auth: {username, password}`` checked against a
  bcrypt hash, refused with ``invalid credentials``); a client that got in is sent
  ``session`` (an id it may connect with next time, ``auth: {sessionId}``), then
  ``config`` (``{supportedFeatures}``) and, in development mode, ``all_sockets``;
- every 2 s each node sends ``server_stats`` (``serverId``, ``hostname``, ``pid``,
  ``uptime``, ``clientsCount``, ``pollingClientsCount``, ``aggregatedEvents``,
  ``namespaces``) to every admin client of the cluster;
- in development mode, what happens in every namespace: ``socket_connected``,
  ``socket_updated`` (a transport upgrade), ``socket_disconnected``, ``room_joined``,
  ``room_left``, ``event_received``, ``event_sent``;
- unless read-only, the UI's commands ``emit``, ``join``, ``leave`` and ``_disconnect``
  (namespace, then a room or socket id to narrow it to), carried out across the cluster.

What the hub tells it comes from :meth:`~server.hub.Hub.observe` (sockets and rooms, in
development mode only), the engine's ``upgrade_observers`` (upgrades), each socket's
``on_any`` / ``on_any_outgoing`` listeners (events), and counters the hub keeps anyway (the
aggregated events). Observers only queue; a task of the hub's
(:meth:`~server.hub.Hub.run_while_serving`) sends what was queued, the stats, and carries
out the UI's commands one after another.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import socket as sockets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import bcrypt
import trio

from server.hub.adapter import LocalAdapter, SocketLike
from server.hub.broadcast import BroadcastOperator
from server.hub.client import Client
from server.hub.engine import Session
from server.hub.errors import ConnectRefused
from server.hub.socket import Socket

if TYPE_CHECKING:
    from server.hub.namespace import Namespace
    from server.hub.server import Hub

log = logging.getLogger("hub.admin")

__all__ = [
    "DEVELOPMENT",
    "PRODUCTION",
    "AdminUI",
    "AdminUIOptions",
    "check_bcrypt_hash",
    "instrument",
    "serialize",
]

DEVELOPMENT = "development"
PRODUCTION = "production"
#: What the UI may ask for (its ``Feature`` names); the first seven are the commands.
COMMANDS = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
#: ``server_stats`` every this many seconds, as the package does.
STATS_INTERVAL = 2.0
#: How long a session id stays good (the package's Redis store keeps one a day).
SESSION_TTL = 86_400.0
#: Session ids kept at most (the oldest go first).
MAX_SESSIONS = 10_000
#: Messages waiting for the sender task; past this they are dropped (and counted).
MAX_PENDING = 10_000
#: Commands waiting to be carried out; past this they are dropped.
MAX_COMMANDS = 1_000
#: A command of the UI's, and its arguments.
Command = tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]
#: Password checks at once: bcrypt is slow on purpose, so a flood of wrong passwords costs
#: at most this many worker threads.
CHECKS_AT_ONCE = 2

#: A bcrypt hash as bcryptjs and the ``bcrypt`` package write them: ``$2a$``, ``$2b$`` or
#: ``$2y$``, a cost of 04 to 31, then 53 characters of salt and digest.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


def check_bcrypt_hash(text: str) -> str:
    """``text`` if it is a bcrypt hash; ValueError otherwise."""
    if not BCRYPT_HASH.fullmatch(text):
        raise ValueError("the password must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
    return text


def _password_matches(password: str, hashed: str) -> bool:
    # bcryptjs (the package's) looks at the first 72 bytes, as bcrypt itself does
    return bool(bcrypt.checkpw(password.encode()[:72], hashed.encode()))


@dataclass(frozen=True, slots=True)
class AdminUIOptions:
    """How :func:`instrument` is called, as settings hold it (``--admin-ui``)."""

    #: ``(username, bcrypt hash)``; None: no authentication at all.
    auth: tuple[str, str] | None
    read_only: bool = False
    server_id: str | None = None
    mode: str = DEVELOPMENT
    namespace: str = "/admin"

    def install(self, hub: Hub) -> AdminUI:
        return instrument(
            hub,
            auth=self.auth,
            read_only=self.read_only,
            server_id=self.server_id,
            mode=self.mode,
            namespace=self.namespace,
        )


def instrument(
    hub: Hub,
    *,
    auth: tuple[str, str] | None,
    read_only: bool = False,
    server_id: str | None = None,
    mode: str = DEVELOPMENT,
    namespace: str = "/admin",
) -> AdminUI:
    """Serve the admin UI's protocol on ``namespace`` of ``hub``.

    ``auth`` is ``(username, bcrypt_hash)``, or None for no authentication: it has no
    default, so that no one leaves it out by mistake (the package insists on the same).
    ``read_only``: the UI's commands are neither offered nor obeyed. ``server_id`` names
    this node in the UI (default: the host name, and ``#pid`` after it when the hub is one
    node of a cluster). ``mode``: ``development`` sends every socket, room change and event;
    ``production`` only the stats.
    """
    return AdminUI(
        hub, auth=auth, read_only=read_only, server_id=server_id, mode=mode, namespace=namespace
    )


class AdminUI:
    """The ``/admin`` namespace and what feeds it; made by :func:`instrument`."""

    def __init__(
        self,
        hub: Hub,
        *,
        auth: tuple[str, str] | None,
        read_only: bool,
        server_id: str | None,
        mode: str,
        namespace: str,
    ) -> None:
        if mode not in (DEVELOPMENT, PRODUCTION):
            raise ValueError(f"mode is {DEVELOPMENT!r} or {PRODUCTION!r}, not {mode!r}")
        if auth is not None:
            username, hashed = auth
            if not username:
                raise ValueError("the admin UI's username is empty")
            check_bcrypt_hash(hashed)
        self.hub = hub
        self.auth = auth
        self.read_only = read_only
        self.development = mode == DEVELOPMENT
        hostname = sockets.gethostname()
        if not server_id:
            alone = hub.adapter_factory is LocalAdapter
            server_id = hostname if alone else f"{hostname}#{os.getpid()}"
        self.server_id = server_id
        self.hostname = hostname
        features = [] if read_only else list(COMMANDS)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        self.features = features
        #: Admin clients: no connection state recovery (what is sent here is a live view).
        self.nsp: Namespace = hub.of(
            namespace, config=hub.config.replace(connection_state_recovery=False)
        )
        #: Session ids handed out -> when they expire (trio time).
        self._sessions: dict[str, float] = {}
        #: Session ids of admin sockets that have just passed the middleware.
        self._fresh: weakref.WeakKeyDictionary[Socket, str] = weakref.WeakKeyDictionary()
        self._checks = trio.CapacityLimiter(CHECKS_AT_ONCE)
        #: (event, args) for every admin client, waiting for the sender task; room_left
        #: after the rest of a batch (Node's instrument() sends it on the next tick).
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._later: list[tuple[str, tuple[Any, ...]]] = []
        self._wakeup = trio.Event()
        #: The UI's commands, carried out one after another in the order they came.
        self._commands, self._to_do = trio.open_memory_channel[Command](MAX_COMMANDS)
        self.dropped = 0
        self._started = _process_start()
        self._counts = self._counters()

        nsp = self.nsp
        if auth is not None:
            nsp.use(self._authenticate)
        else:
            log.warning("the admin UI on %s takes anyone: no authentication", namespace)
        nsp.on("connect", self._welcome)
        if not read_only:
            for event, action in (
                ("emit", self._emit),
                ("join", self._join),
                ("leave", self._leave),
                ("_disconnect", self._disconnect),
            ):
                nsp.on(event, self._queued(event, action))
        if self.development:
            hub.observe(self)
            hub.engine.upgrade_observers.append(self._upgraded)
        hub.run_while_serving(self.run)

    # ---- connecting ------------------------------------------------------------------------
    async def _authenticate(self, socket: Socket) -> None:
        assert self.auth is not None
        given = socket.handshake.auth
        session = given.get("sessionId")
        if isinstance(session, str) and self._session_valid(session):
            return
        username, password = given.get("username"), given.get("password")
        expected, hashed = self.auth
        if (
            isinstance(username, str)
            and isinstance(password, str)
            and hmac.compare_digest(username.encode(), expected.encode())
            and await trio.to_thread.run_sync(
                _password_matches, password, hashed, limiter=self._checks
            )
        ):
            self._fresh[socket] = self._new_session()
            return
        raise ConnectRefused("invalid credentials")

    def _session_valid(self, session: str) -> bool:
        expires = self._sessions.get(session)
        if expires is None:
            return False
        if expires < trio.current_time():
            del self._sessions[session]
            return False
        return True

    def _new_session(self) -> str:
        now = trio.current_time()
        sessions = self._sessions
        for old, expires in list(sessions.items()):
            if expires < now:
                del sessions[old]
        while len(sessions) >= MAX_SESSIONS:
            del sessions[next(iter(sessions))]
        session = secrets.token_hex(8)
        sessions[session] = now + SESSION_TTL
        return session

    async def _welcome(self, socket: Socket) -> None:
        session = self._fresh.pop(socket, None)
        if session is not None:
            socket.emit("session", session)
        socket.emit("config", {"supportedFeatures": self.features})
        if self.development:
            socket.emit("all_sockets", await self.all_sockets())

    async def all_sockets(self) -> list[dict[str, Any]]:
        """Every socket of every namespace, on every node (as ``fetch_sockets`` finds them)."""
        found = []
        for nsp in list(self.hub.each_namespace()):
            for socket in await nsp.fetch_sockets():
                found.append(serialize(socket, nsp.name))
        return found

    # ---- the UI's commands -------------------------------------------------------------------
    def _target(self, nsp: Any, filter_: Any) -> BroadcastOperator | None:
        """The sockets of namespace ``nsp`` (on every node), narrowed to a room (or a
        socket id) when ``filter_`` names one."""
        if not isinstance(nsp, str):
            return None
        # an existing namespace only: one made here by name would shadow a dynamic
        # namespace's child of that name
        found = [n for n in self.hub.each_namespace() if n.name == nsp]
        if not found:
            return None
        everyone = found[0].to()
        if isinstance(filter_, str) and filter_:
            return everyone.to(filter_)
        if isinstance(filter_, list) and filter_ and all(isinstance(r, str) for r in filter_):
            return everyone.to(*filter_)
        return everyone

    def _queued(self, event: str, action: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        """The handler of a command: queued for :meth:`_carry_out`, so that commands are
        carried out in the order they came (as Node does), whatever each waits for."""

        def handler(_admin: Socket, *args: Any) -> None:
            try:
                self._commands.send_nowait((action, args))
            except trio.WouldBlock:
                log.warning("admin UI: %d commands waiting; %r dropped", MAX_COMMANDS, event)

        return handler

    async def _carry_out(self) -> None:
        async for action, args in self._to_do:
            try:
                await action(*args)
            except Exception:
                log.exception("admin UI: a command failed")

    async def _emit(self, nsp: Any = None, filter_: Any = None, *rest: Any) -> None:
        target = self._target(nsp, filter_)
        if target is None or not rest or not isinstance(rest[0], str):
            return
        try:
            target.emit(rest[0], *rest[1:])
        except (TypeError, ValueError) as exc:
            log.info("admin UI: cannot emit %r: %s", rest[0], exc)

    async def _join(self, nsp: Any = None, room: Any = None, f: Any = None) -> None:
        target = self._target(nsp, f)
        if target is not None and isinstance(room, str) and room:
            await target.sockets_join(room)

    async def _leave(self, nsp: Any = None, room: Any = None, f: Any = None) -> None:
        target = self._target(nsp, f)
        if target is not None and isinstance(room, str) and room:
            await target.sockets_leave(room)

    async def _disconnect(self, nsp: Any = None, close: Any = False, f: Any = None) -> None:
        target = self._target(nsp, f)
        if target is not None:
            await target.disconnect_sockets(bool(close))

    # ---- what happens in the namespaces (NamespaceObserver; development mode) ----------------
    def socket_connected(self, socket: Socket) -> None:
        session = socket.client.session
        transport = session.transport.name
        socket.data["_admin"] = {"clientId": session.sid[:12], "transport": transport}
        name = socket.nsp.name
        self._send("socket_connected", serialize(socket, name), _now())
        if name != self.nsp.name:
            sid = socket.id
            socket.on_any(lambda *args: self._send("event_received", name, sid, list(args), _now()))
            socket.on_any_outgoing(
                lambda *args: self._send("event_sent", name, sid, list(args), _now())
            )

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        self._send("socket_disconnected", socket.nsp.name, socket.id, reason, _now())

    def _upgraded(self, session: Session) -> None:
        """A connection moved from long-polling to a WebSocket: ``socket_updated`` for each
        of its sockets."""
        client = session.handler
        if not isinstance(client, Client):
            return
        transport = session.transport.name
        for socket in list(client.sockets.values()):
            admin = socket.data.get("_admin")
            if isinstance(admin, dict):
                admin["transport"] = transport
            update = {"id": socket.id, "nsp": socket.nsp.name, "transport": transport}
            self._send("socket_updated", update)

    def room_joined(self, nsp: str, room: str, sid: str) -> None:
        self._send("room_joined", nsp, room, sid, _now())

    def room_left(self, nsp: str, room: str, sid: str) -> None:
        self._send("room_left", nsp, room, sid, _now(), later=True)

    def _send(self, event: str, *args: Any, later: bool = False) -> None:
        """Queue ``event`` for every admin client (of every node): the sender task sends it,
        so an observer never sends from inside the hub's own bookkeeping."""
        if len(self._pending) + len(self._later) >= MAX_PENDING:
            self.dropped += 1
            return
        (self._later if later else self._pending).append((event, args))
        self._wakeup.set()

    # ---- the task ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Send what was queued as it comes, and the stats every 2 s (while the hub serves)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_pending)
            nursery.start_soon(self._carry_out)
            while True:
                self._send("server_stats", self.server_stats())
                await trio.sleep(STATS_INTERVAL)

    async def _send_pending(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            pending, self._pending, later, self._later = self._pending, [], self._later, []
            for event, args in (*pending, *later):
                try:
                    self.nsp.emit(event, *args)
                except (TypeError, ValueError) as exc:
                    log.info("admin UI: cannot send %s: %s", event, exc)

    def server_stats(self) -> dict[str, Any]:
        """This node's stats, as the package sends them every 2 s."""
        hub = self.hub
        sessions = hub.engine.sessions
        return {
            "serverId": self.server_id,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "uptime": time.time() - self._started,
            "clientsCount": len(sessions),
            "pollingClientsCount": sum(1 for s in list(sessions.values()) if s.polling),
            "aggregatedEvents": self._aggregated_events(),
            "namespaces": [
                {"name": nsp.name, "socketsCount": len(nsp.sockets)} for nsp in hub.each_namespace()
            ],
        }

    def _counters(self) -> dict[str, int]:
        engine = self.hub.engine
        totals = engine.totals()
        closed = totals["sessions_closed"]
        return {
            "rawConnection": len(engine.sessions) + closed,
            "rawDisconnection": closed,
            "packetsIn": self.hub.stats["packets_in"],
            "packetsOut": totals["packets_out"],
        }

    def _aggregated_events(self) -> list[dict[str, Any]]:
        """What happened since the last stats, counted as the package counts it: one entry
        per kind, at this second (the UI adds them up by 10 s). The hub counts neither
        bytes nor the reasons of closes: no ``bytesIn``/``bytesOut``, no ``subType``."""
        counts, before = self._counters(), self._counts
        self._counts = counts
        second = int(time.time()) * 1000
        return [
            {"timestamp": second, "type": kind, "count": counts[kind] - before[kind]}
            for kind in counts
            if counts[kind] > before[kind]
        ]


def serialize(socket: SocketLike, nsp: str) -> dict[str, Any]:
    """A socket (this node's, or another's as ``fetch_sockets`` lists it) as the UI shows
    it: ``id``, ``clientId``, ``transport``, ``nsp``, ``data``, ``handshake``, ``rooms``."""
    data = socket.data if isinstance(socket.data, dict) else {}
    admin = data.get("_admin")
    admin = admin if isinstance(admin, dict) else {}
    shake = socket.handshake
    headers = shake.headers
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or shake.address
    out: dict[str, Any] = {"id": socket.id}
    for key in ("clientId", "transport"):
        if admin.get(key) is not None:
            out[key] = admin[key]
    out["nsp"] = nsp
    out["data"] = _plain({k: v for k, v in data.items() if k != "_admin"})
    out["handshake"] = {
        "address": address,
        "headers": headers,
        "query": shake.query,
        "issued": int(shake.time * 1000),
        "secure": shake.secure,
        "time": formatdate(shake.time, usegmt=True),
        "url": shake.url,
        "xdomain": "origin" in headers,
    }
    out["rooms"] = sorted(socket.rooms)
    return out


def _plain(value: dict[str, Any]) -> Any:
    """``value`` if JSON can carry it; else with what it cannot carry as text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=repr))
    return value


def _now() -> str:
    """Now, as a JavaScript ``Date`` reaches the UI (JSON): ISO 8601, milliseconds, UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _process_start(read: Callable[[str], str] | None = None) -> float:
    """When this process started (epoch seconds), for ``uptime`` as Node's
    ``process.uptime()`` gives it; now, where ``/proc`` cannot tell."""
    read = read or _read_text
    try:
        ticks = int(read("/proc/self/stat").rsplit(")", 1)[1].split()[19])
        since_boot = float(read("/proc/uptime").split()[0])
        return time.time() - since_boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


def _read_text(path: str) -> str:
    with open(path) as file:
        return file.read()
