"""Who may do what. The membership table decides; ``role: admin`` may do everything.

- an admin: create projects, add members, and all a member may, in every project;
- a member of a project: join its room, chat, read its history, list its members, list,
  create and update its tasks;
- anyone signed in: list the projects they belong to, read and mark their notifications.
"""

from __future__ import annotations

from server.realtime.auth import Identity
from server.store import Project, Store

NO_ACCESS = "No access to this project"


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Access:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def project(self, who: Identity, project_id: int) -> Project:
        """The project, if ``who`` may use it; raises :class:`NotFound` or :class:`Forbidden`."""
        project = await self.store.get_project(project_id)
        if project is None:
            raise NotFound("Project not found")
        if not who.is_admin and not await self.store.is_member(project_id, who.user_id):
            raise Forbidden(NO_ACCESS)
        return project

    async def may_join(self, who: Identity, project_id: int) -> bool:
        try:
            await self.project(who, project_id)
        except (NotFound, Forbidden):
            return False
        return True

    @staticmethod
    def require_admin(who: Identity) -> None:
        if not who.is_admin:
            raise Forbidden("Only an admin may do this")
