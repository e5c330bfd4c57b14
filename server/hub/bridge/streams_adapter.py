"""The cluster on a Redis stream, as ``@socket.io/redis-streams-adapter`` makes one, with
connection state recovery that survives the death of a node.

Three parts:

- :class:`StreamLog`, one per stream (every namespace of the node shares it): it follows
  the stream (every entry, any node's, in order), hands out the ids this node's entries
  will have, and keeps the entries of the last moments.
- :class:`StreamsAdapter`, one per namespace: this node's rooms (a
  :class:`~server.hub.adapter.LocalAdapter`), what it does told to the others (in the
  stream, or over pub/sub for what only matters now), what they ask answered.
- :class:`StreamsRecovery`, the namespace's connection state recovery: sessions are kept in
  Redis and packets are the stream's entries, so any node restores any client.

**Local delivery never waits for Redis.** Node's adapter delivers a broadcast to its own
clients once its ``XADD`` has answered, because the offset each client is told is the
entry's id. Ours chooses the id first (Redis's clock, after every id it knows), delivers
with it at once, and queues the entry at that id (see
:meth:`~server.hub.bridge.driver.RedisDriver.append`); when another node wrote past it
meanwhile, Redis gives the entry the next id and the one our clients know goes in its
``cid`` field, where a restore finds it.

**Exactly once, even after a crash.** A node delivers its own broadcasts when they are made,
and the others' when it reads them, in the stream's order: so the order in which it
delivered is known from the stream alone, given, for each of its own entries, the last
entry it had read when it made it (``seen``). A client's offset names the last packet it
received; the session (written to Redis while the socket is connected, on every change of
its rooms and every ``refresh`` seconds, and when it goes) names the node and where that
node stood when the socket came to it. From these a restore on any node tells which
entries the client had and which it missed, whatever the interleaving. Node's adapter
replays everything after the offset instead: a client of ours restored by a Node node may
see again a packet it had, which is what Node's own clients get.

What is not recovered: an entry still queued when its node was killed never reached the
stream (its own clients had it; the others never will); a restore while Redis is down
fails (the session is in Redis), and the client starts afresh. A client whose last packet
was such an entry is restored, but what its node had read of the others' since its last
entry that did reach the stream is not known: that comes again (at least once, there).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from server.hub.adapter import AckCollector, LocalAdapter, SocketEmitter, SocketLike
from server.hub.bridge import streams
from server.hub.bridge.adapter import (
    ClusterAcks,
    PendingRequest,
    RemoteAcks,
    describe,
    options_of,
    remote_socket,
    selection_of,
)
from server.hub.bridge.driver import CONNECTION_ERRORS, RedisDriver
from server.hub.bridge.streams import (
    ClusterMessage,
    MessageType,
    StoredSession,
    StreamId,
    format_id,
    next_id,
    parse_id,
)
from server.hub.bridge.wire import RequestType, Selection, WireError
from server.hub.broadcast import BroadcastOperator, Target
from server.hub.engine import Wire
from server.hub.protocol import socketio as sio
from server.hub.recovery import RecoveryStore, Restored, SavedSession
from server.hub.selection import BroadcastOptions

log = logging.getLogger("hub.bridge")

#: A restore reads the stream after the client's offset this many entries at a time, and
#: gives up (the client starts afresh) past ``MAX_RESTORE_PAGES`` pages.
RESTORE_PAGE = 1000
MAX_RESTORE_PAGES = 100
#: An offset that is not an entry's id may be one Redis moved (``cid``): looked for among
#: this many entries after it.
CID_SEARCH = 1000
#: The first sequence number of this node's entries in a new millisecond is below this.
SEQUENCE_START = 1 << 20


def new_node_uid() -> str:
    """A node id as Node's ``ClusterAdapter`` makes them: 8 random bytes in hex."""
    return secrets.token_hex(8)


@dataclass(slots=True)
class _Recent:
    """An entry of the last moments: read (anyone's), or written by this node."""

    message: ClusterMessage
    at: float
    #: written by this node (its key is the id its clients were told)
    own: bool


class StreamLog:
    """The stream as this node sees it (see the module's documentation)."""

    def __init__(
        self,
        driver: RedisDriver,
        uid: str,
        *,
        stream: str = streams.DEFAULT_STREAM,
        maxlen: int = streams.DEFAULT_MAXLEN,
        recent: int = 10_000,
        recent_seconds: float = 60.0,
        stats: Counter[str] | None = None,
    ) -> None:
        self.driver = driver
        self.uid = uid
        self.stream = stream
        self.maxlen = maxlen
        self.stats: Counter[str] = stats if stats is not None else Counter()
        #: The last entry read (and delivered); None before the first connection.
        self.read: StreamId | None = None
        #: The last id this node gave one of its entries.
        self.written: StreamId = (0, 0)
        #: The highest id known to be in the stream.
        self.top: StreamId = (0, 0)
        self.adapters: dict[str, StreamsAdapter] = {}
        self._recent: deque[_Recent] = deque()
        self._recent_max = recent
        self._recent_seconds = recent_seconds
        #: The newest entry read that left the recent ones (a restore needs what follows).
        self.forgotten: StreamId = (0, 0)
        driver.follow(stream, self)

    # ---- StreamFollower ----------------------------------------------------------------------
    @property
    def position(self) -> str | None:
        return format_id(self.read) if self.read is not None else None

    def begin(self, top: str) -> None:
        first = parse_id(top) or (0, 0)
        self.read = first
        self.forgotten = first
        self.top = max(self.top, first)

    def entries(self, entries: Sequence[Any]) -> None:
        now = trio.current_time()
        for entry in entries:
            try:
                message = streams.decode_entry(entry.identifier, entry.field_values)
            except WireError as exc:
                self.stats["bad_messages"] += 1
                log.debug("ignoring a malformed stream entry: %s", exc)
                identifier = parse_id(entry.identifier)
                if identifier is not None:
                    self.read = identifier
                continue
            assert message.id is not None
            self.read = message.id
            self.top = max(self.top, message.id)
            if message.uid == self.uid:
                continue  # ours: delivered when it was made, and kept then
            if message.type is MessageType.BROADCAST:
                self._remember(_Recent(message, now, own=False), now)
            adapter = self.adapters.get(message.nsp)
            if adapter is not None:
                adapter.on_entry(message)

    # ---- writing -------------------------------------------------------------------------
    def allocate(self) -> StreamId:
        """The id of this node's next entry: Redis's clock, after every id known. In a new
        millisecond the sequence starts at a random number rather than 0, where another
        node's entry of that millisecond would be: an id this node tells its clients is
        then almost never another entry's too."""
        now = self.driver.redis_time_ms()
        last = max(self.written, self.top, self.read or (0, 0))
        if now > last[0]:
            wanted = (now, secrets.randbelow(SEQUENCE_START))
        else:
            wanted = (last[0], last[1] + 1)
        self.written = wanted
        return wanted

    def append(self, nsp: str, kind: MessageType, data: dict[str, Any] | None) -> StreamId:
        """Queue an entry of this node; returns its id (the one its clients are told)."""
        wanted = self.allocate()
        seen = self.read
        fields = streams.entry_fields(self.uid, nsp, kind, data, seen)
        if kind is MessageType.BROADCAST:
            message = ClusterMessage(
                self.uid, nsp, kind, data or {}, id=wanted, seen=seen or (0, 0)
            )
            now = trio.current_time()
            self._remember(_Recent(message, now, own=True), now)

        def appended(got: str) -> None:
            real = parse_id(got)
            if real is None:
                return
            self.top = max(self.top, real)
            if real != wanted:
                self.stats["stream_ids_moved"] += 1

        self.driver.append(
            self.stream, format_id(wanted), fields, maxlen=self.maxlen, done=appended
        )
        self.stats["stream_appended"] += 1
        return wanted

    # ---- the last moments ------------------------------------------------------------------
    def _remember(self, item: _Recent, now: float) -> None:
        recent = self._recent
        recent.append(item)
        oldest = now - self._recent_seconds
        while recent and (len(recent) > self._recent_max or recent[0].at < oldest):
            gone = recent.popleft()
            if not gone.own and gone.message.id is not None:
                self.forgotten = max(self.forgotten, gone.message.id)

    def recent(self, nsp: str) -> list[_Recent]:
        return [r for r in self._recent if r.message.nsp == nsp]

    @property
    def mark(self) -> tuple[StreamId, StreamId]:
        """Where this node stands: the last entry read, the last id it wrote."""
        return (self.read or (0, 0), self.written)


# ---- which entries a client had ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Had:
    """What a client had received of the stream, for one restore (see the module's text).

    ``node`` delivered to it; entries of ``node`` up to ``own_upto`` (by the id its clients
    were told), and the others' up to ``others_upto``; or, when ``seen_before`` is set,
    ``node``'s entries made before it had read that entry.
    """

    node: str | None
    others_upto: StreamId
    own_upto: StreamId | None = None
    seen_before: StreamId | None = None

    def received(self, message: ClusterMessage) -> bool:
        assert message.id is not None
        if self.node is None or message.uid != self.node:
            return message.id <= self.others_upto
        if self.seen_before is not None:
            return message.seen is not None and message.seen < self.seen_before
        key = message.key
        return self.own_upto is not None and key is not None and key <= self.own_upto

    @property
    def scan_from(self) -> StreamId:
        """Every entry the client lacks comes after this one."""
        if self.own_upto is not None:
            return min(self.others_upto, self.own_upto)
        return self.others_upto


@dataclass(slots=True)
class StreamRestored(Restored):
    """A session taken from Redis, with what the client lacks as read from the stream."""

    had: _Had = field(default_factory=lambda: _Had(None, (0, 0)))
    fetched: list[ClusterMessage] = field(default_factory=list)
    #: The last entry the restore read: what follows comes from the recent entries.
    scanned_to: StreamId = (0, 0)
    stored: StoredSession | None = None


def _replayable(message: ClusterMessage, nsp: str) -> bool:
    if message.type is not MessageType.BROADCAST or message.nsp != nsp:
        return False
    if "requestId" in message.data:
        return False
    flags = (message.data.get("opts") or {}).get("flags") or {}
    return not (isinstance(flags, dict) and flags.get("volatile"))


def _decoded(entries: Sequence[Any]) -> list[ClusterMessage]:
    """The stream ``entries`` that can be read (a malformed one is skipped)."""
    found = []
    for entry in entries:
        try:
            found.append(streams.decode_entry(entry.identifier, entry.field_values))
        except WireError:
            continue
    return found


class StreamsRecovery:
    """Connection state recovery of one namespace, in Redis (see the module's text)."""

    def __init__(
        self,
        adapter: StreamsAdapter,
        window: float,
        *,
        refresh: float | None = None,
        prefix: str = streams.SESSION_PREFIX,
    ) -> None:
        self.adapter = adapter
        self.window = window
        #: Seconds between two writes of a connected socket's session (its ``data`` may
        #: have changed); its expiry while connected is ``window + refresh``.
        self.refresh = refresh if refresh is not None else max(1.0, min(30.0, window / 3))
        self.prefix = prefix
        #: sid -> (pid, where this node stood when the socket came)
        self._live: dict[str, tuple[str, tuple[StreamId, StreamId]]] = {}
        #: Restores refused, by reason (as RecoveryStore.misses), and done.
        self.misses: Counter[str] = Counter()
        self.restored = 0

    def _missed(self, reason: str) -> None:
        self.misses[reason] += 1
        self.adapter.stats["sessions_not_restored"] += 1

    @property
    def _log(self) -> StreamLog:
        return self.adapter.log

    # ---- Recovery ----------------------------------------------------------------------------
    def position(self) -> tuple[StreamId, StreamId]:
        return self._log.mark

    async def resume(self, pid: str, offset: str | None) -> Restored | None:
        wanted = None
        if offset is not None:
            wanted = parse_id(offset)
            if wanted is None:
                self._missed("offset")
                return None
        driver = self.adapter.driver
        key = streams.session_key(pid, self.prefix)
        try:
            raw = await driver.call(lambda client: client.getdel(key))
        except (ConnectionError, *CONNECTION_ERRORS):
            self._missed("unreachable")
            return None
        if raw is None:
            self._missed("unknown")
            return None
        try:
            stored = streams.decode_session(raw)
        except WireError:
            self._missed("unknown")
            return None
        try:
            restored = await self._read_missed(stored, wanted)
        except (ConnectionError, *CONNECTION_ERRORS):
            self._missed("unreachable")
            restored = None
        if restored is None:
            return None
        self.restored += 1
        self.adapter.stats["sessions_restored"] += 1
        return restored

    async def _read_missed(
        self, stored: StoredSession, offset: StreamId | None
    ) -> StreamRestored | None:
        had = await self._had(stored, offset)
        if had is None:
            self._missed("offset")
            return None
        nsp = self.adapter.nsp
        fetched: list[ClusterMessage] = []
        start = had.scan_from
        for _ in range(MAX_RESTORE_PAGES):
            page = await self._range(next_id(start), RESTORE_PAGE)
            for message in page:
                assert message.id is not None
                start = message.id
                if (
                    _replayable(message, nsp)
                    and not had.received(message)
                    and streams.should_include(stored.rooms, streams.selection_from(message.data))
                ):
                    fetched.append(message)
            if len(page) < RESTORE_PAGE:
                break
        else:
            self._missed("too_far")
            return None
        session = SavedSession(
            stored.sid, stored.pid, stored.rooms, stored.data, trio.current_time(), None
        )
        return StreamRestored(session, 0, had, fetched, start, stored)

    async def _had(self, stored: StoredSession, offset: StreamId | None) -> _Had | None:
        """What the client had, from its offset and its session; None if it cannot be told
        (the offset is no longer in the stream)."""
        if stored.node is None or stored.since is None:
            # a session of Node's adapter: everything after the offset
            if offset is None or not await self._range(offset, 1, end=offset):
                return None
            return _Had(None, offset)
        node, (read_then, wrote_then) = stored.node, stored.since
        arrived = _Had(node, read_then, own_upto=wrote_then)
        if offset is None:
            return arrived
        entry = await self._entry(offset, node)
        if entry is None:
            return await self._lost(offset, node, read_then)
        key = entry.key
        assert key is not None and entry.id is not None
        if entry.uid == node:
            if key <= wrote_then:
                return arrived  # told before it came to that node
            return _Had(node, entry.seen or read_then, own_upto=key)
        if entry.id <= read_then:
            return arrived
        return _Had(node, entry.id, seen_before=entry.id)

    async def _lost(self, offset: StreamId, node: str, read_then: StreamId) -> _Had | None:
        """What the client had when its offset is in no entry: one of ``node``'s own that
        never reached the stream (still queued when the node was killed, or dropped from a
        full queue). ``node`` delivered its own entries up to it, and the others' it had
        read when it made it: at least those its last entry in the stream before it had
        seen (or it had read when the socket came, ``read_then``). The others' it read
        between the two are not known: they are given back, so a few may come twice and
        none is lost. None if the stream no longer reaches back to the offset (trimmed)."""
        before = await self._back_from(offset, CID_SEARCH)
        if not before:
            return None  # no entry at or before it: the stream was trimmed past it
        seen = read_then
        for message in before:
            assert message.id is not None
            if message.id <= read_then:
                break
            if message.uid == node and message.seen is not None:
                seen = max(seen, message.seen)
                break
        self._log.stats["restores_from_lost_entries"] += 1
        return _Had(node, seen, own_upto=offset)

    async def _entry(self, offset: StreamId, node: str) -> ClusterMessage | None:
        """The entry whose writer told its clients ``offset``: its id, or its ``cid``."""
        found = await self._range(offset, 1, end=offset)
        if found:
            return found[0]
        for message in await self._range(next_id(offset), CID_SEARCH):
            if message.uid == node and message.cid == offset:
                return message
        return None

    async def _range(
        self, start: StreamId, count: int, *, end: StreamId | None = None
    ) -> list[ClusterMessage]:
        stream = self._log.stream
        first, last = format_id(start), format_id(end) if end is not None else "+"
        entries = await self.adapter.driver.call(
            lambda client: client.xrange(stream, first, last, count=count)
        )
        return _decoded(entries)

    async def _back_from(self, offset: StreamId, count: int) -> list[ClusterMessage]:
        """The ``count`` entries at or before ``offset``, newest first."""
        stream, last = self._log.stream, format_id(offset)
        entries = await self.adapter.driver.call(
            lambda client: client.xrevrange(stream, last, "-", count=count)
        )
        return _decoded(entries)

    def missed(self, restored: Restored) -> list[Wire]:
        assert isinstance(restored, StreamRestored)
        log_ = self._log
        me, nsp = log_.uid, self.adapter.nsp
        read_now = log_.read or (0, 0)
        rooms = restored.session.rooms
        had = restored.had
        if log_.forgotten > restored.scanned_to:
            # the entries read between the restore and now are no longer all here
            self.misses["gap"] += 1
            log.warning("restore of %s: the recent entries do not reach back far enough", nsp)
        # by the id its writer's clients were told, and the writer (two nodes may have
        # told theirs the same id: one of the entries was moved)
        chosen: dict[tuple[StreamId, str], ClusterMessage] = {}
        for message in restored.fetched:
            assert message.id is not None and message.key is not None
            # another node's entry not read yet here comes to the socket as it is read
            if message.uid != me and message.id > read_now:
                continue
            chosen[message.key, message.uid] = message
        for item in log_.recent(nsp):
            message = item.message
            key = message.key
            if key is None or (key, message.uid) in chosen:
                continue
            if not item.own and message.id is not None and message.id <= restored.scanned_to:
                continue  # the restore read it (and left it out)
            if (
                _replayable(message, nsp)
                and not had.received(message)
                and streams.should_include(rooms, streams.selection_from(message.data))
            ):
                chosen[key, message.uid] = message
        # in the stream's order, each with the id it has there: the client's last offset
        # is then the latest of what it got (a Node node replays everything after it). An
        # entry of ours still queued sorts by the id it chose.
        wires = []
        for message in sorted(chosen.values(), key=lambda m: (m.id, m.key)):
            try:
                packet = streams.packet_from(message.data, nsp)
            except WireError:
                continue
            assert message.id is not None
            packet = replace(packet, data=[*packet.data, format_id(message.id)])
            wires.append(Wire.messages(sio.encode(packet)))
        return wires

    def put_back(self, restored: Restored) -> None:
        assert isinstance(restored, StreamRestored)
        if restored.stored is not None:
            self._write(restored.stored, self.window)

    def attached(
        self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any
    ) -> None:
        self._live[sid] = (pid, self._log.mark)
        self.touch(sid)

    def save(self, sid: str, pid: str, rooms: set[str], data: dict[str, Any], base: Any) -> None:
        live = self._live.pop(sid, None)
        since = live[1] if live is not None else self._log.mark
        session = StoredSession(sid, pid, frozenset(rooms), data, self._log.uid, since)
        self._write(session, self.window)

    def forget(self, sid: str, pid: str) -> None:
        self._live.pop(sid, None)
        self.adapter.driver.store(streams.session_key(pid, self.prefix), None, expiry=1)

    def awaited(self, room: str) -> bool:
        return False  # what it missed is read back from the stream, wherever it was sent

    # ---- while connected -----------------------------------------------------------------------
    def touch(self, sid: str) -> None:
        """The socket ``sid`` changed (its rooms): write its session again."""
        live = self._live.get(sid)
        if live is None:
            return
        socket = self.adapter.emitter.socket(sid)
        if socket is None:
            return
        pid, since = live
        session = StoredSession(
            sid, pid, frozenset(socket.rooms), socket.data, self._log.uid, since
        )
        self._write(session, self.window + self.refresh)

    def refresh_all(self) -> None:
        for sid in list(self._live):
            self.touch(sid)

    def _write(self, session: StoredSession, expiry: float) -> None:
        key = streams.session_key(session.pid, self.prefix)
        try:
            value = streams.encode_session(session)
        except (TypeError, ValueError):
            # data that MessagePack cannot hold: keep what can be
            session = replace(session, data={})
            value = streams.encode_session(session)
        self.adapter.driver.store(key, value, expiry=expiry)

    @property
    def live_count(self) -> int:
        return len(self._live)


class StreamsAdapter:
    """One namespace's rooms here, and its part of the stream."""

    def __init__(
        self,
        emitter: SocketEmitter,
        recovery: RecoveryStore | None,
        *,
        log: StreamLog,
        prefix: str = streams.DEFAULT_PREFIX,
        request_timeout: float = 5.0,
        stats: Counter[str] | None = None,
        on_close: Callable[[StreamsAdapter], None] | None = None,
    ) -> None:
        self.local = LocalAdapter(emitter, None)
        self.emitter = emitter
        #: Told when :meth:`close` is called (the bridge forgets the adapter then).
        self.on_close = on_close
        self.nsp = emitter.name
        self.log = log
        self.driver = log.driver
        self.uid = log.uid
        self.request_timeout = request_timeout
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.public = f"{prefix}#{self.nsp}#"
        self.private = f"{prefix}#{self.nsp}#{self.uid}#"
        self._prefix = prefix
        self._pending: dict[str, PendingRequest | RemoteAcks] = {}
        self._recovery = (
            StreamsRecovery(self, recovery.max_disconnection_duration)
            if recovery is not None
            else None
        )
        log.adapters[self.nsp] = self
        self.driver.subscribe(self.public, self._on_message)
        self.driver.subscribe(self.private, self._on_message)
        self.driver.on_down(self._went_down)
        self._everyone = BroadcastOperator(
            Target(self.nsp, self, request_timeout, emitter.next_ack_id)
        )

    # ---- this node's rooms -------------------------------------------------------------------
    @property
    def recovery(self) -> StreamsRecovery | None:
        return self._recovery

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self.local.add_all(sid, rooms)
        if self._recovery is not None:
            self._recovery.touch(sid)

    def delete(self, sid: str, room: str) -> None:
        self.local.delete(sid, room)
        if self._recovery is not None:
            self._recovery.touch(sid)

    def delete_all(self, sid: str) -> None:
        self.local.delete_all(sid)

    def socket_rooms(self, sid: str) -> set[str]:
        return self.local.socket_rooms(sid)

    # ---- what this node does, told to the others ------------------------------------------------
    def _recoverable(self, packet: sio.Packet, opts: BroadcastOptions) -> bool:
        return (
            self._recovery is not None
            and packet.type is sio.PacketType.EVENT
            and packet.id is None
            and not opts.volatile
        )

    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        recoverable = self._recoverable(packet, opts)
        # a packet for sockets of this node only (a socket's own emit) is in the stream too,
        # so that another node can give it back; no other node has these sockets
        logged = not opts.local or (
            recoverable and bool(opts.rooms) and all(r in self.local.sids for r in opts.rooms)
        )
        if logged:
            data = streams.broadcast_data(packet, selection_of(opts))
            offset = self.log.append(self.nsp, MessageType.BROADCAST, data)
            if recoverable:
                packet = replace(packet, data=[*packet.data, format_id(offset)])
        return self.local.broadcast(packet, opts)

    def broadcast_with_ack(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> AckCollector:
        local = self.local.broadcast_with_ack(packet, opts, timeout)
        if opts.local or not self.driver.healthy:
            return ClusterAcks(local, None)
        request_id = secrets.token_hex(8)
        flags = selection_of(opts).flags | {"timeout": round(timeout * 1000)}
        selection = Selection(opts.rooms, opts.except_rooms, flags)
        collector = RemoteAcks()
        self._pending[request_id] = collector
        self.stats["requests_out"] += 1
        self._publish(MessageType.BROADCAST, streams.broadcast_data(packet, selection, request_id))

        async def count_then_forget() -> None:
            try:
                try:
                    collector.expect(await self._others())
                except CONNECTION_ERRORS:
                    collector.expect(0)
                with trio.move_on_after(timeout):
                    await collector.done.wait()
            finally:
                self._pending.pop(request_id, None)

        self.driver.spawn(count_then_forget)
        return ClusterAcks(local, collector)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketLike]:
        found = await self.local.fetch_sockets(opts)
        if opts.local:
            return found
        data = {"opts": selection_of(opts).to_wire(), "requestId": secrets.token_hex(8)}
        for answer in await self._ask(MessageType.FETCH_SOCKETS, data):
            for item in answer.get("sockets") or ():
                remote = remote_socket(item, self._everyone)
                if remote is not None:
                    found.append(remote)
        return found

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await self.local.add_sockets(opts, rooms)
        if not opts.local:
            data = {"opts": selection_of(opts).to_wire(), "rooms": rooms}
            self.log.append(self.nsp, MessageType.SOCKETS_JOIN, data)
        self._touch_selected(opts)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await self.local.del_sockets(opts, rooms)
        if not opts.local:
            data = {"opts": selection_of(opts).to_wire(), "rooms": rooms}
            self.log.append(self.nsp, MessageType.SOCKETS_LEAVE, data)
        self._touch_selected(opts)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        if not opts.local:
            data = {"opts": selection_of(opts).to_wire(), "close": close}
            self.log.append(self.nsp, MessageType.DISCONNECT_SOCKETS, data)
        await self.local.disconnect_sockets(opts, close)

    def server_side_emit(self, event: str, args: list[Any]) -> None:
        self._publish(MessageType.SERVER_SIDE_EMIT, {"packet": [event, *args]})

    async def server_side_emit_with_ack(
        self, event: str, args: list[Any], timeout: float
    ) -> list[Any]:
        data = {"requestId": secrets.token_hex(8), "packet": [event, *args]}
        answers = await self._ask(MessageType.SERVER_SIDE_EMIT, data, timeout)
        return [answer.get("packet") for answer in answers]

    def _touch_selected(self, opts: BroadcastOptions) -> None:
        if self._recovery is not None:
            for sid in list(self.local.selected(replace(opts, local=True))):
                self._recovery.touch(sid)

    # ---- pub/sub ---------------------------------------------------------------------------------
    def _publish(self, kind: MessageType, data: dict[str, Any]) -> None:
        body = streams.encode_message(ClusterMessage(self.uid, self.nsp, kind, data))
        self.driver.publish(self.public, body)

    def _respond(self, requester: str, kind: MessageType, data: dict[str, Any]) -> None:
        body = streams.encode_message(ClusterMessage(self.uid, self.nsp, kind, data))
        self.driver.publish(f"{self._prefix}#{self.nsp}#{requester}#", body)

    async def _others(self) -> int:
        """Nodes but this one: the subscribers of the namespace's public channel."""
        return await self.driver.node_count(self.public) - 1

    async def _ask(
        self, kind: MessageType, data: dict[str, Any], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        if not self.driver.healthy:
            return []
        try:
            others = await self._others()
        except CONNECTION_ERRORS:
            return []
        if others <= 0:
            return []
        request_id = str(data["requestId"])
        pending = self._pending[request_id] = PendingRequest(others)
        self.stats["requests_out"] += 1
        try:
            self._publish(kind, data)
            with trio.move_on_after(timeout if timeout is not None else self.request_timeout):
                await pending.done.wait()
            if len(pending.answers) < pending.expected:
                self.stats["request_timeouts"] += 1
                log.info(
                    "request %s (%s): %d of %d nodes answered",
                    request_id,
                    kind.name,
                    len(pending.answers),
                    pending.expected,
                )
            return list(pending.answers)
        finally:
            del self._pending[request_id]

    def _went_down(self) -> None:
        for pending in self._pending.values():
            pending.done.set()

    def close(self) -> None:
        """The namespace is gone: its channels are unsubscribed, its stream entries no
        longer read, what waits is ended."""
        self.driver.unsubscribe(self.public)
        self.driver.unsubscribe(self.private)
        self.driver.off_down(self._went_down)
        if self.log.adapters.get(self.nsp) is self:
            del self.log.adapters[self.nsp]
        self._went_down()
        self.local.close()
        if self.on_close is not None:
            self.on_close(self)

    # ---- what the others send ------------------------------------------------------------------
    def on_entry(self, message: ClusterMessage) -> None:
        """An entry of another node, read from the stream."""
        kind = message.type
        data = message.data
        try:
            if kind is MessageType.BROADCAST:
                packet = streams.packet_from(data, self.nsp)
                selection = streams.selection_from(data)
                opts = options_of(selection)
                if self._recoverable(packet, opts) and message.id is not None:
                    packet = replace(packet, data=[*packet.data, format_id(message.id)])
                self.stats["broadcasts_in"] += 1
                self.local.broadcast(packet, opts)
            elif kind in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE):
                self._rooms_changed(kind, data)
            elif kind is MessageType.DISCONNECT_SOCKETS:
                opts = options_of(streams.selection_from(data))
                sids = list(self.local.selected(opts))
                if sids:
                    self.driver.spawn(self.emitter.disconnect, sids, bool(data.get("close")))
        except WireError as exc:
            self.stats["bad_messages"] += 1
            log.debug("ignoring a malformed stream entry: %s", exc)

    def _rooms_changed(self, kind: MessageType, data: dict[str, Any]) -> None:
        rooms = data.get("rooms")
        if not isinstance(rooms, list):
            raise WireError("rooms is not an array")
        names = [r for r in rooms if isinstance(r, str)]
        local = self.local
        for sid in list(local.selected(options_of(streams.selection_from(data)))):
            if kind is MessageType.SOCKETS_JOIN:
                local.add_all(sid, names)
            else:
                for room in names:
                    local.delete(sid, room)
            if self._recovery is not None:
                self._recovery.touch(sid)

    def _on_message(self, channel: str, body: bytes) -> None:
        """A message over pub/sub: a request of another node, or an answer to ours."""
        try:
            message = streams.decode_message(body)
        except WireError as exc:
            self.stats["bad_messages"] += 1
            log.debug("ignoring a malformed message: %s", exc)
            return
        if message.uid == self.uid or message.nsp != self.nsp:
            return
        kind = message.type
        if kind in streams.RESPONSES:
            self._on_response(message)
            return
        self.stats["requests_in"] += 1
        try:
            if kind is MessageType.BROADCAST and "requestId" in message.data:
                self._broadcast_with_ack(message)
            elif kind is MessageType.FETCH_SOCKETS:
                self._fetch(message)
            elif kind is MessageType.SERVER_SIDE_EMIT:
                self._server_side_emit(message)
        except WireError as exc:
            self.stats["bad_messages"] += 1
            log.debug("ignoring a malformed request: %s", exc)

    def _on_response(self, message: ClusterMessage) -> None:
        data = message.data
        pending = self._pending.get(str(data.get("requestId")))
        if pending is None:
            return
        kind = message.type
        if isinstance(pending, RemoteAcks):
            if kind is MessageType.BROADCAST_CLIENT_COUNT:
                count = data.get("clientCount")
                pending.add({"type": RequestType.BROADCAST_CLIENT_COUNT, "clientCount": count})
            elif kind is MessageType.BROADCAST_ACK:
                pending.add({"type": RequestType.BROADCAST_ACK, "packet": data.get("packet")})
        elif kind in (MessageType.FETCH_SOCKETS_RESPONSE, MessageType.SERVER_SIDE_EMIT_RESPONSE):
            pending.add(data)

    def _fetch(self, message: ClusterMessage) -> None:
        opts = options_of(streams.selection_from(message.data))
        sockets = []
        for sid in self.local.selected(opts):
            socket = self.emitter.socket(sid)
            if socket is not None:
                sockets.append(describe(socket))
        data = {"requestId": message.data.get("requestId"), "sockets": sockets}
        self._respond(message.uid, MessageType.FETCH_SOCKETS_RESPONSE, data)

    def _server_side_emit(self, message: ClusterMessage) -> None:
        packet = message.data.get("packet")
        if not isinstance(packet, list) or not packet or not isinstance(packet[0], str):
            raise WireError("server-side emit without an event name")
        event, args = packet[0], packet[1:]
        request_id = message.data.get("requestId")
        reply: Callable[[Any], None] | None = None
        if request_id is not None:
            requester = message.uid
            answered = False

            def reply(value: Any) -> None:
                nonlocal answered
                if answered:
                    return  # one answer per node, as Node's
                answered = True
                data = {"requestId": request_id, "packet": value}
                self._respond(requester, MessageType.SERVER_SIDE_EMIT_RESPONSE, data)

        self.emitter.server_side(event, args, reply)

    def _broadcast_with_ack(self, message: ClusterMessage) -> None:
        data = message.data
        packet = streams.packet_from(data, self.nsp)
        if packet.type is not sio.PacketType.EVENT:
            return
        request_id = data.get("requestId")
        requester = message.uid
        selection = streams.selection_from(data)
        ack_id = self.emitter.next_ack_id()
        packet = sio.Packet(packet.type, packet.nsp, packet.data, ack_id)

        def answered(value: Any) -> None:
            body = {"requestId": request_id, "packet": value}
            self._respond(requester, MessageType.BROADCAST_ACK, body)

        reached = self.emitter.send_with_acks(
            self.local.selected(options_of(selection)),
            Wire.messages(sio.encode(packet)),
            ack_id,
            answered,
            _nothing,
        )
        count = {"requestId": request_id, "clientCount": len(reached)}
        self._respond(requester, MessageType.BROADCAST_CLIENT_COUNT, count)
        timeout = selection.flags.get("timeout")
        limit = timeout / 1000 if isinstance(timeout, int | float) else self.request_timeout

        async def forget() -> None:
            await trio.sleep(limit)
            self.emitter.forget_acks(reached, ack_id)

        self.driver.spawn(forget)


def _nothing() -> None:
    return None
