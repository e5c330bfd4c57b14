"""The REST API under ``/api``: JSON in and out, ``Authorization: Bearer <jwt>``.

Errors are ``{"error": "..."}`` with 400 (malformed input), 401 (no or bad token),
403 (not allowed), 404 (no such thing), 429 (over the user's rate limit, with
``Retry-After``). Who may do what is :mod:`server.realtime.access`.
Changes that others should see at once (task created or updated, notifications) go through
:class:`~server.realtime.Realtime`, in-process.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from server.hub import EventRefused
from server.realtime import (
    TOKEN_INVALID,
    TOKEN_MISSING,
    Forbidden,
    Identity,
    InvalidToken,
    NotFound,
    Realtime,
    bearer_token,
)
from server.realtime import payloads as p
from server.store import TASK_STATUSES, VersionConflict

MAX_PAGE = 200
#: What a PUT of a task may carry: the fields it changes, and the version it was made from.
TASK_FIELDS = {"title", "description", "status", "assigneeId", "position", "version"}


class Unauthorized(Exception):
    pass


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


async def _body() -> dict[str, Any]:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise p.Invalid("the body must be a JSON object")
    return body


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise p.Invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _status(value: Any) -> str:
    if value not in TASK_STATUSES:
        raise p.Invalid(f"status must be one of {', '.join(TASK_STATUSES)}")
    assert isinstance(value, str)
    return value


def create_api(realtime: Realtime) -> Blueprint:
    api = Blueprint("api", __name__, url_prefix="/api")
    store = realtime.store
    access = realtime.access

    def who() -> Identity:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            raise Unauthorized(TOKEN_MISSING)
        try:
            user = realtime.verifier.verify(token)
        except InvalidToken:
            raise Unauthorized(TOKEN_INVALID) from None
        realtime.check_rest(user, request.method)
        return user

    @api.errorhandler(EventRefused)
    async def rate_limited(exc: EventRefused) -> Any:
        response, status = _error(429, exc.reason)
        response.headers["Retry-After"] = "1"
        return response, status

    @api.errorhandler(Unauthorized)
    async def unauthorized(exc: Unauthorized) -> Any:
        response, status = _error(401, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response, status

    @api.errorhandler(p.Invalid)
    async def invalid(exc: p.Invalid) -> Any:
        return _error(400, str(exc))

    @api.errorhandler(Forbidden)
    async def forbidden(exc: Forbidden) -> Any:
        return _error(403, str(exc))

    @api.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return _error(404, str(exc))

    @api.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        return _error(exc.code or 500, exc.name)

    # ---- who am I ------------------------------------------------------------------------
    @api.get("/me")
    async def me() -> Any:
        return jsonify(who().as_json())

    # ---- projects and members ------------------------------------------------------------
    @api.get("/projects")
    async def list_projects() -> Any:
        user = who()
        projects = await store.list_projects(None if user.is_admin else user.user_id)
        return jsonify({"projects": [project.as_json() for project in projects]})

    @api.post("/projects")
    async def create_project() -> Any:
        user = who()
        access.require_admin(user)
        name = p.text((await _body()).get("name"), "name", p.MAX_NAME)
        project = await store.create_project(name, user.user_id)
        await store.add_member(project.id, user.user_id, user.user_name)
        realtime.project_added(project, user.user_id)
        return jsonify(project.as_json()), 201

    @api.get("/projects/<int:project_id>")
    async def get_project(project_id: int) -> Any:
        project = await access.project(who(), project_id)
        return jsonify(project.as_json())

    @api.get("/projects/<int:project_id>/members")
    async def list_members(project_id: int) -> Any:
        await access.project(who(), project_id)
        online = await realtime.online(project_id)
        members = [
            {**member.as_json(), "online": member.user_id in online}
            for member in await store.list_members(project_id)
        ]
        return jsonify({"members": members})

    @api.post("/projects/<int:project_id>/members")
    async def add_member(project_id: int) -> Any:
        user = who()
        access.require_admin(user)
        project = await access.project(user, project_id)
        body = await _body()
        user_id = p.user_id(body.get("userId"), "userId")
        user_name = p.text(body.get("userName"), "userName", p.MAX_NAME)
        member = await store.add_member(project_id, user_id, user_name)
        realtime.member_added(project, member)
        return jsonify(member.as_json()), 201

    @api.delete("/projects/<int:project_id>/members/<path:user_id>")
    async def remove_member(project_id: int, user_id: str) -> Any:
        user = who()
        access.require_admin(user)
        await access.project(user, project_id)
        member = p.user_id(user_id, "userId")
        if not await store.remove_member(project_id, member):
            raise NotFound("Not a member of this project")
        await realtime.member_removed(project_id, member)
        return "", 204

    # ---- tasks ---------------------------------------------------------------------------
    async def check_assignee(project_id: int, assignee: str | None) -> None:
        if assignee is not None and not await store.is_member(project_id, assignee):
            raise p.Invalid("assigneeId is not a member of this project")

    @api.get("/projects/<int:project_id>/tasks")
    async def list_tasks(project_id: int) -> Any:
        await access.project(who(), project_id)
        tasks = await store.list_tasks(project_id)
        return jsonify({"tasks": [task.as_json() for task in tasks]})

    @api.post("/projects/<int:project_id>/tasks")
    async def create_task(project_id: int) -> Any:
        user = who()
        await access.project(user, project_id)
        body = await _body()
        title = p.text(body.get("title"), "title", p.MAX_TITLE)
        description = p.optional_text(body.get("description"), "description", p.MAX_DESCRIPTION)
        status = _status(body.get("status", "todo"))
        assignee = body.get("assigneeId")
        assignee = None if assignee is None else p.user_id(assignee, "assigneeId")
        await check_assignee(project_id, assignee)
        task = await store.create_task(
            project_id,
            title,
            description=description,
            status=status,
            assignee_id=assignee,
            created_by=user.user_id,
        )
        realtime.task_created(task)
        await realtime.task_assigned(task, user)
        return jsonify(task.as_json()), 201

    @api.get("/tasks")
    async def my_tasks() -> Any:
        """The tasks assigned to the caller, across their projects."""
        tasks = await store.list_assigned_tasks(who().user_id)
        return jsonify({"tasks": [task.as_json() for task in tasks]})

    @api.get("/tasks/<int:task_id>")
    async def get_task(task_id: int) -> Any:
        task = await store.get_task(task_id)
        if task is None:
            raise NotFound("Task not found")
        await access.project(who(), task.project_id)
        return jsonify(task.as_json())

    @api.put("/tasks/<int:task_id>")
    async def update_task(task_id: int) -> Any:
        user = who()
        body = await _body()
        task = await store.get_task(task_id)
        if task is None:
            raise NotFound("Task not found")
        await access.project(user, task.project_id)
        unknown = set(body) - TASK_FIELDS
        if unknown:
            raise p.Invalid(f"unknown fields: {', '.join(sorted(unknown))}")
        if not set(body) - {"version"}:
            raise p.Invalid(
                "nothing to change: send title, description, status, assigneeId or position"
            )
        version = p.optional_ident(body.get("version"), "version")
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = p.text(body["title"], "title", p.MAX_TITLE)
        if "description" in body:
            changes["description"] = p.optional_text(
                body["description"], "description", p.MAX_DESCRIPTION
            )
        if "status" in body:
            changes["status"] = _status(body["status"])
        if "assigneeId" in body:
            raw = body["assigneeId"]
            changes["assigneeId"] = None if raw is None else p.user_id(raw, "assigneeId")
            await check_assignee(task.project_id, changes["assigneeId"])
        if "position" in body:
            changes["position"] = p.number(body["position"], "position")
        columns = {("assignee_id" if k == "assigneeId" else k): v for k, v in changes.items()}
        try:
            updated = await store.update_task(task_id, columns, version=version)
        except VersionConflict as conflict:
            # someone changed it since the client read it: theirs stands, the client is
            # told what it is now
            current = conflict.current.as_json()
            return jsonify({"error": "Conflict: the task was changed", "task": current}), 409
        if updated is None:
            raise NotFound("Task not found")
        await realtime.task_updated(updated, changes, user, before=task)
        return jsonify(updated.as_json())

    @api.delete("/tasks/<int:task_id>")
    async def delete_task(task_id: int) -> Any:
        user = who()
        task = await store.get_task(task_id)
        if task is None:
            raise NotFound("Task not found")
        await access.project(user, task.project_id)
        deleted = await store.delete_task(task_id)
        if deleted is None:
            raise NotFound("Task not found")
        realtime.task_deleted(deleted, user)
        return "", 204

    # ---- chat history --------------------------------------------------------------------
    @api.get("/projects/<int:project_id>/messages")
    async def list_messages(project_id: int) -> Any:
        await access.project(who(), project_id)
        before = _int_arg("before", None, 1, 2**53)
        limit = _int_arg("limit", 50, 1, MAX_PAGE)
        assert limit is not None
        messages = await store.list_messages(project_id, before=before, limit=limit)
        return jsonify({"messages": [message.as_json() for message in messages]})

    # ---- notifications -------------------------------------------------------------------
    @api.get("/notifications")
    async def list_notifications() -> Any:
        user = who()
        unread = request.args.get("unread", "") in ("1", "true")
        limit = _int_arg("limit", 100, 1, MAX_PAGE)
        assert limit is not None
        notifications = await store.list_notifications(
            user.user_id, unread_only=unread, limit=limit
        )
        return jsonify({"notifications": [n.as_json() for n in notifications]})

    @api.post("/notifications/<int:notification_id>/read")
    async def read_notification(notification_id: int) -> Any:
        user = who()
        if not await store.mark_notification_read(user.user_id, notification_id):
            raise NotFound("Notification not found")
        return jsonify({"id": notification_id, "read": True})

    return api
