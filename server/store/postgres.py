"""The PostgreSQL store: for processes on several hosts that share one database.

Why this shape:
- No PostgreSQL driver for Trio is maintained (asyncpg and psycopg's async API run on
  asyncio), so this is psycopg 3's blocking API on worker threads, as the SQLite store does:
  every call runs through ``trio.to_thread.run_sync`` under one :class:`trio.CapacityLimiter`
  of ``max_threads``, and borrows a connection from a ``psycopg_pool`` pool of the same size
  (so no thread ever waits for a connection while holding one).
- Connections are in autocommit mode; an operation that writes several rows, or writes and
  reads back, runs in one transaction (``conn.transaction()``).
- The pool checks a connection that has been idle for a while before lending it: after a
  restart of PostgreSQL, the next call gets a fresh connection instead of the broken one.
  (Checking every loan cost a round trip per call: 25% of the throughput of
  ``bench/store.py``'s mix.)
- Times are ``timestamptz``, written from the same ISO 8601 strings (milliseconds, UTC) the
  SQLite store keeps, and read back in that format: both stores answer alike.
- Migrations run under an advisory lock (:func:`migrate`), so processes starting at once on
  one database apply each step once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import psycopg_pool
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
from server.store.migrations import PG_MIGRATIONS, SchemaTooNew
from server.store.timing import Latency

T = TypeVar("T")

#: The key of the advisory lock that migrations hold (any constant shared by every process).
MIGRATION_LOCK = 0x7472696F_68756231  # "triohub1"

_TASK_COLUMNS = (
    "id, project_id, title, description, status, assignee_id, created_by, created_at, "
    "updated_at, version, position"
)
_TASK_FIELDS = {"title", "description", "status", "assignee_id", "position"}
_MESSAGE_COLUMNS = "id, project_id, user_id, user_name, body, reply_to, created_at"
_NOTIFICATION_COLUMNS = "id, user_id, type, title, body, link, created_at, read_at"

#: Errors about what was asked (a constraint, a value the database refuses, such as a NUL
#: character in text), not about the database: they say nothing of its health.
_NOT_A_DATABASE_FAULT = (psycopg.IntegrityError, psycopg.DataError)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _project(row: Any) -> Project:
    id_, name, created_by, created_at = row
    return Project(id_, name, created_by, iso(created_at))


def _member(row: Any) -> Member:
    project_id, user_id, user_name, added_at = row
    return Member(project_id, user_id, user_name, iso(added_at))


def _task(row: Any) -> Task:
    id_, project_id, title, description, status, assignee_id, created_by, created, updated = row[:9]
    version, position = row[9:]
    return Task(
        id_,
        project_id,
        title,
        description,
        status,
        assignee_id,
        created_by,
        iso(created),
        iso(updated),
        version,
        float(position),
    )


def _message(row: Any) -> Message:
    id_, project_id, user_id, user_name, body, reply_to, created_at = row
    return Message(id_, project_id, user_id, user_name, body, reply_to, iso(created_at))


def _notification(row: Any) -> Notification:
    id_, user_id, type_, title, body, link, created_at, read_at = row
    return Notification(
        id_, user_id, type_, title, body, link, iso(created_at), read_at is not None
    )


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class PostgresStore(Store):
    #: How long a call waits for a connection when the pool has none to lend (PostgreSQL is
    #: unreachable and the pool is reconnecting); then it fails as a database error. With as
    #: many connections as threads, a call never waits for one otherwise.
    wait_timeout = 3.0
    #: A connection idle for longer is checked (one round trip) before it is lent: after a
    #: restart of PostgreSQL the next call gets a fresh one. A busy connection is not (the
    #: check would double the round trips of every call): if PostgreSQL restarts under
    #: load, each pooled connection fails one call, and the pool replaces it.
    check_after_idle = 2.0

    def __init__(self, url: str, *, max_threads: int = 4, connect_timeout: float = 10.0):
        self.url = url
        self.latency = Latency()
        self.health = Health()
        self.connect_timeout = connect_timeout
        self._limiter = trio.CapacityLimiter(max_threads)
        #: id(connection) -> when it was last given back (time.monotonic())
        self._returned: dict[int, float] = {}
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_threads,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            check=self._check,
            timeout=self.wait_timeout,
            open=False,
            name="store",
        )

    @classmethod
    async def open(
        cls, url: str, *, max_threads: int = 4, connect_timeout: float = 10.0
    ) -> PostgresStore:
        """Connect (waiting at most ``connect_timeout`` for the first connection) and
        migrate."""
        store = cls(url, max_threads=max_threads, connect_timeout=connect_timeout)

        def start() -> None:
            try:
                store._pool.open(wait=True, timeout=store.connect_timeout)
            except psycopg_pool.PoolTimeout as exc:
                store._pool.close()
                raise ConnectionError(f"PostgreSQL is not reachable at {safe_url(url)}") from exc

        await trio.to_thread.run_sync(start)
        try:
            await store._run("migrate", migrate)
        except BaseException:
            await store.aclose()
            raise
        return store

    # ---- plumbing ------------------------------------------------------------------------
    def _in_thread(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._pool.connection() as conn:
            try:
                return fn(conn)
            finally:
                self._returned[id(conn)] = time.monotonic()

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check before a loan (raises if the connection is broken)."""
        returned = self._returned.pop(id(conn), None)
        if returned is None or time.monotonic() - returned > self.check_after_idle:
            psycopg_pool.ConnectionPool.check_connection(conn)

    async def _run(
        self,
        op: str,
        fn: Callable[[psycopg.Connection[Any]], T],
        *,
        abandon_on_cancel: bool = False,
    ) -> T:
        start = time.perf_counter()
        try:
            return await trio.to_thread.run_sync(
                self._in_thread, fn, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel
            )
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            if not isinstance(exc, _NOT_A_DATABASE_FAULT):
                self.health.failed(exc)
            raise
        finally:
            self.latency.observe(op, time.perf_counter() - start)

    async def ping(self) -> None:
        # reads a table (SELECT 1 would not notice the schema gone); a caller that stops
        # waiting (/healthz's deadline) leaves the thread to finish on its own
        await self._run(
            "ping",
            lambda conn: conn.execute("SELECT version FROM schema_version").fetchone(),
            abandon_on_cancel=True,
        )

    async def aclose(self) -> None:
        # called once nothing else uses the store (after the root nursery has ended)
        await trio.to_thread.run_sync(self._pool.close)

    # ---- projects and members ------------------------------------------------------------
    async def create_project(self, name: str, created_by: str) -> Project:
        def run(conn: psycopg.Connection[Any]) -> Project:
            at = now_iso()
            row = conn.execute(
                "INSERT INTO projects (name, created_by, created_at) VALUES (%s, %s, %s) "
                "RETURNING id",
                (name, created_by, at),
            ).fetchone()
            assert row is not None
            return Project(row[0], name, created_by, at)

        return await self._run("create_project", run)

    async def get_project(self, project_id: int) -> Project | None:
        def run(conn: psycopg.Connection[Any]) -> Project | None:
            row = conn.execute(
                "SELECT id, name, created_by, created_at FROM projects WHERE id = %s",
                (project_id,),
            ).fetchone()
            return _project(row) if row else None

        return await self._run("get_project", run)

    async def list_projects(self, user_id: str | None = None) -> list[Project]:
        def run(conn: psycopg.Connection[Any]) -> list[Project]:
            if user_id is None:
                cur = conn.execute(
                    "SELECT id, name, created_by, created_at FROM projects ORDER BY id"
                )
            else:
                cur = conn.execute(
                    "SELECT p.id, p.name, p.created_by, p.created_at FROM projects p "
                    "JOIN members m ON m.project_id = p.id WHERE m.user_id = %s ORDER BY p.id",
                    (user_id,),
                )
            return [_project(row) for row in cur]

        return await self._run("list_projects", run)

    async def add_member(self, project_id: int, user_id: str, user_name: str) -> Member:
        def run(conn: psycopg.Connection[Any]) -> Member:
            row = conn.execute(
                "INSERT INTO members (project_id, user_id, user_name, added_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, user_id) "
                "DO UPDATE SET user_name = excluded.user_name "
                "RETURNING project_id, user_id, user_name, added_at",
                (project_id, user_id, user_name, now_iso()),
            ).fetchone()
            return _member(row)

        return await self._run("add_member", run)

    async def is_member(self, project_id: int, user_id: str) -> bool:
        def run(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                "SELECT 1 FROM members WHERE project_id = %s AND user_id = %s",
                (project_id, user_id),
            ).fetchone()
            return row is not None

        return await self._run("is_member", run)

    async def list_members(self, project_id: int) -> list[Member]:
        def run(conn: psycopg.Connection[Any]) -> list[Member]:
            cur = conn.execute(
                "SELECT project_id, user_id, user_name, added_at FROM members "
                "WHERE project_id = %s ORDER BY added_at, user_id",
                (project_id,),
            )
            return [_member(row) for row in cur]

        return await self._run("list_members", run)

    async def remove_member(self, project_id: int, user_id: str) -> bool:
        def run(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "DELETE FROM members WHERE project_id = %s AND user_id = %s",
                (project_id, user_id),
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
        def run(conn: psycopg.Connection[Any]) -> Task:
            at = now_iso()
            # last in the project: after every task there is (its column's last, then)
            row = conn.execute(
                "INSERT INTO tasks (project_id, title, description, status, assignee_id, "
                "created_by, created_at, updated_at, position) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "(SELECT COALESCE(MAX(position), 0) + 1 FROM tasks WHERE project_id = %s)) "
                f"RETURNING {_TASK_COLUMNS}",
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
            ).fetchone()
            return _task(row)

        return await self._run("create_task", run)

    async def get_task(self, task_id: int) -> Task | None:
        def run(conn: psycopg.Connection[Any]) -> Task | None:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = %s", (task_id,)
            ).fetchone()
            return _task(row) if row else None

        return await self._run("get_task", run)

    async def list_tasks(self, project_id: int) -> list[Task]:
        def run(conn: psycopg.Connection[Any]) -> list[Task]:
            cur = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE project_id = %s ORDER BY position, id",
                (project_id,),
            )
            return [_task(row) for row in cur]

        return await self._run("list_tasks", run)

    async def list_assigned_tasks(self, user_id: str) -> list[Task]:
        columns = ", ".join(f"t.{c.strip()}" for c in _TASK_COLUMNS.split(","))

        def run(conn: psycopg.Connection[Any]) -> list[Task]:
            cur = conn.execute(
                f"SELECT {columns} FROM tasks t JOIN members m "
                "ON m.project_id = t.project_id AND m.user_id = t.assignee_id "
                "WHERE t.assignee_id = %s ORDER BY t.id",
                (user_id,),
            )
            return [_task(row) for row in cur]

        return await self._run("list_assigned_tasks", run)

    async def update_task(
        self, task_id: int, changes: dict[str, Any], *, version: int | None = None
    ) -> Task | None:
        unknown = set(changes) - _TASK_FIELDS
        if unknown:
            raise ValueError(f"not task fields: {sorted(unknown)}")

        def run(conn: psycopg.Connection[Any]) -> Task | None:
            sets = "".join(f"{name} = %s, " for name in changes)  # names checked above
            only = " AND version = %s" if version is not None else ""
            row = conn.execute(
                f"UPDATE tasks SET {sets}version = version + 1, updated_at = %s "
                f"WHERE id = %s{only} RETURNING {_TASK_COLUMNS}",
                (*changes.values(), now_iso(), task_id, *(() if version is None else (version,))),
            ).fetchone()
            if row is None and version is not None:
                current = conn.execute(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = %s", (task_id,)
                ).fetchone()
                if current is not None:
                    raise VersionConflict(_task(current))
            return _task(row) if row else None

        return await self._run("update_task", run)

    async def delete_task(self, task_id: int) -> Task | None:
        def run(conn: psycopg.Connection[Any]) -> Task | None:
            row = conn.execute(
                f"DELETE FROM tasks WHERE id = %s RETURNING {_TASK_COLUMNS}", (task_id,)
            ).fetchone()
            return _task(row) if row else None

        return await self._run("delete_task", run)

    # ---- chat ----------------------------------------------------------------------------
    async def add_message(
        self, project_id: int, user_id: str, user_name: str, message: str, reply_to: int | None
    ) -> Message:
        def run(conn: psycopg.Connection[Any]) -> Message:
            at = now_iso()
            row = conn.execute(
                "INSERT INTO messages (project_id, user_id, user_name, body, reply_to, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (project_id, user_id, user_name, message, reply_to, at),
            ).fetchone()
            assert row is not None
            return Message(row[0], project_id, user_id, user_name, message, reply_to, at)

        return await self._run("add_message", run)

    async def get_message(self, message_id: int) -> Message | None:
        def run(conn: psycopg.Connection[Any]) -> Message | None:
            row = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s", (message_id,)
            ).fetchone()
            return _message(row) if row else None

        return await self._run("get_message", run)

    async def list_messages(
        self, project_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[Message]:
        def run(conn: psycopg.Connection[Any]) -> list[Message]:
            cur = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE project_id = %s AND id < %s "
                "ORDER BY id DESC LIMIT %s",
                (project_id, before if before is not None else 2**62, limit),
            )
            return [_message(row) for row in cur]

        return await self._run("list_messages", run)

    # ---- notifications -------------------------------------------------------------------
    async def add_notification(
        self, user_id: str, type: str, title: str, body: str, link: str
    ) -> Notification:
        def run(conn: psycopg.Connection[Any]) -> Notification:
            at = now_iso()
            row = conn.execute(
                "INSERT INTO notifications (user_id, type, title, body, link, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (user_id, type, title, body, link, at),
            ).fetchone()
            assert row is not None
            return Notification(row[0], user_id, type, title, body, link, at, False)

        return await self._run("add_notification", run)

    async def list_notifications(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        oldest_first: bool = False,
        limit: int = 100,
    ) -> list[Notification]:
        def run(conn: psycopg.Connection[Any]) -> list[Notification]:
            unread = " AND read_at IS NULL" if unread_only else ""
            order = "ASC" if oldest_first else "DESC"
            cur = conn.execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                f"WHERE user_id = %s{unread} ORDER BY id {order} LIMIT %s",
                (user_id, limit),
            )
            return [_notification(row) for row in cur]

        return await self._run("list_notifications", run)

    async def mark_notification_read(self, user_id: str, notification_id: int) -> bool:
        def run(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                # the row is the user's (then it is read, now or before) or not
                row = conn.execute(
                    "UPDATE notifications SET read_at = COALESCE(read_at, %s) "
                    "WHERE id = %s AND user_id = %s RETURNING id",
                    (now_iso(), notification_id, user_id),
                ).fetchone()
                if row is None:
                    return False
                conn.execute(
                    "DELETE FROM notification_deliveries WHERE notification_id = %s",
                    (notification_id,),
                )
                return True

        return await self._run("mark_notification_read", run)

    async def claim_deliveries(self, connection: str, notification_ids: list[int]) -> set[int]:
        def run(conn: psycopg.Connection[Any]) -> set[int]:
            # one statement: concurrent claims of one pair meet on the primary key, and
            # exactly one of them inserts it
            cur = conn.execute(
                "INSERT INTO notification_deliveries (connection, notification_id, "
                "delivered_at) SELECT %s, id, %s FROM notifications WHERE id = ANY(%s) "
                "ON CONFLICT DO NOTHING RETURNING notification_id",
                (connection, now_iso(), list(notification_ids)),
            )
            return {row[0] for row in cur}

        if not notification_ids:
            return set()
        return await self._run("claim_deliveries", run)

    async def release_deliveries(self, connection: str, notification_ids: list[int]) -> None:
        def run(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                "DELETE FROM notification_deliveries "
                "WHERE connection = %s AND notification_id = ANY(%s)",
                (connection, list(notification_ids)),
            )

        if notification_ids:
            await self._run("release_deliveries", run)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema up to date in one transaction, under an advisory lock that every
    process takes first (a second process starting at once waits, then finds it done);
    returns the version now in place."""
    target = len(PG_MIGRATIONS)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0
        else:
            version = int(row[0])
        if version > target:
            raise SchemaTooNew(
                f"the database is at schema version {version}; this server knows {target}"
            )
        for step in PG_MIGRATIONS[version:]:
            conn.execute(step)  # a step may hold several statements (simple query protocol)
        if version < target:
            conn.execute("UPDATE schema_version SET version = %s", (target,))
    return target


def safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an invalid URL)"
    info.pop("password", None)
    return " ".join(f"{key}={value}" for key, value in info.items())
