"""``--dev``: a demo project with two demo users, so the web demo and the README work."""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.auth import TokenVerifier
from server.store import Store

DEMO_PROJECT = "Demo project"


@dataclass(frozen=True, slots=True)
class DemoUser:
    user_id: str
    user_name: str
    role: str


DEMO_USERS = (
    DemoUser("alice", "Alice", "admin"),
    DemoUser("bob", "Bob", "member"),
)


async def seed(store: Store) -> int:
    """Create the demo project, its members and two tasks, once; returns its id."""
    for project in await store.list_projects():
        if project.name == DEMO_PROJECT and project.created_by == "alice":
            return project.id
    project = await store.create_project(DEMO_PROJECT, "alice")
    for user in DEMO_USERS:
        await store.add_member(project.id, user.user_id, user.user_name)
    await store.create_task(
        project.id,
        "Write the README walkthrough",
        description="From make run to two clients chatting.",
        status="in_progress",
        assignee_id="bob",
        created_by="alice",
    )
    await store.create_task(
        project.id,
        "Try the task board",
        description="",
        status="todo",
        assignee_id=None,
        created_by="alice",
    )
    return project.id


def demo_tokens(verifier: TokenVerifier) -> list[tuple[DemoUser, str]]:
    return [(u, verifier.issue(u.user_id, u.user_name, u.role)) for u in DEMO_USERS]
