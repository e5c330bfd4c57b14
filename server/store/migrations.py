"""The schema, as a versioned list of migrations.

``PRAGMA user_version`` holds how many have been applied. Each migration runs in its own
``BEGIN IMMEDIATE`` transaction that re-reads the version first, so two processes starting
on one database file at the same moment apply each migration once. Add new steps at the
end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: projects, members, tasks, chat, notifications
    """
    CREATE TABLE projects (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE members (
        project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL,
        user_name   TEXT NOT NULL,
        added_at    TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members (user_id, project_id);
    CREATE TABLE tasks (
        id          INTEGER PRIMARY KEY,
        project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        title       TEXT NOT NULL,
        status      TEXT NOT NULL,
        assignee_id TEXT,
        created_by  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX tasks_by_project ON tasks (project_id, id);
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL,
        user_name   TEXT NOT NULL,
        body        TEXT NOT NULL,
        reply_to    INTEGER REFERENCES messages(id),
        created_at  TEXT NOT NULL
    );
    CREATE INDEX messages_by_project ON messages (project_id, id);
    CREATE TABLE notifications (
        id          INTEGER PRIMARY KEY,
        user_id     TEXT NOT NULL,
        type        TEXT NOT NULL,
        title       TEXT NOT NULL,
        body        TEXT NOT NULL,
        link        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        read_at     TEXT
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, id);
    """,
    # 2: a task may carry a description (the board's detail view)
    """
    ALTER TABLE tasks ADD COLUMN description TEXT NOT NULL DEFAULT '';
    """,
)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the server."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in place.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    target = len(MIGRATIONS)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > target:
                raise SchemaTooNew(
                    f"the database is at schema version {version}; this server knows {target}"
                )
            if version == target:
                conn.execute("COMMIT")
                return version
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    return [s.strip() for s in script.split(";") if s.strip()]
