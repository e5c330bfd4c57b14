"""The Store interface, the same tests on both implementations: SQLite on a file, and
PostgreSQL on a database of the test's own (created on 127.0.0.1:5432, dropped after).

What both must answer alike: ids, ordering, history pages, timestamps (ISO 8601, UTC,
milliseconds, ``Z``), idempotent membership, partial task updates, notifications read by
their owner only, and what happens to input a database refuses.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import trio

from server.realtime.demo import seed
from server.store import (
    PG_MIGRATIONS,
    PostgresStore,
    SchemaTooNew,
    SQLiteStore,
    Store,
    VersionConflict,
    open_store,
)
from tests.postgres import postgres_database

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
    else:
        with postgres_database() as url:
            yield url


def both(fn: object) -> object:
    return pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)(fn)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, max_threads=3)
    try:
        yield opened
    finally:
        await opened.aclose()


def recent(stamp: str) -> bool:
    assert ISO_MS.match(stamp), stamp
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return abs(datetime.now(UTC) - at) < timedelta(minutes=1)


@both
async def test_the_url_picks_the_implementation(database_url: str, store: Store) -> None:
    kind = PostgresStore if database_url.startswith("postgresql://") else SQLiteStore
    assert isinstance(store, kind)
    await store.ping()


@both
async def test_projects_and_members(store: Store) -> None:
    first = await store.create_project("Alpha", "alice")
    second = await store.create_project("Beta", "bob")
    assert second.id > first.id and recent(first.created_at)
    assert await store.get_project(first.id) == first
    assert await store.get_project(second.id + 100) is None
    assert await store.list_projects() == [first, second]

    alice = await store.add_member(first.id, "alice", "Alice")
    await trio.sleep(0.002)  # distinct added_at: members are listed in the order they came
    await store.add_member(first.id, "bob", "Bob")
    renamed = await store.add_member(first.id, "alice", "Alice L.")  # idempotent: a rename
    assert renamed.added_at == alice.added_at and renamed.user_name == "Alice L."
    assert [(m.user_id, m.user_name) for m in await store.list_members(first.id)] == [
        ("alice", "Alice L."),
        ("bob", "Bob"),
    ]
    assert await store.is_member(first.id, "bob")
    assert not await store.is_member(second.id, "bob")
    assert await store.list_projects("bob") == [first]
    assert await store.list_projects("nobody") == []


@both
async def test_tasks_are_created_listed_and_updated_in_part(store: Store) -> None:
    project = await store.create_project("P", "alice")
    other = await store.create_project("Q", "alice")
    await store.add_member(project.id, "bob", "Bob")
    task = await store.create_task(
        project.id, "Write", description="", status="todo", assignee_id=None, created_by="alice"
    )
    assigned = await store.create_task(
        project.id, "Test", description="d", status="todo", assignee_id="bob", created_by="alice"
    )
    elsewhere = await store.create_task(
        other.id, "Far", description="", status="done", assignee_id="bob", created_by="alice"
    )
    assert recent(task.created_at) and task.created_at == task.updated_at
    assert await store.get_task(task.id) == task
    assert await store.get_task(elsewhere.id + 1) is None
    assert [t.id for t in await store.list_tasks(project.id)] == [task.id, assigned.id]
    # bob is a member of P only: the task assigned to him in Q is not his to see
    assert [t.id for t in await store.list_assigned_tasks("bob")] == [assigned.id]

    await trio.sleep(0.002)
    moved = await store.update_task(task.id, {"status": "in_progress", "assignee_id": "bob"})
    assert moved is not None
    assert (moved.title, moved.status, moved.assignee_id) == ("Write", "in_progress", "bob")
    assert moved.created_at == task.created_at and moved.updated_at > task.updated_at
    assert await store.get_task(task.id) == moved
    cleared = await store.update_task(task.id, {"assignee_id": None, "description": "x"})
    assert cleared is not None and (cleared.assignee_id, cleared.description) == (None, "x")
    assert await store.update_task(elsewhere.id + 1, {"title": "gone"}) is None
    with pytest.raises(ValueError, match="not task fields"):
        await store.update_task(task.id, {"id": 1})


@both
async def test_versions_refuse_a_stale_update(store: Store) -> None:
    project = await store.create_project("P", "alice")
    task = await store.create_task(
        project.id, "Write", description="", status="todo", assignee_id=None, created_by="alice"
    )
    assert task.version == 1
    moved = await store.update_task(task.id, {"status": "done"}, version=1)
    assert moved is not None and (moved.version, moved.status) == (2, "done")
    # another edit made from version 1 is refused, with the task as it is, and changes nothing
    with pytest.raises(VersionConflict) as refused:
        await store.update_task(task.id, {"status": "in_progress", "title": "Mine"}, version=1)
    assert refused.value.current == moved
    assert await store.get_task(task.id) == moved
    # without a version, an update applies to whatever is there (and counts)
    renamed = await store.update_task(task.id, {"title": "Theirs"})
    assert renamed is not None and renamed.version == 3
    assert await store.update_task(task.id + 100, {"title": "x"}, version=1) is None


@both
async def test_tasks_keep_their_place_and_can_be_deleted(store: Store) -> None:
    project = await store.create_project("P", "alice")
    other = await store.create_project("Q", "alice")
    made = [
        await store.create_task(
            project.id, t, description="", status="todo", assignee_id=None, created_by="alice"
        )
        for t in ("a", "b", "c")
    ]
    far = await store.create_task(
        other.id, "far", description="", status="todo", assignee_id=None, created_by="alice"
    )
    # each new task goes last in its project
    assert [t.position for t in made] == [1.0, 2.0, 3.0] and far.position == 1.0
    # c moves between a and b
    await store.update_task(made[2].id, {"position": 1.5})
    assert [t.title for t in await store.list_tasks(project.id)] == ["a", "c", "b"]
    gone = await store.delete_task(made[0].id)
    assert gone is not None and gone.title == "a"
    assert await store.delete_task(made[0].id) is None
    assert [t.title for t in await store.list_tasks(project.id)] == ["c", "b"]
    assert [t.title for t in await store.list_tasks(other.id)] == ["far"]


@both
async def test_a_member_can_be_removed(store: Store) -> None:
    project = await store.create_project("P", "alice")
    await store.add_member(project.id, "bob", "Bob")
    assert await store.remove_member(project.id, "bob")
    assert not await store.is_member(project.id, "bob")
    assert not await store.remove_member(project.id, "bob")
    assert await store.list_projects("bob") == []


@both
async def test_chat_history_pages_back_newest_first(store: Store) -> None:
    project = await store.create_project("P", "alice")
    other = await store.create_project("Q", "alice")
    sent = [await store.add_message(project.id, "alice", "Alice", f"m{n}", None) for n in range(7)]
    reply = await store.add_message(project.id, "bob", "Bob", "re", sent[0].id)
    await store.add_message(other.id, "bob", "Bob", "elsewhere", None)
    assert reply.reply_to == sent[0].id and recent(reply.timestamp)
    assert await store.get_message(reply.id) == reply
    page = await store.list_messages(project.id, limit=3)
    assert [m.message for m in page] == ["re", "m6", "m5"]
    older = await store.list_messages(project.id, before=page[-1].id, limit=3)
    assert [m.message for m in older] == ["m4", "m3", "m2"]
    rest = await store.list_messages(project.id, before=older[-1].id, limit=10)
    assert [m.message for m in rest] == ["m1", "m0"]
    assert await store.list_messages(project.id, before=sent[0].id) == []


@both
async def test_notifications_are_read_by_their_owner_only(store: Store) -> None:
    first = await store.add_notification("bob", "task_assigned", "T1", "b", "/p/1")
    second = await store.add_notification("bob", "mention", "T2", "b", "/p/2")
    theirs = await store.add_notification("carol", "mention", "T3", "b", "/p/3")
    assert not first.read and recent(first.timestamp)
    newest = await store.list_notifications("bob")
    assert [n.id for n in newest] == [second.id, first.id]
    assert not await store.mark_notification_read("bob", theirs.id)  # not bob's
    assert not await store.mark_notification_read("bob", theirs.id + 100)  # no such one
    assert await store.mark_notification_read("bob", first.id)
    assert await store.mark_notification_read("bob", first.id)  # read already: still True
    unread = await store.list_notifications("bob", unread_only=True, oldest_first=True)
    assert [n.id for n in unread] == [second.id]
    listed = await store.list_notifications("bob", oldest_first=True, limit=1)
    assert [(n.id, n.read) for n in listed] == [(first.id, True)]
    assert [n.read for n in await store.list_notifications("carol")] == [False]


@both
async def test_refused_input_raises_and_leaves_the_store_healthy(store: Store) -> None:
    """A message in a project that does not exist breaks a constraint: the call raises
    (the service answers "Internal error"), and the store is not reported as failing."""
    with pytest.raises(Exception):  # noqa: B017 (each driver raises its own IntegrityError)
        await store.add_message(12345, "alice", "Alice", "lost", None)
    assert not store.health.failing and store.health.errors == 0
    project = await store.create_project("P", "alice")
    assert (await store.add_message(project.id, "alice", "Alice", "fine", None)).id > 0


@both
async def test_many_calls_at_once_share_a_bounded_pool(store: Store) -> None:
    project = await store.create_project("P", "u")
    async with trio.open_nursery() as nursery:
        for n in range(40):
            nursery.start_soon(store.add_message, project.id, "u", "U", f"m{n}", None)
    messages = await store.list_messages(project.id, limit=100)
    assert sorted(m.message for m in messages) == sorted(f"m{n}" for n in range(40))
    assert len({m.id for m in messages}) == 40
    assert store.latency.ops["add_message"].count == 40


@both
async def test_the_demo_seed_runs_once(store: Store) -> None:
    first = await seed(store)
    assert await seed(store) == first
    assert len(await store.list_projects()) == 1
    assert [m.user_id for m in await store.list_members(first)] == ["alice", "bob"]


async def test_postgres_schema_versions() -> None:
    """Migrated on open, once; a database from a newer server is refused."""
    with postgres_database() as url:
        store = await PostgresStore.open(url)
        await store.aclose()
        store = await PostgresStore.open(url)  # the second open finds it up to date
        await store.aclose()
        with psycopg.connect(url, autocommit=True) as conn:
            versions = conn.execute("SELECT version FROM schema_version").fetchall()
            assert versions == [(len(PG_MIGRATIONS),)]
            conn.execute("UPDATE schema_version SET version = 99")
        with pytest.raises(SchemaTooNew, match="schema version 99"):
            await PostgresStore.open(url)


async def test_postgres_unreachable_is_a_clear_error() -> None:
    started = trio.current_time()
    with pytest.raises(ConnectionError, match="PostgreSQL is not reachable"):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1.0)
    assert trio.current_time() - started < 10  # a functional bound, not a benchmark


@both
async def test_a_delivery_is_claimed_once_whoever_asks(store: Store) -> None:
    """What makes a notification reach a connection once across processes: of claims of
    one (connection, notification) pair made at once, exactly one wins."""
    first = await store.add_notification("bob", "t", "T1", "b", "/1")
    second = await store.add_notification("bob", "t", "T2", "b", "/2")
    wins: list[set[int]] = []

    async def claim() -> None:
        wins.append(await store.claim_deliveries("sid-1", [first.id, second.id]))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(claim)
    assert sorted(n for won in wins for n in won) == [first.id, second.id]
    # another connection claims its own; an id that does not exist is never claimed
    assert await store.claim_deliveries("sid-2", [first.id, 999_999]) == {first.id}
    assert await store.claim_deliveries("sid-2", []) == set()
    # a claim released (the socket closed before the send) can be made again
    await store.release_deliveries("sid-1", [second.id])
    assert await store.claim_deliveries("sid-1", [second.id]) == {second.id}
    # read, a notification's claims go: nothing is kept for what is never sent again
    assert await store.mark_notification_read("bob", first.id)
    assert await store.claim_deliveries("sid-1", [first.id]) == {first.id}
