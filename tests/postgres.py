"""A PostgreSQL database of its own for a test: created on the machine's server, dropped after.

The server is the one on 127.0.0.1:5432 (user ``postgres``, trust authentication), or the
one ``TEST_POSTGRES_URL`` names (a URL to an existing database the user may create
databases from). Unreachable, it fails the test: a PostgreSQL test never skips.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed at {ADMIN_URL} (.ci/run starts it: pg_ctlcluster 15 main "
            f"start; or set TEST_POSTGRES_URL): {exc}"
        )


def url_of(dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", 5432)
    password = info.get("password")
    auth = f"{user}:{password}" if password else f"{user}"
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


@contextmanager
def postgres_database(prefix: str = "triohub_test") -> Iterator[str]:
    """A new, empty database for the body of the ``with``; yields its URL; dropped after
    (``WITH (FORCE)``: connections a killed process left are closed with it)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_of(name)
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
