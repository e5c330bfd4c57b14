"""Persistence behind a narrow interface (:class:`Store`); SQLite is the implementation.

``open_store(url)`` picks the implementation from a ``DATABASE_URL``.
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
    now_iso,
)
from server.store.migrations import MIGRATIONS, SchemaTooNew
from server.store.sqlite import SQLiteStore

DEFAULT_DATABASE_URL = "sqlite:///./data/app.db"


class UnsupportedDatabase(ValueError):
    pass


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` to a file path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise UnsupportedDatabase(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to/file.db "
            "(PostgreSQL is not implemented yet)"
        )
    return url[len(prefix) :]


async def open_store(url: str = DEFAULT_DATABASE_URL, *, max_threads: int = 4) -> Store:
    return await SQLiteStore.open(sqlite_path(url), max_threads=max_threads)


__all__ = [
    "DEFAULT_DATABASE_URL",
    "MIGRATIONS",
    "TASK_STATUSES",
    "Member",
    "Message",
    "Notification",
    "Project",
    "SQLiteStore",
    "SchemaTooNew",
    "Store",
    "Task",
    "UnsupportedDatabase",
    "now_iso",
    "open_store",
    "sqlite_path",
]
