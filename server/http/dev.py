"""``--dev`` only: ``POST /api/dev/token`` hands out tokens for the web demo.

Without ``--dev`` this blueprint is not registered, and nothing in the server issues tokens.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from server.realtime import Realtime
from server.realtime import payloads as p


def create_dev(realtime: Realtime, demo_project_id: int) -> Blueprint:
    dev = Blueprint("dev", __name__, url_prefix="/api/dev")

    @dev.errorhandler(p.Invalid)
    async def invalid(exc: p.Invalid) -> Any:
        return jsonify({"error": str(exc)}), 400

    @dev.post("/token")
    async def token() -> Any:
        """``{userId?, userName?, role?}`` -> ``{token, userId, userName, role, projectId}``.

        The user becomes a member of the demo project, so a new name can join it at once.
        Defaults: ``alice``, ``Alice``, role ``member`` unless the id is ``alice``.
        """
        body = await request.get_json(force=True, silent=True)
        body = {} if body is None else p.obj(body, "the body")
        user_id = p.user_id(body.get("userId", "alice"), "userId")
        user_name = p.text(body.get("userName", user_id.capitalize()), "userName", p.MAX_NAME)
        role = body.get("role", "admin" if user_id == "alice" else "member")
        if role not in ("admin", "member"):
            raise p.Invalid("role must be admin or member")
        await realtime.store.add_member(demo_project_id, user_id, user_name)
        return jsonify(
            {
                "token": realtime.verifier.issue(user_id, user_name, role),
                "userId": user_id,
                "userName": user_name,
                "role": role,
                "projectId": demo_project_id,
            }
        )

    return dev
