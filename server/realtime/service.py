"""The project tool's real-time features, registered on a :class:`~server.hub.Hub`.

Rooms are ``user:<userId>`` (every socket joins its user's room on connect) and
``project:<projectId>`` (joined with ``joinProject``). Every event handler answers the
client's ack with ``{ok: true, ...}`` or ``{ok: false, error}``; a malformed payload is an
error answer, never a dropped connection.

Presence is per user: ``userJoined`` goes to a project room when a user's first socket joins
it, ``userLeft`` when their last one leaves it or disconnects. A second tab is no arrival.

Every event a client sends is rate-limited per user (all their tabs together) and per event
(:data:`DEFAULT_RATE_LIMITS`): over the limit the event is refused, answered
``{ok: false, error: "Rate limit exceeded"}`` when it asked for an ack, and a user who keeps
flooding is disconnected. A connection that resumes (connection state recovery) is
authenticated again, like a new one: a token that expired meanwhile is refused as usual, and
a token of another user gets a new socket instead of the old one's rooms.

Presence heals when a node dies. Each node keeps who is in each project room cluster-wide
(its own arrivals and departures, and the other nodes', told as the server-side event
``presence``); when the cluster loses a node (and every ``presence_heal_interval`` seconds
anyway) it asks the cluster again, and each user who is gone without a word gets a
``userLeft`` sent to this node's own sockets of that room: every surviving node tells its
own, so each client hears it once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any

import trio

from server.hub import (
    ConnectRefused,
    Hub,
    Rate,
    RateLimiter,
    RecoveryDeclined,
    Socket,
    SocketLike,
)
from server.realtime import payloads as p
from server.realtime import wording
from server.realtime.access import NO_ACCESS, Access
from server.realtime.auth import TOKEN_INVALID, TOKEN_MISSING, Identity, InvalidToken, TokenVerifier
from server.realtime.notifier import Notifier, user_room
from server.store import Member, Project, Store, Task, now_iso

log = logging.getLogger("realtime")

Answer = dict[str, Any]

#: The names of the REST API's limits among the rate limits (the others are events').
REST_WRITE = "rest.write"
REST_READ = "rest.read"

#: Per user and event: what a chat needs (a message every 200 ms on average, bursts of 20),
#: looser for what the page sends as the pointer moves (20 a second per tab) or as the user
#: types, and a limit on everything else (``*``).
DEFAULT_RATE_LIMITS: dict[str, Rate] = {
    "chatMessage": Rate(per_second=5, burst=20),
    "typing": Rate(per_second=10, burst=20),
    "cursorMove": Rate(per_second=60, burst=120),
    "*": Rate(per_second=20, burst=50),
    # the REST API, per user: what writes (POST, PUT) and what reads
    REST_WRITE: Rate(per_second=10, burst=30),
    REST_READ: Rate(per_second=50, burst=100),
}
#: Refusals in a burst (sustained above a tenth of it a second) before a user's socket is
#: disconnected as a flood.
DEFAULT_FLOOD_DISCONNECT = 100


def project_room(project_id: int) -> str:
    return f"project:{project_id}"


def _user_of(socket: Socket) -> Any:
    """Whose budget an event is counted in: the user's, across all their tabs."""
    return socket.data.get("userId", socket.id)


def identity(socket: SocketLike) -> Identity:
    """Who a socket is (set by the authentication middleware)."""
    data = socket.data
    return Identity(data["userId"], data["userName"], data["role"])


def _answers(
    fn: Callable[..., Awaitable[Answer | None]],
) -> Callable[..., Awaitable[Answer | None]]:
    """Turn :class:`~server.realtime.payloads.Invalid` into ``{ok: false, error}`` and any
    other failure into a logged, counted ``Internal error`` answer."""

    @wraps(fn)
    async def handler(self: Realtime, socket: Socket, *args: Any) -> Answer | None:
        try:
            return await fn(self, socket, *args)
        except p.Invalid as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("%s failed for socket %s", fn.__name__, socket.id)
            return {"ok": False, "error": "Internal error"}

    return handler


class Realtime:
    """Owns the hub's handlers for the project tool, and what they need to remember."""

    def __init__(
        self,
        hub: Hub,
        store: Store,
        verifier: TokenVerifier,
        *,
        rate_limits: Mapping[str, Rate] | None = DEFAULT_RATE_LIMITS,
        flood_disconnect: int = DEFAULT_FLOOD_DISCONNECT,
    ) -> None:
        self.hub = hub
        self.store = store
        self.verifier = verifier
        limits = dict(rate_limits or {})
        rest = {name: limits.pop(name) for name in (REST_WRITE, REST_READ) if name in limits}
        default = limits.pop("*", None)
        #: Events, per user; None when no event has a limit.
        self.limiter: RateLimiter | None = None
        if limits or default is not None:
            self.limiter = RateLimiter(
                limits, default=default, key=_user_of, disconnect_after=flood_disconnect
            )
        #: The REST API's requests, per user (``rest.write``, ``rest.read``); None without.
        self.rest_limiter = RateLimiter(rest, disconnect_after=0) if rest else None
        self.access = Access(store)
        self.notifier = Notifier(hub, store)
        #: This process's sockets per project room: project id -> {socket id: user id}.
        self.rooms: dict[int, dict[str, str]] = {}
        #: The project rooms each socket of this process is in (its disconnect handler runs
        #: after the hub has taken it out of every room).
        self.joined: dict[str, set[int]] = {}
        #: Who is in each project room, cluster-wide, as last known: userId -> userName.
        self.presence: dict[int, dict[str, str]] = {}
        self._heal_now = trio.Event()
        #: messages, handler_errors, auth_refused ... for /metrics.
        self.stats: Counter[str] = Counter()

    def install(self) -> Realtime:
        hub = self.hub
        hub.use(self.authenticate)
        if self.limiter is not None:
            hub.use_incoming(self.limiter)
        hub.on("connect", self.on_connect)
        hub.on("disconnect", self.on_disconnect)
        hub.on("joinProject", self.join_project)
        hub.on("leaveProject", self.leave_project)
        hub.on("chatMessage", self.chat_message)
        hub.on("typing", self.typing)
        hub.on("cursorMove", self.cursor_move)
        hub.on("notificationRead", self.notification_read)
        hub.on_server_side("presence", self._presence_elsewhere)
        hub.on_server_side("membership", self._membership_elsewhere)
        self.notifier.install()
        return self

    # ---- connecting ----------------------------------------------------------------------
    def authenticate(self, socket: Socket) -> None:
        auth = socket.handshake.auth
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            self.stats["auth_refused"] += 1
            raise ConnectRefused(TOKEN_MISSING)
        try:
            who = self.verifier.verify(token)
        except InvalidToken as exc:
            self.stats["auth_refused"] += 1
            log.info("connection refused: %s", exc)
            raise ConnectRefused(TOKEN_INVALID) from None
        if socket.recovered and socket.data.get("userId") != who.user_id:
            # the resumed session was another user's: this one starts afresh
            self.stats["recoveries_declined"] += 1
            raise RecoveryDeclined
        socket.data.update(userId=who.user_id, userName=who.user_name, role=who.role)

    async def on_connect(self, socket: Socket) -> None:
        who = identity(socket)
        # a recovered socket got back what was sent to it while it was away; this sends
        # what was created meanwhile and sent to no connection of its (claims: once)
        await self.notifier.welcome(socket, who.user_id)
        if not socket.recovered:
            return
        # Connection state recovery gave the socket back its rooms: presence needs telling
        # again.
        for room in socket.rooms:
            kind, _, number = room.partition(":")
            if kind == "project" and number.isdigit():
                await self._arrive(socket, who, int(number))

    async def on_disconnect(self, socket: Socket, reason: str) -> None:
        who = identity(socket)
        for project_id in sorted(self.joined.get(socket.id, ())):
            self._forget(socket, project_id)
            await self._announce_leaving(who, project_id)
        self.joined.pop(socket.id, None)

    # ---- project rooms -------------------------------------------------------------------
    @_answers
    async def join_project(self, socket: Socket, *args: Any) -> Answer:
        project_id = p.ident(args[0] if args else None, "projectId")
        who = identity(socket)
        if not await self.access.may_join(who, project_id):
            socket.emit("error", {"message": NO_ACCESS, "projectId": project_id})
            return {"ok": False, "error": NO_ACCESS}
        if not socket.connected:
            return {"ok": False, "error": "Disconnected"}
        room = project_room(project_id)
        if room not in socket.rooms:
            socket.join(room)
            online = await self._arrive(socket, who, project_id)
        else:
            online = await self.online(project_id)
        members = [{"userId": uid, "userName": name} for uid, name in online.items()]
        members.sort(key=lambda m: (m["userName"], m["userId"]))
        # also as an event, for clients that do not ask for acks
        socket.emit("onlineMembers", {"projectId": project_id, "members": members})
        return {"ok": True, "onlineMembers": members}

    async def online(self, project_id: int) -> dict[str, str]:
        """userId -> userName of every socket in the room, cluster-wide."""
        online: dict[str, str] = {}
        for other in await self.hub.to(project_room(project_id)).fetch_sockets():
            user_id = other.data.get("userId")
            if user_id is not None:
                online.setdefault(user_id, other.data.get("userName", user_id))
        return online

    async def _arrive(self, socket: Socket, who: Identity, project_id: int) -> dict[str, str]:
        """Record that ``socket`` is in the room; ``userJoined`` if it is the user's first."""
        self.joined.setdefault(socket.id, set()).add(project_id)
        self.rooms.setdefault(project_id, {})[socket.id] = who.user_id
        room = project_room(project_id)
        online: dict[str, str] = {}
        first = True
        for other in await self.hub.to(room).fetch_sockets():
            user_id = other.data.get("userId")
            if user_id is None:
                continue
            online.setdefault(user_id, other.data.get("userName", user_id))
            if user_id == who.user_id and other.id != socket.id:
                first = False
        self.presence[project_id] = dict(online)
        if first:
            socket.to(room).emit("userJoined", self._presence(who, project_id))
            self.hub.server_side_emit("presence", project_id, who.user_id, who.user_name, True)
        return online

    @_answers
    async def leave_project(self, socket: Socket, *args: Any) -> Answer:
        project_id = p.ident(args[0] if args else None, "projectId")
        if project_room(project_id) not in socket.rooms:
            return {"ok": True}
        socket.leave(project_room(project_id))
        self._forget(socket, project_id)
        await self._announce_leaving(identity(socket), project_id)
        return {"ok": True}

    def _forget(self, socket: Socket, project_id: int) -> None:
        self.joined.get(socket.id, set()).discard(project_id)
        here = self.rooms.get(project_id)
        if here is not None:
            here.pop(socket.id, None)
            if not here:
                del self.rooms[project_id]

    async def _announce_leaving(self, who: Identity, project_id: int) -> None:
        room = project_room(project_id)
        for other in await self.hub.to(room).fetch_sockets():
            if other.data.get("userId") == who.user_id:
                return  # another tab of theirs is still there
        self._left(project_id, who.user_id)
        self.hub.to(room).emit("userLeft", self._presence(who, project_id))
        self.hub.server_side_emit("presence", project_id, who.user_id, who.user_name, False)

    def _left(self, project_id: int, user_id: str) -> None:
        here = self.presence.get(project_id)
        if here is not None:
            here.pop(user_id, None)
            if not here:
                del self.presence[project_id]

    def _presence_elsewhere(
        self, project_id: Any, user_id: Any, user_name: Any, present: Any
    ) -> None:
        """Another node told of an arrival or a departure (it told its clients itself)."""
        if not isinstance(project_id, int) or not isinstance(user_id, str):
            return
        if present:
            self.presence.setdefault(project_id, {})[user_id] = str(user_name)
        else:
            self._left(project_id, user_id)

    # ---- memberships --------------------------------------------------------------------
    def membership_changed(self, project_id: int, user_id: str | None = None) -> None:
        """A membership was taken away (``user_id``'s, or anyone's in the project): every
        node forgets what it remembered of it (Access) and takes that user's sockets out of
        the project room, this one at once, the others when the announcement reaches
        them."""
        self._membership_lost(project_id, user_id)
        self.hub.server_side_emit("membership", project_id, user_id)

    def _membership_elsewhere(self, project_id: Any, user_id: Any = None) -> None:
        if isinstance(project_id, int) and (user_id is None or isinstance(user_id, str)):
            self._membership_lost(project_id, user_id)

    def _membership_lost(self, project_id: int, user_id: str | None) -> None:
        self.access.forget(project_id, user_id)
        if user_id is None:
            return
        self._left(project_id, user_id)
        here = self.rooms.get(project_id, {})
        for sid in [sid for sid, uid in here.items() if uid == user_id]:
            socket = self.hub.main.sockets.get(sid)
            if socket is not None:
                socket.leave(project_room(project_id))
                self._forget(socket, project_id)

    # ---- presence that heals -------------------------------------------------------------
    def nodes_lost(self) -> None:
        """The cluster has fewer nodes than a moment ago: heal presence now."""
        self._heal_now.set()

    async def heal_presence(self) -> int:
        """Ask the cluster who is in each project room this node has sockets in; a user
        gone without a word (their node died) gets ``userLeft``, sent to this node's own
        sockets of the room. Returns how many were told of."""
        told = 0
        for project_id in sorted(self.rooms):
            now = await self.online(project_id)
            before = self.presence.get(project_id, {})
            room = project_room(project_id)
            for user_id in sorted(set(before) - set(now)):
                who = Identity(user_id, before[user_id], "member")
                self.hub.to(room).local.emit("userLeft", self._presence(who, project_id))
                told += 1
            if now:
                self.presence[project_id] = now
            else:
                self.presence.pop(project_id, None)
        if told:
            self.stats["presence_healed"] += told
            log.info("presence healed: %d users gone with their node", told)
        return told

    async def run_presence_healer(
        self,
        interval: float = 30.0,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Heal presence every ``interval`` seconds, and at once when a node is lost."""
        task_status.started()
        while True:
            with trio.move_on_after(interval):
                await self._heal_now.wait()
            self._heal_now = trio.Event()
            try:
                await self.heal_presence()
            except Exception:
                self.stats["handler_errors"] += 1
                log.exception("healing presence failed")

    @staticmethod
    def _presence(who: Identity, project_id: int) -> dict[str, Any]:
        return {"userId": who.user_id, "userName": who.user_name, "projectId": project_id}

    def _joined(self, socket: Socket, project_id: int) -> None:
        if project_room(project_id) not in socket.rooms:
            raise p.Invalid("Join the project first")

    # ---- chat, typing, cursors -----------------------------------------------------------
    @_answers
    async def chat_message(self, socket: Socket, *args: Any) -> Answer:
        body = p.obj(args[0] if args else None)
        project_id = p.ident(body.get("projectId"), "projectId")
        message = p.text(body.get("message"), "message", p.MAX_MESSAGE)
        reply_to = p.optional_ident(body.get("replyTo"), "replyTo")
        self._joined(socket, project_id)
        if reply_to is not None:
            original = await self.store.get_message(reply_to)
            if original is None or original.project_id != project_id:
                raise p.Invalid("replyTo: no such message in this project")
        who = identity(socket)
        saved = await self.store.add_message(
            project_id, who.user_id, who.user_name, message, reply_to
        )
        self.stats["messages"] += 1
        members = await self.store.list_members(project_id) if "@" in message else []
        mentions = wording.mentioned(message, members)
        self.hub.to(project_room(project_id)).emit(
            "newMessage", {**saved.as_json(), "mentions": mentions}
        )
        for user_id in mentions:
            if user_id != who.user_id:
                await self.notifier.notify(
                    user_id,
                    "mention",
                    f"{who.user_name} mentioned you",
                    wording.mention_body(message),
                    f"/projects/{project_id}/messages/{saved.id}",
                )
        return {"ok": True, "id": saved.id}

    @_answers
    async def typing(self, socket: Socket, *args: Any) -> Answer:
        body = p.obj(args[0] if args else None)
        project_id = p.ident(body.get("projectId"), "projectId")
        is_typing = p.flag(body.get("isTyping"), "isTyping")
        self._joined(socket, project_id)
        who = identity(socket)
        socket.to(project_room(project_id)).volatile.emit(
            "userTyping",
            {
                "userId": who.user_id,
                "userName": who.user_name,
                "projectId": project_id,
                "isTyping": is_typing,
            },
        )
        return {"ok": True}

    @_answers
    async def cursor_move(self, socket: Socket, *args: Any) -> Answer:
        body = p.obj(args[0] if args else None)
        project_id = p.ident(body.get("projectId"), "projectId")
        task_id = p.task_ref(body.get("taskId"))
        position = p.position(body.get("position"))
        self._joined(socket, project_id)
        who = identity(socket)
        socket.to(project_room(project_id)).volatile.emit(
            "cursorUpdate",
            {
                "userId": who.user_id,
                "userName": who.user_name,
                "projectId": project_id,
                "taskId": task_id,
                "position": position,
            },
        )
        return {"ok": True}

    # ---- notifications -------------------------------------------------------------------
    @_answers
    async def notification_read(self, socket: Socket, *args: Any) -> Answer:
        notification_id = p.ident(args[0] if args else None, "id")
        if await self.store.mark_notification_read(identity(socket).user_id, notification_id):
            return {"ok": True}
        return {"ok": False, "error": "Notification not found"}

    # ---- called by the REST API ----------------------------------------------------------
    def task_created(self, task: Task) -> None:
        """``taskCreated`` (the task, ``createdBy`` in it) to the project room."""
        self.hub.to(project_room(task.project_id)).emit("taskCreated", task.as_json())

    async def task_updated(
        self, task: Task, changes: dict[str, Any], by: Identity, *, before: Task | None = None
    ) -> None:
        """``taskUpdated`` to the project room; a notification for an assignee who is not
        the one who made the change (stored, so it waits for them if they are offline),
        saying what changed (``before`` is the task as it was)."""
        self.hub.to(project_room(task.project_id)).emit(
            "taskUpdated",
            {
                "taskId": task.id,
                "projectId": task.project_id,
                "changes": changes,
                "task": task.as_json(),
                "updatedBy": {"userId": by.user_id, "userName": by.user_name},
                "timestamp": task.updated_at,
            },
        )
        if task.assignee_id is None or task.assignee_id == by.user_id:
            return
        said = wording.task_changed(by.user_name, before or task, task, changes)
        if said is not None:
            kind, title = said
            await self._notify_task(task, kind, title)

    async def task_assigned(self, task: Task, by: Identity) -> None:
        if task.assignee_id is not None and task.assignee_id != by.user_id:
            said = wording.task_assigned(by.user_name, task)
            await self._notify_task(task, "task_assigned", said)

    async def _notify_task(self, task: Task, kind: str, title: str) -> None:
        """The assignee's notification: ``title`` says what happened, the body where."""
        assert task.assignee_id is not None
        project = await self.store.get_project(task.project_id)
        body = project.name if project is not None else ""
        link = f"/projects/{task.project_id}/tasks/{task.id}"
        await self.notifier.notify(task.assignee_id, kind, title, body, link)

    def task_deleted(self, task: Task, by: Identity) -> None:
        """``taskDeleted`` to the project room."""
        self.hub.to(project_room(task.project_id)).emit(
            "taskDeleted",
            {
                "taskId": task.id,
                "projectId": task.project_id,
                "deletedBy": {"userId": by.user_id, "userName": by.user_name},
            },
        )

    def project_added(self, project: Project, user_id: str) -> None:
        """``projectAdded`` to every tab of ``user_id``, now a member of ``project``."""
        self.hub.to(user_room(user_id)).emit("projectAdded", {"project": project.as_json()})

    def member_added(self, project: Project, member: Member) -> None:
        """``memberAdded`` to the project room, and ``projectAdded`` to the new member."""
        self.hub.to(project_room(project.id)).emit(
            "memberAdded",
            {"projectId": project.id, "userId": member.user_id, "userName": member.user_name},
        )
        self.project_added(project, member.user_id)

    async def member_removed(self, project_id: int, user_id: str) -> None:
        """``user_id`` is no longer a member: every node forgets the membership and takes
        that user's sockets out of the room (see :meth:`membership_changed`); the room gets
        ``memberRemoved`` (and ``userLeft``, if they were there), the user ``projectRemoved``.
        """
        name = self.presence.get(project_id, {}).get(user_id)
        self.membership_changed(project_id, user_id)
        room = project_room(project_id)
        self.hub.to(room).emit("memberRemoved", {"projectId": project_id, "userId": user_id})
        self.hub.to(user_room(user_id)).emit("projectRemoved", {"projectId": project_id})
        if name is not None:
            who = Identity(user_id, name, "member")
            self.hub.to(room).emit("userLeft", self._presence(who, project_id))
            self.hub.server_side_emit("presence", project_id, user_id, name, False)

    def check_rest(self, who: Identity, method: str) -> None:
        """A REST request of ``who``: raises :class:`~server.hub.EventRefused` past the
        user's limit (``rest.write`` for POST, PUT and DELETE, ``rest.read`` for the rest)."""
        if self.rest_limiter is not None:
            kind = REST_READ if method in ("GET", "HEAD", "OPTIONS") else REST_WRITE
            self.rest_limiter.check(who.user_id, kind)

    # ---- monitoring ----------------------------------------------------------------------
    def room_users(self) -> dict[int, int]:
        """Users (not sockets) per project room, in this process."""
        return {pid: len(set(sockets.values())) for pid, sockets in sorted(self.rooms.items())}


__all__ = ["Realtime", "identity", "now_iso", "project_room"]
