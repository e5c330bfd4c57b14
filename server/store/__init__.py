"""Persistence behind a narrow interface (:class:`Store`), in two implementations: SQLite
(the embedded default: one host) and PostgreSQL (processes on several hosts).

``open_store(url)`` picks the implementation from a ``DATABASE_URL``: ``sqlite:///path``,
or ``postgresql://user[:password]@host[:port]/dbname`` (also ``postgres://``).
"""

from __future__ import annotations

from server.store.base import (
    TASK_STATUSES,
    Member,
    Message,
    Notification,
    Project,
    Store,
    Task,
    VersionConflict,
    now_iso,
)
from server.store.migrations import MIGRATIONS, PG_MIGRATIONS, SchemaTooNew
from server.store.postgres import PostgresStore, is_postgres_url
from server.store.sqlite import SQLiteStore

DEFAULT_DATABASE_URL = "sqlite:///./data/app.db"


class UnsupportedDatabase(ValueError):
    pass


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` to a file path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise UnsupportedDatabase(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to/file.db or "
            "postgresql://user@host:port/dbname"
        )
    return url[len(prefix) :]


async def open_store(url: str = DEFAULT_DATABASE_URL, *, max_threads: int = 4) -> Store:
    """Open (and migrate) the store ``url`` names; ``max_threads`` bounds its calls at once
    (and, for PostgreSQL, its connections)."""
    if is_postgres_url(url):
        return await PostgresStore.open(url, max_threads=max_threads)
    return await SQLiteStore.open(sqlite_path(url), max_threads=max_threads)


__all__ = [
    "DEFAULT_DATABASE_URL",
    "MIGRATIONS",
    "PG_MIGRATIONS",
    "TASK_STATUSES",
    "Member",
    "Message",
    "Notification",
    "PostgresStore",
    "Project",
    "SQLiteStore",
    "SchemaTooNew",
    "Store",
    "Task",
    "UnsupportedDatabase",
    "VersionConflict",
    "now_iso",
    "open_store",
    "sqlite_path",
]
