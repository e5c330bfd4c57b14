"""The whole service (store, hub, app) in the test's process, and real clients for it.

``serving(tmp_path)`` runs ``server.__main__.run`` exactly as ``python -m server`` does, on
port 0 for both listeners and with a SQLite file in ``tmp_path``. ``Tab`` is one browser tab:
python-socketio's stock client, driven from Trio through worker threads, recording every
event it receives in order. ``token()`` signs JWTs like an identity provider would.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import socketio
import trio
from psycopg import sql

from server.__main__ import Running, run
from server.settings import Settings
from tests.postgres import postgres_database

SECRET = "tests-secret-which-is-long-enough-for-hs256"


def token(
    user_id: str | int,
    user_name: str | None = None,
    role: str = "member",
    *,
    secret: str = SECRET,
    expires_in: float = 600,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    body: dict[str, Any] = {
        "userId": user_id,
        "userName": user_name if user_name is not None else str(user_id).capitalize(),
        "role": role,
        "exp": int(time.time() + expires_in),
        **claims,
    }
    return jwt.encode(body, secret, algorithm=algorithm)


@dataclass
class Service:
    running: Running
    settings: Settings

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.running.app_port}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.running.hub_port}"

    def http(self, bearer: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.AsyncClient(base_url=self.app_url, headers=headers, timeout=10)

    def tab(self, bearer: str | None, transports: tuple[str, ...] = ("websocket",)) -> Tab:
        return Tab(self.hub_url, bearer, transports)


def test_settings(tmp_path: Path, **changes: Any) -> Settings:
    settings = Settings(
        host="127.0.0.1",
        port=0,  # one port: the hub, and the app behind it
        jwt_secret=SECRET,
        database_url=f"sqlite:///{tmp_path}/app.db",
        monitor_interval=3600,
    )
    return settings.with_options(**changes)


#: The stores the service tests run on (the ``svc`` fixture's parameters).
STORES = ("sqlite", "postgres")


@asynccontextmanager
async def serving_on(store: str, tmp_path: Path, **changes: Any) -> AsyncIterator[Service]:
    """``serving`` on a SQLite file in ``tmp_path`` ("sqlite") or on a PostgreSQL database
    of its own, dropped after ("postgres")."""
    if store == "postgres":
        with postgres_database() as url:
            async with serving(tmp_path, database_url=url, **changes) as service:
                yield service
    else:
        async with serving(tmp_path, **changes) as service:
            yield service


def drop_table(svc: Service, table: str) -> None:
    """Drop ``table`` behind the server's back, through a connection of the test's own: a
    real database fault."""
    if svc.settings.database_url.startswith("postgresql://"):
        behind_the_back(svc, sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(table)))
    else:
        behind_the_back(svc, f"DROP TABLE {table}")


def behind_the_back(svc: Service, statement: str | sql.Composed, *params: Any) -> None:
    """Run one statement on the service's database through a connection of the test's own
    (SQLite's ``?`` placeholders are turned into PostgreSQL's ``%s``)."""
    url = svc.settings.database_url
    if url.startswith("postgresql://"):
        if isinstance(statement, str):
            statement = statement.replace("?", "%s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement, params)
        return
    assert isinstance(statement, str)
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(statement, params)
    conn.close()


@asynccontextmanager
async def serving(tmp_path: Path, **changes: Any) -> AsyncIterator[Service]:
    settings = test_settings(tmp_path, **changes)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(partial(run, settings, handle_signals=False))
        try:
            yield Service(running, settings)
        finally:
            nursery.cancel_scope.cancel()


class Tab:
    """One client connection (python-socketio), as a browser tab would hold one."""

    def __init__(self, url: str, bearer: str | None, transports: tuple[str, ...]) -> None:
        self.url = url
        self.bearer = bearer
        self.transports = list(transports)
        self.client = socketio.Client(reconnection=False)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.connect_errors: list[Any] = []
        self.client.on("*", self._record)
        self.client.on("connect_error", self.connect_errors.append)

    def _record(self, event: str, *args: Any) -> None:
        self.events.append((event, args))

    async def connect(self) -> None:
        auth = {"token": self.bearer} if self.bearer is not None else None
        await trio.to_thread.run_sync(
            partial(
                self.client.connect,
                self.url,
                auth=auth,
                transports=self.transports,
                wait_timeout=5,
            )
        )

    async def refused(self) -> Any:
        """Connect, expecting a refusal; returns the CONNECT_ERROR's data."""
        try:
            await self.connect()
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("the connection was accepted")
        await self.until(lambda: self.connect_errors)
        return self.connect_errors[0]

    async def call(self, event: str, *args: Any, timeout: float = 5) -> Any:
        data: Any = None if not args else args[0] if len(args) == 1 else args
        return await trio.to_thread.run_sync(
            partial(self.client.call, event, data, timeout=timeout)
        )

    async def emit(self, event: str, *args: Any) -> None:
        data: Any = None if not args else args[0] if len(args) == 1 else args
        await trio.to_thread.run_sync(partial(self.client.emit, event, data))

    def got(self, event: str) -> list[Any]:
        """The first argument of every ``event`` received so far, in order."""
        return [args[0] if args else None for name, args in self.events if name == event]

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await trio.sleep(0.02)

    async def next(self, event: str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        """Wait until ``count`` ``event``s have arrived; returns them all."""
        await self.until(lambda: len(self.got(event)) >= count, timeout)
        return self.got(event)

    async def disconnect(self) -> None:
        await trio.to_thread.run_sync(self.client.disconnect)

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)


def metric(text: str, name: str) -> float:
    """The value of one sample in /metrics' ``text``: ``name`` with its labels, as exposed
    (prometheus-client writes the labels sorted by name)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def make_project(
    svc: Service, name: str, members: dict[str, str], admin: str = "admin"
) -> int:
    """A project created by an admin over REST, with ``members`` (userId -> userName)."""
    async with svc.http(token(admin, role="admin")) as http:
        created = await http.post("/api/projects", json={"name": name})
        assert created.status_code == 201, created.text
        project_id: int = created.json()["id"]
        for user_id, user_name in members.items():
            added = await http.post(
                f"/api/projects/{project_id}/members",
                json={"userId": user_id, "userName": user_name},
            )
            assert added.status_code == 201, added.text
    return project_id
