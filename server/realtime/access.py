"""Who may do what. The membership table decides; ``role: admin`` may do everything.

- an admin: create projects, add and remove members, and all a member may, in every project;
- a member of a project: join its room, chat, read its history, list its members, list,
  create, update and delete its tasks;
- anyone signed in: list the projects they belong to, read and mark their notifications.
"""

from __future__ import annotations

import trio

from server.realtime.auth import Identity
from server.store import Project, Store

NO_ACCESS = "No access to this project"
#: Seconds a membership seen in the store is taken as given without asking it again. A
#: removal is announced to every node, which forgets it at once (Realtime.membership_changed);
#: this bounds what an announcement lost with Redis could let through.
MEMBERSHIP_TTL = 30.0
#: Remembered memberships past which the expired ones are swept out.
_SWEEP_AT = 4096


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Access:
    """Decides with the store; remembers the memberships it has seen for ``ttl`` seconds, so
    that a burst of joins (everyone opening the board in the morning, a node's clients
    moving to another after a restart) costs one query per user, not one per join. Only
    memberships are remembered, never their absence: a user added a moment ago may join at
    once."""

    def __init__(self, store: Store, ttl: float = MEMBERSHIP_TTL) -> None:
        self.store = store
        self.ttl = ttl
        #: (project, user) -> when the store is to be asked again
        self._members: dict[tuple[int, str], float] = {}
        self._sweep_at = _SWEEP_AT
        #: membership_hits / membership_queries, for /metrics
        self.hits = 0
        self.queries = 0

    async def project(self, who: Identity, project_id: int) -> Project:
        """The project, if ``who`` may use it; raises :class:`NotFound` or :class:`Forbidden`."""
        project = await self.store.get_project(project_id)
        if project is None:
            raise NotFound("Project not found")
        if not who.is_admin and not await self.is_member(project_id, who.user_id):
            raise Forbidden(NO_ACCESS)
        return project

    async def may_join(self, who: Identity, project_id: int) -> bool:
        if who.is_admin:
            return await self.store.get_project(project_id) is not None
        return await self.is_member(project_id, who.user_id)

    async def is_member(self, project_id: int, user_id: str) -> bool:
        """Whether ``user_id`` is a member (so the project exists), remembered when so."""
        key = (project_id, user_id)
        now = trio.current_time()
        if self._members.get(key, 0.0) > now:
            self.hits += 1
            return True
        self.queries += 1
        member = await self.store.is_member(project_id, user_id)
        if member:
            self._remember(key, now + self.ttl)
        else:
            self._members.pop(key, None)
        return member

    def _remember(self, key: tuple[int, str], until: float) -> None:
        members = self._members
        members[key] = until
        if len(members) >= self._sweep_at:
            now = trio.current_time()
            for stale in [k for k, t in members.items() if t <= now]:
                del members[stale]
            self._sweep_at = max(_SWEEP_AT, 2 * len(members))

    def forget(self, project_id: int, user_id: str | None = None) -> None:
        """A membership changed (``user_id``'s, or anyone's in the project): ask the store
        again next time."""
        if user_id is not None:
            self._members.pop((project_id, user_id), None)
            return
        for key in [k for k in self._members if k[0] == project_id]:
            del self._members[key]

    @staticmethod
    def require_admin(who: Identity) -> None:
        if not who.is_admin:
            raise Forbidden("Only an admin may do this")
