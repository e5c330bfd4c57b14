"""The SQLite store: one database file in WAL mode, every call on a worker thread.

Why this shape:
- ``sqlite3`` blocks, so every call runs through ``trio.to_thread.run_sync`` with one
  :class:`trio.CapacityLimiter`: at most ``max_threads`` calls at once, the rest wait on the
  Trio side without holding a thread.
- Each worker call borrows a connection from a small pool (never more connections than the
  limiter allows), so no connection is used by two threads at once.
- WAL lets readers run beside the one writer; writes take ``BEGIN IMMEDIATE`` so two
  writers (two processes on one host, too) queue on SQLite's lock, for up to
  ``busy_timeout`` seconds, instead of failing half-way.
"""

from __future__ import annotations

import queue
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from server.store.base import (
    Member,
    Message,
    Notification,
    Project,
    Store,
    Task,
    VersionConflict,
    now_iso,
)
from server.store.health import Health
from server.store.migrations import migrate
from server.store.timing import Latency

T = TypeVar("T")

_TASK_COLUMNS = (
    "id, project_id, title, description, status, assignee_id, created_by, created_at, "
    "updated_at, version, position"
)
_TASK_FIELDS = {"title", "description", "status", "assignee_id", "position"}


#: Errors about what was asked, not about the database: they say nothing of its health.
_NOT_A_DATABASE_FAULT = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError)


def _task(row: Any) -> Task:
    return Task(*row)


def _message(row: Any) -> Message:
    return Message(*row)


def _notification(row: Any) -> Notification:
    id_, user_id, type_, title, body, link, created_at, read_at = row
    return Notification(id_, user_id, type_, title, body, link, created_at, read_at is not None)


class SQLiteStore(Store):
    def __init__(self, path: str | Path, *, max_threads: int = 4, busy_timeout: float = 10.0):
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.latency = Latency()
        self.health = Health()
        self._limiter = trio.CapacityLimiter(max_threads)
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []

    @classmethod
    async def open(cls, path: str | Path, *, max_threads: int = 4) -> SQLiteStore:
        """Create the file (and its folder) if needed, switch to WAL and migrate."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, max_threads=max_threads)
        await store._run("migrate", lambda conn: prepare_sqlite(conn, store.busy_timeout))
        return store

    # ---- plumbing ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._all.append(conn)
        return conn

    def _in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            return fn(conn)
        finally:
            if conn.in_transaction:  # an error left a transaction open
                conn.execute("ROLLBACK")
            self._pool.put(conn)

    async def _run(
        self, op: str, fn: Callable[[sqlite3.Connection], T], *, abandon_on_cancel: bool = False
    ) -> T:
        start = time.perf_counter()
        try:
            return await trio.to_thread.run_sync(
                self._in_thread, fn, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel
            )
        except sqlite3.DatabaseError as exc:
            if not isinstance(exc, _NOT_A_DATABASE_FAULT):
                self.health.failed(exc)
            raise
        finally:
            self.latency.observe(op, time.perf_counter() - start)

    async def ping(self) -> None:
        # reads the schema from the file (SELECT 1 would touch no page of it); a caller that
        # stops waiting (/healthz's deadline) leaves the thread to finish on its own
        await self._run(
            "ping",
            lambda conn: conn.execute("PRAGMA schema_version").fetchone(),
            abandon_on_cancel=True,
        )

    async def aclose(self) -> None:
        def close_all() -> None:
            for conn in self._all:
                conn.close()
            self._all.clear()

        # called once nothing else uses the store (after the root nursery has ended)
        await trio.to_thread.run_sync(close_all)

    # ---- projects and members ------------------------------------------------------------
    async def create_project(self, name: str, created_by: str) -> Project:
        def run(conn: sqlite3.Connection) -> Project:
            at = now_iso()
            cur = conn.execute(
                "INSERT INTO projects (name, created_by, created_at) VALUES (?, ?, ?)",
                (name, created_by, at),
            )
            assert cur.lastrowid is not None
            return Project(cur.lastrowid, name, created_by, at)

        return await self._run("create_project", run)

    async def get_project(self, project_id: int) -> Project | None:
        def run(conn: sqlite3.Connection) -> Project | None:
            row = conn.execute(
                "SELECT id, name, created_by, created_at FROM projects WHERE id = ?",
                (project_id,),
            ).fetchone()
            return Project(*row) if row else None

        return await self._run("get_project", run)

    async def list_projects(self, user_id: str | None = None) -> list[Project]:
        def run(conn: sqlite3.Connection) -> list[Project]:
            if user_id is None:
                rows = conn.execute(
                    "SELECT id, name, created_by, created_at FROM projects ORDER BY id"
                )
            else:
                rows = conn.execute(
                    "SELECT p.id, p.name, p.created_by, p.created_at FROM projects p "
                    "JOIN members m ON m.project_id = p.id WHERE m.user_id = ? ORDER BY p.id",
                    (user_id,),
                )
            return [Project(*row) for row in rows]

        return await self._run("list_projects", run)

    async def add_member(self, project_id: int, user_id: str, user_name: str) -> Member:
        def run(conn: sqlite3.Connection) -> Member:
            at = now_iso()
            conn.execute(
                "INSERT INTO members (project_id, user_id, user_name, added_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, user_id) "
                "DO UPDATE SET user_name = excluded.user_name",
                (project_id, user_id, user_name, at),
            )
            row = conn.execute(
                "SELECT project_id, user_id, user_name, added_at FROM members "
                "WHERE project_id = ? AND user_id = ?",
                (project_id, user_id),
            ).fetchone()
            return Member(*row)

        return await self._run("add_member", run)

    async def is_member(self, project_id: int, user_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM members WHERE project_id = ? AND user_id = ?",
                (project_id, user_id),
            ).fetchone()
            return row is not None

        return await self._run("is_member", run)

    async def list_members(self, project_id: int) -> list[Member]:
        def run(conn: sqlite3.Connection) -> list[Member]:
            rows = conn.execute(
                "SELECT project_id, user_id, user_name, added_at FROM members "
                "WHERE project_id = ? ORDER BY added_at, user_id",
                (project_id,),
            )
            return [Member(*row) for row in rows]

        return await self._run("list_members", run)

    async def remove_member(self, project_id: int, user_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM members WHERE project_id = ? AND user_id = ?", (project_id, user_id)
            )
            return cur.rowcount > 0

        return await self._run("remove_member", run)

    # ---- tasks ---------------------------------------------------------------------------
    async def create_task(
        self,
        project_id: int,
        title: str,
        *,
        description: str,
        status: str,
        assignee_id: str | None,
        created_by: str,
    ) -> Task:
        def run(conn: sqlite3.Connection) -> Task:
            at = now_iso()
            # last in the project: after every task there is (its column's last, then)
            cur = conn.execute(
                "INSERT INTO tasks (project_id, title, description, status, assignee_id, "
                "created_by, created_at, updated_at, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "(SELECT COALESCE(MAX(position), 0) + 1 FROM tasks WHERE project_id = ?))",
                (
                    project_id,
                    title,
                    description,
                    status,
                    assignee_id,
                    created_by,
                    at,
                    at,
                    project_id,
                ),
            )
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
            return _task(row)

        return await self._run("create_task", run)

    async def get_task(self, task_id: int) -> Task | None:
        def run(conn: sqlite3.Connection) -> Task | None:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
            return _task(row) if row else None

        return await self._run("get_task", run)

    async def list_tasks(self, project_id: int) -> list[Task]:
        def run(conn: sqlite3.Connection) -> list[Task]:
            rows = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE project_id = ? ORDER BY position, id",
                (project_id,),
            )
            return [_task(row) for row in rows]

        return await self._run("list_tasks", run)

    async def list_assigned_tasks(self, user_id: str) -> list[Task]:
        columns = ", ".join(f"t.{c.strip()}" for c in _TASK_COLUMNS.split(","))

        def run(conn: sqlite3.Connection) -> list[Task]:
            rows = conn.execute(
                f"SELECT {columns} FROM tasks t JOIN members m "
                "ON m.project_id = t.project_id AND m.user_id = t.assignee_id "
                "WHERE t.assignee_id = ? ORDER BY t.id",
                (user_id,),
            )
            return [_task(row) for row in rows]

        return await self._run("list_assigned_tasks", run)

    async def update_task(
        self, task_id: int, changes: dict[str, Any], *, version: int | None = None
    ) -> Task | None:
        unknown = set(changes) - _TASK_FIELDS
        if unknown:
            raise ValueError(f"not task fields: {sorted(unknown)}")

        def run(conn: sqlite3.Connection) -> Task | None:
            select = f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?"
            conn.execute("BEGIN IMMEDIATE")  # an error rolls back (_in_thread)
            if version is not None:
                current = conn.execute(select, (task_id,)).fetchone()
                if current is not None and current[9] != version:
                    raise VersionConflict(_task(current))
            sets = "".join(f"{name} = ?, " for name in changes)
            cur = conn.execute(
                f"UPDATE tasks SET {sets}version = version + 1, updated_at = ? WHERE id = ?",
                (*changes.values(), now_iso(), task_id),
            )
            row = conn.execute(select, (task_id,)).fetchone()
            conn.execute("COMMIT")
            return _task(row) if cur.rowcount and row else None

        return await self._run("update_task", run)

    async def delete_task(self, task_id: int) -> Task | None:
        def run(conn: sqlite3.Connection) -> Task | None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
            conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            conn.execute("COMMIT")
            return _task(row) if row else None

        return await self._run("delete_task", run)

    # ---- chat ----------------------------------------------------------------------------
    async def add_message(
        self, project_id: int, user_id: str, user_name: str, message: str, reply_to: int | None
    ) -> Message:
        def run(conn: sqlite3.Connection) -> Message:
            at = now_iso()
            cur = conn.execute(
                "INSERT INTO messages (project_id, user_id, user_name, body, reply_to, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (project_id, user_id, user_name, message, reply_to, at),
            )
            assert cur.lastrowid is not None
            return Message(cur.lastrowid, project_id, user_id, user_name, message, reply_to, at)

        return await self._run("add_message", run)

    async def get_message(self, message_id: int) -> Message | None:
        def run(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(
                "SELECT id, project_id, user_id, user_name, body, reply_to, created_at "
                "FROM messages WHERE id = ?",
                (message_id,),
            ).fetchone()
            return _message(row) if row else None

        return await self._run("get_message", run)

    async def list_messages(
        self, project_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                "SELECT id, project_id, user_id, user_name, body, reply_to, created_at "
                "FROM messages WHERE project_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (project_id, before if before is not None else 2**62, limit),
            )
            return [_message(row) for row in rows]

        return await self._run("list_messages", run)

    # ---- notifications -------------------------------------------------------------------
    async def add_notification(
        self, user_id: str, type: str, title: str, body: str, link: str
    ) -> Notification:
        def run(conn: sqlite3.Connection) -> Notification:
            at = now_iso()
            cur = conn.execute(
                "INSERT INTO notifications (user_id, type, title, body, link, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, type, title, body, link, at),
            )
            assert cur.lastrowid is not None
            return Notification(cur.lastrowid, user_id, type, title, body, link, at, False)

        return await self._run("add_notification", run)

    async def list_notifications(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        oldest_first: bool = False,
        limit: int = 100,
    ) -> list[Notification]:
        def run(conn: sqlite3.Connection) -> list[Notification]:
            unread = " AND read_at IS NULL" if unread_only else ""
            order = "ASC" if oldest_first else "DESC"
            rows = conn.execute(
                "SELECT id, user_id, type, title, body, link, created_at, read_at "
                f"FROM notifications WHERE user_id = ?{unread} ORDER BY id {order} LIMIT ?",
                (user_id, limit),
            )
            return [_notification(row) for row in rows]

        return await self._run("list_notifications", run)

    async def mark_notification_read(self, user_id: str, notification_id: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT read_at FROM notifications WHERE id = ? AND user_id = ?",
                (notification_id, user_id),
            ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return False
            conn.execute(
                "UPDATE notifications SET read_at = ? WHERE id = ? AND read_at IS NULL",
                (now_iso(), notification_id),
            )
            conn.execute(
                "DELETE FROM notification_deliveries WHERE notification_id = ?",
                (notification_id,),
            )
            conn.execute("COMMIT")
            return True

        return await self._run("mark_notification_read", run)

    async def claim_deliveries(self, connection: str, notification_ids: list[int]) -> set[int]:
        def run(conn: sqlite3.Connection) -> set[int]:
            claimed: set[int] = set()
            at = now_iso()
            conn.execute("BEGIN IMMEDIATE")
            for notification_id in dict.fromkeys(notification_ids):
                cur = conn.execute(
                    "INSERT INTO notification_deliveries (connection, notification_id, "
                    "delivered_at) SELECT ?, id, ? FROM notifications WHERE id = ? "
                    "ON CONFLICT DO NOTHING",
                    (connection, at, notification_id),
                )
                if cur.rowcount:
                    claimed.add(notification_id)
            conn.execute("COMMIT")
            return claimed

        if not notification_ids:
            return set()
        return await self._run("claim_deliveries", run)

    async def release_deliveries(self, connection: str, notification_ids: list[int]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM notification_deliveries WHERE connection = ? AND notification_id = ?",
                [(connection, n) for n in notification_ids],
            )

        if notification_ids:
            await self._run("release_deliveries", run)


def prepare_sqlite(conn: sqlite3.Connection, busy_timeout: float = 10.0) -> int:
    # Switching a fresh file to WAL takes an exclusive lock without waiting on the busy
    # handler, so a second process opening the same new file at the same moment gets
    # "database is locked" at once: retry it for as long as a busy wait would last.
    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    return migrate(conn)
