"""The project tool with Node's stock ``socket.io-client``: refusals a ``connect_error``
handler can act on, and a connection that is cut and comes back through connection state
recovery (its rooms restored, so it chats on without joining again)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jwt
import pytest
import trio

from tests.node_harness import NODE_DIR, node_deps_installed, node_executable
from tests.realtime.harness import Service, make_project, serving, token

pytestmark = pytest.mark.skipif(
    node_executable() is None or not node_deps_installed(), reason="needs node and npm ci"
)

SCRIPT = """
import { io } from "socket.io-client";
const [url, good, expired, project] = JSON.parse(process.argv.at(-1));
const step = (promise) => Promise.race([
  promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 5000)),
]);
const result = {};

// 1. an expired token: connect_error says so; the handler gets a new token and reconnects
const refused = io(url, { auth: { token: expired }, reconnection: false });
result.refusal = await step(new Promise((resolve) =>
  refused.on("connect_error", (err) => resolve(err.message))));
refused.auth.token = good;
refused.connect();
await step(new Promise((resolve) => refused.on("connect", resolve)));
result.retried = refused.connected;
refused.disconnect();

// 2. a connection cut under a joined socket comes back with its rooms
const socket = io(url, { auth: { token: good }, transports: ["websocket"] });
await step(new Promise((resolve) => socket.on("connect", resolve)));
result.joined = (await step(socket.emitWithAck("joinProject", project))).ok;
socket.io.engine.close();  // the transport drops; the manager reconnects
await step(new Promise((resolve) => socket.once("connect", resolve)));
result.recovered = socket.recovered;
const back = { projectId: project, message: "back" };
result.chat = await step(socket.emitWithAck("chatMessage", back));
socket.disconnect();
console.log(JSON.stringify(result));
process.exit(0);
"""


def run_node(args: list[Any], script: str = SCRIPT, timeout: float = 30) -> dict[str, Any]:
    """Run ``script`` (an ES module) with the stock client; the JSON of its last line."""
    done = subprocess.run(
        [str(node_executable()), "--input-type=module", "-", json.dumps(args)],
        input=script,
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_refusal_retry_and_recovery(tmp_path: Path) -> None:
    async with serving(tmp_path) as svc:
        await recovery_scenario(svc)


async def recovery_scenario(svc: Service) -> None:
    project = await make_project(svc, "Node", {"ada": "Ada", "bob": "Bob"})
    bob = svc.tab(token("bob", "Bob"))
    await bob.connect()
    try:
        await bob.call("joinProject", project)
        args = [svc.hub_url, token("ada", "Ada"), token("ada", expires_in=-1), project]
        result = await trio.to_thread.run_sync(run_node, args)
        assert result["refusal"] == "Authentication failed: invalid token"
        assert result["retried"] is True
        assert result["joined"] is True
        assert result["recovered"] is True
        assert result["chat"]["ok"] is True
        (message,) = await bob.next("newMessage")
        assert message["message"] == "back" and message["userId"] == "ada"
        # the cut counted as leaving, the recovery as coming back, the end as leaving
        await bob.next("userLeft", 2)
        presence = [name for name, _ in bob.events if name in ("userJoined", "userLeft")]
        assert presence == ["userJoined", "userLeft", "userJoined", "userLeft"]
    finally:
        await bob.disconnect()
    assert svc.running.realtime.room_users() == {}


RESUME_SCRIPT = """
import { io } from "socket.io-client";
const [url, shortLived, expiresAt, fresh, other, project] = JSON.parse(process.argv.at(-1));
const step = (promise) => Promise.race([
  promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 8000)),
]);
const chat = (socket, message) =>
  step(socket.emitWithAck("chatMessage", { projectId: project, message }));
const result = {};

// 1. the token expires while the connection is down: the resume is refused as usual; with a
//    fresh token the same session comes back, rooms and all
const socket = io(url, { auth: { token: shortLived }, transports: ["websocket"] });
await step(new Promise((resolve) => socket.on("connect", resolve)));
result.firstId = socket.id;
result.joined = (await step(socket.emitWithAck("joinProject", project))).ok;
const untilExpired = Math.max(0, expiresAt * 1000 - Date.now() + 1100);
await new Promise((resolve) => setTimeout(resolve, untilExpired));
socket.io.engine.close();
result.refusal = await step(new Promise((resolve) =>
  socket.once("connect_error", (err) => resolve(err.message))));
socket.auth.token = fresh;
socket.connect();
await step(new Promise((resolve) => socket.once("connect", resolve)));
result.recovered = socket.recovered;
result.sameId = socket.id === result.firstId;
result.chat = await chat(socket, "back with a fresh token");

// 2. a resume with another user's token: a new socket, none of the old one's rooms
socket.auth.token = other;
socket.io.engine.close();
await step(new Promise((resolve) => socket.once("connect", resolve)));
result.otherRecovered = socket.recovered;
result.otherSameId = socket.id === result.firstId;
result.otherChat = await chat(socket, "not in your room");
socket.disconnect();
console.log(JSON.stringify(result));
process.exit(0);
"""


async def test_a_resume_is_authenticated_again(tmp_path: Path) -> None:
    """Connection state recovery does not outlive the credentials: the stock client's
    resume with an expired token gets the usual ``connect_error``, and a resume with
    another user's token gets a socket of its own."""
    async with serving(tmp_path) as svc:
        project = await make_project(svc, "Resume", {"ada": "Ada", "bob": "Bob"})
        short_lived = token("ada", "Ada", expires_in=1.5)
        expires_at = jwt_exp(short_lived)
        args = [
            svc.hub_url,
            short_lived,
            expires_at,
            token("ada", "Ada"),
            token("bob", "Bob"),
            project,
        ]
        result = await trio.to_thread.run_sync(lambda: run_node(args, RESUME_SCRIPT, 40))
        assert result["joined"] is True
        assert result["refusal"] == "Authentication failed: invalid token"
        assert result["recovered"] is True and result["sameId"] is True
        assert result["chat"]["ok"] is True
        assert result["otherRecovered"] is False and result["otherSameId"] is False
        assert result["otherChat"] == {"ok": False, "error": "Join the project first"}
        assert svc.running.realtime.stats["recoveries_declined"] == 1


def jwt_exp(encoded: str) -> int:
    exp: int = jwt.decode(encoded, options={"verify_signature": False})["exp"]
    return exp
