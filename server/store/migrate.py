"""Copy a database from one store to another:
``python -m server.store.migrate --from URL --to URL``.

The way from one host to several: a SQLite file (``sqlite:///data/app.db``) into PostgreSQL
(``postgresql://user@host/dbname``); the other way works too. Stop the servers that use the
source first: rows written during the copy would not be in it.

What it does:
- brings both databases to the current schema (as the server does at start);
- refuses a destination that already holds rows (it would mix two histories);
- copies projects, members, tasks, chat messages and notifications with their ids and
  timestamps, in one transaction on the destination (a failure leaves it empty);
- moves PostgreSQL's id sequences past the copied ids, so new rows do not collide;
- checks the row counts on both sides and prints them.

Delivery records (``notification_deliveries``) are not copied: they name connections of the
servers that wrote them, which are gone; an unread notification is sent again to the user's
next connection, as it would be after a restart.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg

from server.store import UnsupportedDatabase, migrations, sqlite_path
from server.store import postgres as pg
from server.store.sqlite import prepare_sqlite


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]
    #: Whether ``id`` comes from a sequence that must be moved past the copied rows.
    identity: bool


#: In the order foreign keys need (a message's ``reply_to`` is an earlier message: copied in
#: id order, it always exists first).
TABLES = (
    Table("projects", ("id", "name", "created_by", "created_at"), True),
    Table("members", ("project_id", "user_id", "user_name", "added_at"), False),
    Table(
        "tasks",
        (
            "id",
            "project_id",
            "title",
            "description",
            "status",
            "assignee_id",
            "created_by",
            "created_at",
            "updated_at",
            "version",
            "position",
        ),
        True,
    ),
    Table(
        "messages",
        ("id", "project_id", "user_id", "user_name", "body", "reply_to", "created_at"),
        True,
    ),
    Table(
        "notifications",
        ("id", "user_id", "type", "title", "body", "link", "created_at", "read_at"),
        True,
    ),
)

_BATCH = 1000


class MigrationError(Exception):
    """Why the copy cannot be made; the message is for the person at the terminal."""


class Side(Protocol):
    """One database, opened at the current schema."""

    def count(self, table: Table) -> int: ...

    def rows(self, table: Table) -> Iterator[list[tuple[Any, ...]]]:
        """The table's rows in batches, in key order, times as ISO 8601 strings."""

    def write(self, batches: Iterator[tuple[Table, list[tuple[Any, ...]]]]) -> None:
        """Insert every batch in one transaction."""

    def close(self) -> None: ...


def _iso(value: Any) -> Any:
    return pg.iso(value) if isinstance(value, datetime) else value


def _key(table: Table) -> str:
    return "id" if table.identity else ", ".join(table.columns[:2])


class SQLiteSide:
    def __init__(self, path: str, *, must_exist: bool = False) -> None:
        if must_exist and not Path(path).is_file():
            raise MigrationError(f"no SQLite database at {path}")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys = ON")
        prepare_sqlite(self.conn)

    def count(self, table: Table) -> int:
        row = self.conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()
        return int(row[0])

    def rows(self, table: Table) -> Iterator[list[tuple[Any, ...]]]:
        cur = self.conn.execute(
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {_key(table)}"
        )
        while batch := cur.fetchmany(_BATCH):
            yield batch

    def write(self, batches: Iterator[tuple[Table, list[tuple[Any, ...]]]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table, batch in batches:
                marks = ", ".join("?" for _ in table.columns)
                self.conn.executemany(
                    f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})",
                    batch,
                )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


class PostgresSide:
    def __init__(self, url: str) -> None:
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise MigrationError(
                f"PostgreSQL is not reachable at {pg.safe_url(url)}: {exc}"
            ) from None
        pg.migrate(self.conn)

    def count(self, table: Table) -> int:
        row = self.conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()
        assert row is not None
        return int(row[0])

    def rows(self, table: Table) -> Iterator[list[tuple[Any, ...]]]:
        # a named (server-side) cursor needs a transaction; it keeps memory flat on big tables
        with self.conn.transaction(), self.conn.cursor(name=f"copy_{table.name}") as cur:
            cur.execute(
                f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {_key(table)}"
            )
            while batch := cur.fetchmany(_BATCH):
                yield [tuple(_iso(value) for value in row) for row in batch]

    def write(self, batches: Iterator[tuple[Table, list[tuple[Any, ...]]]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            for table, batch in batches:
                marks = ", ".join("%s" for _ in table.columns)
                cur.executemany(
                    f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})",
                    batch,
                )
            for table in TABLES:
                if table.identity:
                    # the next id is max(id) + 1 (or 1 for an empty table)
                    cur.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                        f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}",
                        (table.name,),
                    )

    def close(self) -> None:
        self.conn.close()


def open_side(url: str, *, source: bool) -> Side:
    if pg.is_postgres_url(url):
        return PostgresSide(url)
    try:
        return SQLiteSide(sqlite_path(url), must_exist=source)
    except UnsupportedDatabase as exc:
        raise MigrationError(str(exc)) from None


def copy(source: Side, destination: Side) -> dict[str, int]:
    """Copy every table of ``source`` into the empty ``destination``; returns the rows
    copied per table."""
    held = {t.name: n for t in TABLES if (n := destination.count(t))}
    if held:
        listed = ", ".join(f"{n} {name}" for name, n in held.items())
        raise MigrationError(
            f"the destination already holds data ({listed}); migrate into an empty database"
        )

    def batches() -> Iterator[tuple[Table, list[tuple[Any, ...]]]]:
        for table in TABLES:
            for batch in source.rows(table):
                yield table, batch

    destination.write(batches())
    copied = {t.name: destination.count(t) for t in TABLES}
    expected = {t.name: source.count(t) for t in TABLES}
    if copied != expected:  # a writer on the source during the copy
        raise MigrationError(
            f"row counts differ after the copy: source {expected}, destination {copied}"
        )
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.store.migrate",
        description="Copy the server's database from one store to another (for example a "
        "SQLite file into PostgreSQL). The destination must be empty; stop the servers "
        "that write to the source first.",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="sqlite:///path/to/app.db or postgresql://user@host:port/dbname",
    )
    parser.add_argument(
        "--to",
        dest="destination",
        required=True,
        metavar="URL",
        help="the same forms; an empty (or new) database",
    )
    args = parser.parse_args(argv)
    if args.source == args.destination:
        parser.error("--from and --to name the same database")
    sides: list[Side] = []
    try:
        sides.append(open_side(args.source, source=True))
        sides.append(open_side(args.destination, source=False))
        copied = copy(*sides)
    except (MigrationError, migrations.SchemaTooNew, sqlite3.Error, psycopg.Error) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    finally:
        for side in sides:
            side.close()
    width = max(len(name) for name in copied)
    for name, n in copied.items():
        print(f"{name:<{width}}  {n:>9,}")
    print(f"copied into {_describe(args.destination)}")
    return 0


def _describe(url: str) -> str:
    return pg.safe_url(url) if pg.is_postgres_url(url) else url


__all__ = ["TABLES", "MigrationError", "copy", "main"]

if __name__ == "__main__":
    sys.exit(main())
