"""What the rest of the server may ask of persistence: a narrow, async interface.

Two stores implement it, SQLite (:mod:`.sqlite`) and PostgreSQL (:mod:`.postgres`); the
real-time features and the REST API do not know which one they use. Records are small frozen
dataclasses; their ``as_json`` gives the shape clients see (camelCase, ISO 8601 times).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.store.health import Health
from server.store.timing import Latency

#: The task statuses a board has columns for.
TASK_STATUSES = ("todo", "in_progress", "done")


def now_iso() -> str:
    """The current time as clients expect it: ISO 8601, UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    created_by: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Member:
    project_id: int
    user_id: str
    user_name: str
    added_at: str

    def as_json(self) -> dict[str, Any]:
        return {"userId": self.user_id, "userName": self.user_name, "addedAt": self.added_at}


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    project_id: int
    title: str
    description: str
    status: str
    assignee_id: str | None
    created_by: str
    created_at: str
    updated_at: str
    #: 1 when made, one more with every change: an update may name the version it was
    #: made from, and is refused if the task has changed since (:class:`VersionConflict`).
    version: int = 1
    #: Its place in its column on the board, lower first (ties: by id).
    position: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "projectId": self.project_id,
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "assigneeId": self.assignee_id,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "version": self.version,
            "position": self.position,
        }


class VersionConflict(Exception):
    """An update named a version of the task that is no longer its current one."""

    def __init__(self, current: Task) -> None:
        super().__init__(f"task {current.id} is at version {current.version}")
        self.current = current


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    project_id: int
    user_id: str
    user_name: str
    message: str
    reply_to: int | None
    timestamp: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "projectId": self.project_id,
            "userId": self.user_id,
            "userName": self.user_name,
            "message": self.message,
            "replyTo": self.reply_to,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    user_id: str
    type: str
    title: str
    body: str
    link: str
    timestamp: str
    read: bool

    def as_json(self) -> dict[str, Any]:
        """What the ``notification`` event carries (and REST, with ``read``)."""
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "timestamp": self.timestamp,
            "read": self.read,
        }


class Store(ABC):
    """Persistence for projects, members, tasks, chat messages and notifications.

    Every method is async and never blocks the Trio thread. Lookups return ``None`` for
    what does not exist; callers decide what that means (a 404, an ack error).
    """

    #: Time spent per operation, for /metrics.
    latency: Latency
    #: Database errors, for /healthz and /metrics.
    health: Health

    # ---- projects and members ------------------------------------------------------------
    @abstractmethod
    async def create_project(self, name: str, created_by: str) -> Project: ...

    @abstractmethod
    async def get_project(self, project_id: int) -> Project | None: ...

    @abstractmethod
    async def list_projects(self, user_id: str | None = None) -> list[Project]:
        """Every project (``user_id`` None), or those ``user_id`` is a member of."""

    @abstractmethod
    async def add_member(self, project_id: int, user_id: str, user_name: str) -> Member:
        """Add (or rename) a member; idempotent."""

    @abstractmethod
    async def is_member(self, project_id: int, user_id: str) -> bool: ...

    @abstractmethod
    async def list_members(self, project_id: int) -> list[Member]: ...

    @abstractmethod
    async def remove_member(self, project_id: int, user_id: str) -> bool:
        """Take ``user_id`` out of the project; False if they were not a member."""

    # ---- tasks ---------------------------------------------------------------------------
    @abstractmethod
    async def create_task(
        self,
        project_id: int,
        title: str,
        *,
        description: str,
        status: str,
        assignee_id: str | None,
        created_by: str,
    ) -> Task: ...

    @abstractmethod
    async def get_task(self, task_id: int) -> Task | None: ...

    @abstractmethod
    async def list_tasks(self, project_id: int) -> list[Task]:
        """The project's tasks in the board's order: by position, then id."""

    @abstractmethod
    async def list_assigned_tasks(self, user_id: str) -> list[Task]:
        """Tasks assigned to ``user_id``, in projects they are a member of, oldest first."""

    @abstractmethod
    async def update_task(
        self, task_id: int, changes: dict[str, Any], *, version: int | None = None
    ) -> Task | None:
        """Apply ``changes`` (keys: title, description, status, assignee_id, position) and
        count one more version; None if there is no such task. With ``version``, only if
        the task is still at that version: otherwise :class:`VersionConflict`, with the
        task as it is, and nothing changed."""

    @abstractmethod
    async def delete_task(self, task_id: int) -> Task | None:
        """Delete the task; the task as it was, or None if there was none."""

    # ---- chat ----------------------------------------------------------------------------
    @abstractmethod
    async def add_message(
        self, project_id: int, user_id: str, user_name: str, message: str, reply_to: int | None
    ) -> Message: ...

    @abstractmethod
    async def get_message(self, message_id: int) -> Message | None: ...

    @abstractmethod
    async def list_messages(
        self, project_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Newest first; ``before`` is a message id (exclusive), for paging back."""

    # ---- notifications -------------------------------------------------------------------
    @abstractmethod
    async def add_notification(
        self, user_id: str, type: str, title: str, body: str, link: str
    ) -> Notification: ...

    @abstractmethod
    async def list_notifications(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        oldest_first: bool = False,
        limit: int = 100,
    ) -> list[Notification]: ...

    @abstractmethod
    async def mark_notification_read(self, user_id: str, notification_id: int) -> bool:
        """Mark one of ``user_id``'s notifications read; False if it is not theirs. Its
        delivery records go (a read notification is never sent again)."""

    @abstractmethod
    async def claim_deliveries(self, connection: str, notification_ids: list[int]) -> set[int]:
        """Record that ``connection`` is being sent these notifications; returns those no
        one had claimed for it before (each pair is claimed once, whichever process asks
        first). Ids of notifications that no longer exist are not claimed."""

    @abstractmethod
    async def release_deliveries(self, connection: str, notification_ids: list[int]) -> None:
        """Undo claims of ``connection`` that were not sent after all (it closed meanwhile)."""

    # ---- lifetime ------------------------------------------------------------------------
    @abstractmethod
    async def ping(self) -> None:
        """Read something from the database; raises if it cannot (see :mod:`.health`).
        Unlike the other calls it may be cancelled while the database is slow to answer."""

    @abstractmethod
    async def aclose(self) -> None: ...
