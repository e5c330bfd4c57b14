"""Who a chat message mentions, and what a task's notification says."""

from __future__ import annotations

from server.realtime.wording import mention_body, mentioned, task_changed
from server.store import Member, Task

MEMBERS = [
    Member(1, "bob", "Bob", "t"),
    Member(1, "c.a", "Carol Ann", "t"),
    Member(1, "42", "Dee (ops)", "t"),
]


def test_mentions_are_whole_handles_of_members() -> None:
    assert mentioned("hi @Bob", MEMBERS) == ["bob"]
    assert mentioned("@carol ann then @bob", MEMBERS) == ["c.a", "bob"]
    assert mentioned("@c.a", MEMBERS) == ["c.a"]
    assert mentioned("@Dee (ops) and @42", MEMBERS) == ["42"]  # once, by its first mention
    # not a whole handle, or not a mention at all
    assert mentioned("@bobby", MEMBERS) == []
    assert mentioned("mail bob@bob", MEMBERS) == []
    assert mentioned("@@bob", MEMBERS) == []
    assert mentioned("no at sign: bob", MEMBERS) == []
    assert mentioned("@eve", MEMBERS) == []


def test_a_long_message_is_cut_for_the_notification() -> None:
    assert mention_body("short") == "short"
    body = mention_body("x" * 500)
    assert len(body) == 200 and body.endswith("\u2026")


def task(**fields: object) -> Task:
    base: dict[str, object] = dict(
        id=1,
        project_id=1,
        title="T",
        description="",
        status="todo",
        assignee_id="bob",
        created_by="ada",
        created_at="t",
        updated_at="t",
    )
    base.update(fields)
    return Task(**base)  # type: ignore[arg-type]


def test_a_task_change_says_what_changed_most() -> None:
    before = task()
    assert task_changed("Ada", before, task(status="in_progress"), {"status": 1}) == (
        "task_update",
        "Ada moved \u201cT\u201d to In progress",
    )
    # assigned to you matters more than a move made with it
    moved_to_me = task(assignee_id="cy", status="done")
    assert task_changed("Ada", before, moved_to_me, {"assigneeId": 1, "status": 1}) == (
        "task_assigned",
        "Ada assigned \u201cT\u201d to you",
    )
    # a card moved within its column: nothing to tell
    assert task_changed("Ada", before, task(position=3.0), {"position": 3.0}) is None
