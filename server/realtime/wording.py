"""What notifications say, and who a chat message mentions: pure functions, no I/O.

A notification's title is a sentence a person reads in the bell (``Alice moved “Write tests”
to Done``); its body says where (the project's name) or what (a mention's message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from server.store import Member, Task

#: How the board names each status.
STATUS_NAMES = {"todo": "To do", "in_progress": "In progress", "done": "Done"}
#: The most of a message a mention's notification carries.
MENTION_BODY = 200


def quoted(title: str) -> str:
    return f"\u201c{title}\u201d"


def task_assigned(by: str, task: Task) -> str:
    return f"{by} assigned {quoted(task.title)} to you"


def task_changed(
    by: str, before: Task, after: Task, changes: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(type, title)`` of the notification an assignee gets for ``changes`` made by ``by``
    (``before`` and ``after`` are the task around them); None when there is nothing worth a
    notification (a card moved within its column)."""
    if "assigneeId" in changes and after.assignee_id != before.assignee_id:
        return "task_assigned", task_assigned(by, after)
    if "status" in changes and after.status != before.status:
        where = STATUS_NAMES.get(after.status, after.status)
        return "task_update", f"{by} moved {quoted(after.title)} to {where}"
    if "title" in changes and after.title != before.title:
        return "task_update", f"{by} renamed {quoted(before.title)} to {quoted(after.title)}"
    if "description" in changes and after.description != before.description:
        return "task_update", f"{by} changed the description of {quoted(after.title)}"
    return None


def mentioned(message: str, members: Iterable[Member]) -> list[str]:
    """The members ``message`` mentions, in the order they first appear: ``@`` and a member's
    id or name (case-insensitive, as a whole word; a name with spaces matches whole)."""
    if "@" not in message:
        return []
    found: dict[str, int] = {}
    for member in members:
        for handle in {member.user_id, member.user_name}:
            if not handle:
                continue
            pattern = rf"(?<![\w@])@{re.escape(handle)}(?![\w])"
            match = re.search(pattern, message, re.IGNORECASE)
            if match is not None:
                at = match.start()
                found[member.user_id] = min(at, found.get(member.user_id, at))
    return sorted(found, key=found.__getitem__)


def mention_body(message: str) -> str:
    if len(message) <= MENTION_BODY:
        return message
    return message[: MENTION_BODY - 1] + "\u2026"
