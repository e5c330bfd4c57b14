"""The SQLite store on real files: migrations, WAL, the thread bound, two processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from server.realtime.demo import seed
from server.store import (
    MIGRATIONS,
    SchemaTooNew,
    SQLiteStore,
    UnsupportedDatabase,
    open_store,
    sqlite_path,
)
from server.store.migrations import _statements

ROOT = Path(__file__).resolve().parents[2]


async def test_a_new_database_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/deep/folder/app.db")
    await store.aclose()
    conn = sqlite3.connect(tmp_path / "deep/folder/app.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    again = await open_store(f"sqlite:///{tmp_path}/deep/folder/app.db")  # nothing to do
    await again.aclose()


async def test_an_old_schema_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO projects VALUES (1, 'Old', 'u', '2020-01-01T00:00:00.000Z')")
    conn.execute(
        "INSERT INTO tasks (project_id, title, status, created_by, created_at, updated_at) "
        "VALUES (1, 'Old task', 'todo', 'u', 'x', 'x')"
    )
    conn.close()
    store = await SQLiteStore.open(path)
    try:
        (task,) = await store.list_tasks(1)
        assert task.title == "Old task" and task.description == ""
        # step 4: a version, and a place in the order the tasks were made
        assert (task.version, task.position) == (1, float(task.id))
    finally:
        await store.aclose()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="schema version"):
        await SQLiteStore.open(path)


def test_database_urls() -> None:
    assert sqlite_path("sqlite:///./data/app.db") == "./data/app.db"
    assert sqlite_path("sqlite:////var/lib/app.db") == "/var/lib/app.db"
    for url in ("postgresql://localhost/app", "sqlite://", "app.db"):
        with pytest.raises(UnsupportedDatabase):
            sqlite_path(url)


async def test_calls_share_a_bounded_number_of_threads(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "bound.db", max_threads=2)
    try:
        project = await store.create_project("P", "u")
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(store.add_message, project.id, "u", "U", f"m{n}", None)
        assert len(await store.list_messages(project.id, limit=100)) == 40
        assert len(store._all) <= 2  # one connection per thread the limiter allows
        assert store.latency.ops["add_message"].count == 40
    finally:
        await store.aclose()


async def test_the_demo_seed_runs_once(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "demo.db")
    try:
        first = await seed(store)
        assert await seed(store) == first
        assert len(await store.list_projects()) == 1
        assert [m.user_id for m in await store.list_members(first)] == ["alice", "bob"]
    finally:
        await store.aclose()


WRITER = textwrap.dedent(
    """
    import sys, trio
    from server.store import SQLiteStore

    async def main(path, name):
        store = await SQLiteStore.open(path)  # both processes migrate the new file at once
        project = await store.create_project(name, name)
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(store.add_message, project.id, name, name, f"{name}{n}", None)
        await store.aclose()

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)


async def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"

    def both() -> list[subprocess.CompletedProcess[str]]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), name],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name in ("a", "b")
        ]
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out))
        return results

    for result in await trio.to_thread.run_sync(both):
        assert result.returncode == 0, result.stdout
    store = await SQLiteStore.open(path)
    try:
        projects = await store.list_projects()
        assert sorted(p.name for p in projects) == ["a", "b"]
        for project in projects:
            messages = await store.list_messages(project.id, limit=200)
            expected = {f"{project.name}{n}" for n in range(100)}
            assert {m.message for m in messages} == expected
    finally:
        await store.aclose()
