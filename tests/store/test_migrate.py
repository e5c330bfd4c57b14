"""``python -m server.store.migrate``: a SQLite file into PostgreSQL and back, run as the
README says, and read back through the Store interface (everything the server would show is
the same: ids, names, history, replies, read marks, timestamps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.realtime.demo import seed
from server.store import Store, open_store
from tests.postgres import postgres_database


def migrate(source: str, destination: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.store.migrate", "--from", source, "--to", destination],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def fill(store: Store) -> None:
    project = await seed(store)
    other = await store.create_project("Second", "bob")
    await store.add_member(other.id, "bob", "Bob")
    first = await store.add_message(project, "alice", "Alice", "héllo 👋", None)
    await store.add_message(project, "bob", "Bob", "a reply", first.id)
    for i in range(1, 1500):  # more than one batch
        await store.add_message(other.id, "bob", "Bob", f"note {i}", None)
    read = await store.add_notification("bob", "task", "Assigned", "to you", "/tasks/1")
    await store.add_notification("bob", "mention", "Alice mentioned you", "hi", "/chat/1")
    assert await store.mark_notification_read("bob", read.id)
    task = (await store.list_tasks(project))[1]
    await store.update_task(task.id, {"status": "done", "assignee_id": "alice"})
    assert await store.claim_deliveries("some-connection", [read.id + 1])


async def snapshot(store: Store) -> dict[str, object]:
    projects = await store.list_projects()
    out: dict[str, object] = {"projects": projects}
    for p in projects:
        out[f"members {p.id}"] = await store.list_members(p.id)
        out[f"tasks {p.id}"] = await store.list_tasks(p.id)
        out[f"messages {p.id}"] = await store.list_messages(p.id, limit=5000)
    for user in ("alice", "bob"):
        out[f"notifications {user}"] = await store.list_notifications(user)
        out[f"assigned {user}"] = await store.list_assigned_tasks(user)
    return out


async def test_sqlite_into_postgresql_and_back(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/app.db"
    source = await open_store(sqlite_url)
    await fill(source)
    before = await snapshot(source)
    await source.aclose()

    with postgres_database() as pg_url:
        done = migrate(sqlite_url, pg_url)
        assert done.returncode == 0, done.stderr
        assert "messages" in done.stdout and "1,501" in done.stdout

        moved = await open_store(pg_url)
        try:
            assert await snapshot(moved) == before
            # ids continue after the copied ones (the sequences were moved)
            newest = max(p.id for p in await moved.list_projects())
            assert (await moved.create_project("After", "alice")).id == newest + 1
            # delivery records named connections of the old server: not copied, so the
            # unread notification reaches the user's next connection
            unread = await moved.list_notifications("bob", unread_only=True)
            assert await moved.claim_deliveries("some-connection", [n.id for n in unread])
            expected = await snapshot(moved)
        finally:
            await moved.aclose()

        # a second run would mix two histories: refused, nothing written
        again = migrate(sqlite_url, pg_url)
        assert again.returncode == 2
        assert "error: the destination already holds data" in again.stderr
        assert "Traceback" not in again.stderr

        back_url = f"sqlite:///{tmp_path}/back.db"
        done = migrate(pg_url, back_url)
        assert done.returncode == 0, done.stderr
        back = await open_store(back_url)
        try:
            assert await snapshot(back) == expected
        finally:
            await back.aclose()


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        ("sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/new.db", "no SQLite database at"),
        ("mysql://x/y", "sqlite:///{tmp}/new.db", "is not supported"),
        ("postgresql://postgres@127.0.0.1:1/none", "sqlite:///{tmp}/new.db", "not reachable"),
        ("sqlite:///{tmp}/a.db", "sqlite:///{tmp}/a.db", "name the same database"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    tmp_path: Path, source: str, destination: str, message: str
) -> None:
    done = migrate(source.format(tmp=tmp_path), destination.format(tmp=tmp_path))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "new.db").exists()
