"""The Socket.IO Admin UI's protocol (``server/hub/admin.py``), from a client's side.

Packet-level tests speak the namespace ``/admin`` as the UI does, on our raw WebSocket
client; ``tests/node/admin_client.mjs`` does it with the stock ``socket.io-client``, against
our hub and against a Node server on the package's own ``instrument()``; the cluster test
has two hubs on a real redis-server; the last one opens the package's built UI in Chromium.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trio

from server.hub import Hub, Socket
from server.hub.admin import AdminUI, AdminUIOptions, instrument
from server.hub.protocol import socketio as sio
from server.settings import parse
from tests.hub.conftest import serving
from tests.hub.rawclient import RawClient, raw_client
from tests.node_harness import (
    NODE_DIR,
    LineReader,
    NodeHarnessError,
    free_port,
    node_deps_installed,
    node_executable,
    parse_result,
    stop_process,
)
from tests.realtime.harness import serving as service
from tests.realtime.harness import token

USER = "admin"
PASSWORD = "s3cret-ü"
#: Cost 4: the lowest bcrypt takes, so that tests check passwords quickly.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
NODE = node_executable() or "node"
COMMANDS = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]


def build_hub(**options: Any) -> tuple[Hub, AdminUI]:
    """A hub whose clients can join and leave rooms, with the admin UI on ``/admin``."""
    hub = Hub()

    @hub.on("join")
    def join(socket: Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    @hub.on("leave")
    def leave(socket: Socket, room: str) -> list[str]:
        socket.leave(room)
        return sorted(socket.rooms)

    @hub.on("rooms")
    def rooms(socket: Socket) -> list[str]:
        return sorted(socket.rooms)

    @hub.on("hello")
    def hello(socket: Socket, *args: Any) -> None:
        socket.emit("hi", *args)

    admin = instrument(hub, **({"auth": (USER, HASH)} | options))

    # for the tests: answered once every packet the admin client sent before has been
    # handled (plain handlers run in order); and the target hears of it after the rest
    @hub.of("/admin").on("barrier")
    def barrier(socket: Socket, target: str | None = None) -> str:
        if target:
            hub.to(target).emit("marker")
        return "done"

    return hub, admin


@asynccontextmanager
async def admin_hub(**options: Any) -> AsyncIterator[tuple[str, Hub, AdminUI]]:
    hub, admin = build_hub(**options)
    async with serving(hub) as url:
        yield url, hub, admin


async def events(client: RawClient, *names: str, nsp: str = "/admin") -> dict[str, list[Any]]:
    """The next event of each of ``names`` in ``nsp``, in any order, skipping the others."""
    got: dict[str, list[Any]] = {}
    with trio.fail_after(10):
        while len(got) < len(names):
            packet = await client.receive(10)
            if packet.type is sio.PacketType.EVENT and packet.nsp == nsp:
                name = packet.data[0]
                if name in names and name not in got:
                    got[name] = list(packet.data[1:])
    return got


async def next_event(
    client: RawClient, name: str, match: Any = None, nsp: str = "/admin"
) -> list[Any]:
    """The arguments of the next ``name`` event in ``nsp`` (for which ``match(args)``)."""
    with trio.fail_after(10):
        while True:
            packet = await client.receive(10)
            if (
                packet.type is sio.PacketType.EVENT
                and packet.nsp == nsp
                and packet.data[0] == name
                and (match is None or match(packet.data[1:]))
            ):
                return list(packet.data[1:])


async def call(
    client: RawClient,
    event: str,
    *args: Any,
    nsp: str = "/",
    seen: list[tuple[str, list[Any]]] | None = None,
) -> list[Any]:
    """Emit with an ack and return the ack's arguments; the events that come first are
    dropped, or added to ``seen``."""
    ack_id = await client.emit(event, *args, nsp=nsp, ack=True)
    with trio.fail_after(10):
        while True:
            packet = await client.receive(10)
            if packet.type is sio.PacketType.ACK and packet.id == ack_id and packet.nsp == nsp:
                return list(packet.data)
            if seen is not None and packet.type is sio.PacketType.EVENT:
                seen.append((packet.data[0], list(packet.data[1:])))


@asynccontextmanager
async def admin_client(url: str, auth: dict[str, Any] | None = None) -> AsyncIterator[RawClient]:
    async with raw_client(url, nsp=None) as client:
        answer = await client.connect_namespace(
            "/admin", auth or {"username": USER, "password": PASSWORD}
        )
        assert answer.type is sio.PacketType.CONNECT, answer
        yield client


# ---- connecting ---------------------------------------------------------------------------


async def test_wrong_or_missing_credentials_are_refused() -> None:
    async with admin_hub() as (url, _, _):
        for auth in (
            {"username": USER, "password": "wrong"},
            {"username": "someone", "password": PASSWORD},
            {"username": USER},
            {"username": USER, "password": 42},
            {"sessionId": "0123456789abcdef"},
            None,
        ):
            async with raw_client(url, nsp=None) as client:
                answer = await client.connect_namespace("/admin", auth)
                assert answer.type is sio.PacketType.CONNECT_ERROR, auth
                assert answer.data == {"message": "invalid credentials"}


async def test_right_credentials_get_session_config_and_all_sockets() -> None:
    async with (
        admin_hub() as (url, _, _),
        raw_client(url, auth={"name": "target"}) as target,
        admin_client(url) as admin,
    ):
        got = await events(admin, "session", "config", "all_sockets", "server_stats")
        (session,) = got["session"]
        assert isinstance(session, str) and len(session) == 16
        assert got["config"] == [
            {"supportedFeatures": [*COMMANDS, "AGGREGATED_EVENTS", "ALL_EVENTS"]}
        ]
        (sockets,) = got["all_sockets"]
        mine = {s["nsp"]: s for s in sockets}
        assert set(mine) == {"/", "/admin"}
        listed = mine["/"]
        assert listed["id"] == target.sids["/"]
        assert listed["clientId"] == target.handshake["sid"][:12]
        assert listed["transport"] == "websocket"
        assert listed["rooms"] == [target.sids["/"]]
        assert listed["data"] == {}
        shake = listed["handshake"]
        assert shake["address"] == "127.0.0.1"
        assert shake["query"]["transport"] == "websocket"
        assert shake["url"].startswith("/socket.io/?EIO=4")
        assert isinstance(shake["issued"], int) and shake["issued"] > 1_600_000_000_000
        assert shake["time"].endswith("GMT") and shake["secure"] is False
        assert "auth" not in shake  # the package leaves the credentials out, and so do we
        (stats,) = got["server_stats"]
        assert set(stats) == {
            "serverId",
            "hostname",
            "pid",
            "uptime",
            "clientsCount",
            "pollingClientsCount",
            "aggregatedEvents",
            "namespaces",
        }
        assert stats["serverId"] == stats["hostname"]  # one process: the host name
        assert stats["clientsCount"] >= 1 and stats["pollingClientsCount"] == 0
        assert {"name": "/", "socketsCount": 1} in stats["namespaces"]

        # the session id lets the UI back in without the password (a page reload)
        async with admin_client(url, {"sessionId": session}) as again:
            got = await events(again, "config", "all_sockets")
            assert len(got["all_sockets"][0]) == 3  # the target and both admins


async def test_server_stats_every_two_seconds_with_the_aggregated_events() -> None:
    async with admin_hub(server_id="node-a") as (url, _, _), admin_client(url) as admin:
        async with raw_client(url) as target:
            await call(target, "rooms")
        # added up over the stats that follow (each counts what happened since the last)
        totals: dict[str, int] = {}
        wanted = {"rawConnection": 2, "rawDisconnection": 1, "packetsIn": 3, "packetsOut": 4}
        with trio.fail_after(20):
            while any(totals.get(kind, 0) < n for kind, n in wanted.items()):
                (stats,) = await next_event(admin, "server_stats")
                assert stats["serverId"] == "node-a"
                for entry in stats["aggregatedEvents"]:
                    assert entry["timestamp"] % 1000 == 0 and entry["count"] > 0
                    assert set(entry) == {"timestamp", "type", "count"}
                    totals[entry["type"]] = totals.get(entry["type"], 0) + entry["count"]
        # the admin's connection and the target's; the target's close; their CONNECTs,
        # the target's event, and what was sent back (CONNECT answers, the ack, the feed)
        assert set(totals) <= {"rawConnection", "rawDisconnection", "packetsIn", "packetsOut"}


# ---- what happens in the namespaces -------------------------------------------------------


async def test_sockets_rooms_and_events_as_they_happen() -> None:
    async with admin_hub() as (url, _, _), admin_client(url) as admin:
        await events(admin, "all_sockets")
        async with raw_client(url, auth={"x": 1}) as target:
            sid = target.sids["/"]
            assert await call(target, "join", "room-1") == [sorted([sid, "room-1"])]
            assert await call(target, "leave", "room-1") == [[sid]]
            await target.emit("hello", 1, {"two": 2})
            assert await target.receive_event("hi") == [1, {"two": 2}]
        seen = await until(admin, lambda e: e[0] == "room_left" and e[1][1:3] == [sid, sid])
    mine = [(name, args) for name, args in seen if name != "server_stats" and args[0] != "/admin"]
    assert [name for name, _ in mine].count("socket_connected") == 1
    socket, when = next(args for name, args in mine if name == "socket_connected")
    assert (socket["id"], socket["nsp"], socket["rooms"]) == (sid, "/", [sid])
    assert socket["transport"] == "websocket" and socket["clientId"] == target.handshake["sid"][:12]
    assert when.endswith("Z") and "T" in when
    assert all(args[-1].endswith("Z") for _, args in mine)
    # in the order they happened, each with its time last (as the package sends them)
    assert [(name, args[:-1]) for name, args in mine if name != "socket_connected"] == [
        ("room_joined", ["/", sid, sid]),  # its own room, as it connects
        ("event_received", ["/", sid, ["join", "room-1"]]),
        ("room_joined", ["/", "room-1", sid]),
        ("event_received", ["/", sid, ["leave", "room-1"]]),
        ("room_left", ["/", "room-1", sid]),
        ("event_received", ["/", sid, ["hello", 1, {"two": 2}]]),
        ("event_sent", ["/", sid, ["hi", 1, {"two": 2}]]),
        # as Node's instrument() sends them: room_left on the next tick, so after
        ("socket_disconnected", ["/", sid, "transport close"]),
        ("room_left", ["/", sid, sid]),
    ]


async def until(client: RawClient, done: Any, nsp: str = "/admin") -> list[tuple[str, list[Any]]]:
    """Every event in ``nsp`` up to the first ``(name, args)`` for which ``done``."""
    seen: list[tuple[str, list[Any]]] = []
    with trio.fail_after(10):
        while True:
            packet = await client.receive(10)
            if packet.type is sio.PacketType.EVENT and packet.nsp == nsp:
                event = (packet.data[0], list(packet.data[1:]))
                seen.append(event)
                if done(event):
                    return seen


# ---- the UI's commands --------------------------------------------------------------------


async def test_commands_emit_join_leave_and_disconnect() -> None:
    async with (
        admin_hub() as (url, _, _),
        raw_client(url) as target,
        raw_client(url) as other,
        admin_client(url) as admin,
    ):
        await events(admin, "all_sockets")
        sid, other_sid = target.sids["/"], other.sids["/"]
        # emit, to one socket (the UI's filter is a socket id or a room)
        await admin.emit("emit", "/", sid, "fromAdmin", 1, {"x": "y"}, nsp="/admin")
        assert await target.receive_event("fromAdmin") == [1, {"x": "y"}]
        # join and leave, one socket, then every socket of the namespace
        await admin.emit("join", "/", "room-2", sid, nsp="/admin")
        joined = await next_event(admin, "room_joined", lambda a: a[1] == "room-2")
        assert joined[:3] == ["/", "room-2", sid]
        assert await call(target, "rooms") == [sorted([sid, "room-2"])]
        assert await call(other, "rooms") == [[other_sid]]
        await admin.emit("emit", "/", "room-2", "toRoom", nsp="/admin")
        assert await target.receive_event("toRoom") == []
        await admin.emit("leave", "/", "room-2", sid, nsp="/admin")
        await next_event(admin, "room_left", lambda a: a[1:3] == ["room-2", sid])
        assert await call(target, "rooms") == [[sid]]
        await admin.emit("join", "/", "everyone", nsp="/admin")
        await next_event(admin, "room_joined", lambda a: a[1:3] == ["everyone", other_sid])
        assert await call(target, "rooms") == [sorted([sid, "everyone"])]
        assert await call(other, "rooms") == [sorted([other_sid, "everyone"])]
        # a namespace that does not exist is not made for the UI
        await admin.emit("join", "/nowhere", "r", nsp="/admin")
        # _disconnect: from the namespace, then (close) the whole connection
        await admin.emit("_disconnect", "/", False, sid, nsp="/admin")
        with trio.fail_after(10):
            while (packet := await target.receive()).type is not sio.PacketType.DISCONNECT:
                pass
        assert packet.nsp == "/"
        gone = await next_event(admin, "socket_disconnected", lambda a: a[1] == sid)
        assert gone[:3] == ["/", sid, "server namespace disconnect"]
        await admin.emit("_disconnect", "/", True, "everyone", nsp="/admin")
        assert await other.closed()


async def test_read_only_offers_and_obeys_no_command() -> None:
    async with (
        admin_hub(read_only=True) as (url, hub, _),
        raw_client(url) as target,
        admin_client(url) as admin,
    ):
        got = await events(admin, "config", "all_sockets")
        assert got["config"] == [{"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}]
        sid = target.sids["/"]
        await admin.emit("emit", "/", sid, "fromAdmin", nsp="/admin")
        await admin.emit("join", "/", "room-2", sid, nsp="/admin")
        await admin.emit("leave", "/", sid, sid, nsp="/admin")
        await admin.emit("_disconnect", "/", True, sid, nsp="/admin")
        # every packet above was handled (ignored) before the barrier's, and the marker
        # reaches the target after whatever they would have sent it
        assert await call(admin, "barrier", sid, nsp="/admin") == ["done"]
        with trio.fail_after(10):
            while (packet := await target.receive()).type is not sio.PacketType.EVENT:
                pass
        assert packet.data == ["marker"]
        assert await call(target, "rooms") == [[sid]]
        assert len(hub.main.sockets) == 1


async def test_production_mode_sends_stats_only() -> None:
    seen: list[tuple[str, list[Any]]] = []
    async with (
        admin_hub(mode="production") as (url, _, _),
        admin_client(url) as admin,
    ):
        assert await call(admin, "barrier", nsp="/admin", seen=seen) == ["done"]
        async with raw_client(url) as target:
            await call(target, "join", "room-1")
            seen += await until(
                admin, lambda e: e[0] == "server_stats" and _sockets_in(e, "/") == 1
            )
    names = [name for name, _ in seen if name != "server_stats"]
    assert names == ["session", "config"]  # no all_sockets, no socket or room events
    config = next(args for name, args in seen if name == "config")
    assert config == [{"supportedFeatures": [*COMMANDS, "AGGREGATED_EVENTS"]}]


def _sockets_in(event: tuple[str, list[Any]], name: str) -> int:
    for nsp in event[1][0]["namespaces"]:
        if nsp["name"] == name:
            return int(nsp["socketsCount"])
    return 0


async def test_no_auth_only_when_asked_for() -> None:
    async with admin_hub(auth=None) as (url, _, _), admin_client(url, {}) as admin:
        got = [name for name, _ in await until(admin, lambda e: e[0] == "all_sockets")]
        assert "config" in got and "session" not in got  # no session: nothing to skip
    hub = Hub()
    with pytest.raises(TypeError):
        instrument(hub)  # type: ignore[call-arg]
    for bad in ("", "plain-password", HASH[:-1], "$2c$" + HASH[4:]):
        with pytest.raises(ValueError, match="bcrypt hash"):
            instrument(Hub(), auth=(USER, bad))
    with pytest.raises(ValueError, match="mode"):
        instrument(Hub(), auth=None, mode="staging")


# ---- as the service runs it: settings, and the service's own auth ---------------------------

ENV = {"JWT_SECRET": "s" * 32}


def test_off_by_default_and_its_settings() -> None:
    assert parse([], env=ENV).admin_ui is None
    on = parse(["--admin-ui", f"{USER}:{HASH}"], env=ENV).admin_ui
    assert on == AdminUIOptions(auth=(USER, HASH), mode="development")
    from_env = parse(
        [],
        env={
            **ENV,
            "ADMIN_UI": f"ops:team:{HASH}",  # a colon in the name is fine: the hash has none
            "ADMIN_UI_READ_ONLY": "1",
            "ADMIN_UI_MODE": "Production",
            "ADMIN_UI_SERVER_ID": "eu-1",
        },
    ).admin_ui
    assert from_env == AdminUIOptions(
        auth=("ops:team", HASH), read_only=True, server_id="eu-1", mode="production"
    )
    bare = parse(["--admin-ui-no-auth", "--admin-ui-read-only"], env=ENV).admin_ui
    assert bare == AdminUIOptions(auth=None, read_only=True)
    assert "--admin-ui USER:BCRYPT_HASH" in " ".join(_help().split())


def _help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse(["--help"], env=ENV)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (["--admin-ui", HASH], {}, "--admin-ui / ADMIN_UI: expected USER:BCRYPT_HASH"),
        (["--admin-ui", "admin:secret"], {}, "--admin-ui / ADMIN_UI: expected USER:BCRYPT_HASH"),
        ([], {"ADMIN_UI": f":{HASH}"}, "--admin-ui / ADMIN_UI: expected USER:BCRYPT_HASH"),
        (
            ["--admin-ui", f"a:{HASH}", "--admin-ui-no-auth"],
            {},
            "--admin-ui and --admin-ui-no-auth: give one or the other",
        ),
        (["--admin-ui-read-only"], {}, "--admin-ui-read-only, --admin-ui-mode and"),
        ([], {"ADMIN_UI_MODE": "production"}, "--admin-ui-read-only, --admin-ui-mode and"),
        (
            ["--admin-ui-no-auth", "--admin-ui-mode", "staging"],
            {},
            "--admin-ui-mode / ADMIN_UI_MODE: development or production, not 'staging'",
        ),
    ],
    ids=["no-user", "not-a-hash", "empty-user", "both", "read-only-alone", "mode-alone", "mode"],
)
def test_a_bad_admin_ui_setting_is_one_line(
    args: list[str], env: dict[str, str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(args, env={**ENV, **env})
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"python -m server: error: {error}"), last
    assert HASH not in last  # a hash is not secret, but nothing gains from echoing it


async def test_the_service_with_admin_ui_needs_no_jwt_there(tmp_path: Path) -> None:
    options = AdminUIOptions(auth=(USER, HASH), server_id="svc-1")
    async with service(tmp_path, admin_ui=options) as svc:
        # "/" still wants its token; /admin wants the admin's password, and no token
        async with raw_client(svc.hub_url, nsp=None) as stranger:
            refused = await stranger.connect_namespace("/", {})
            assert refused.type is sio.PacketType.CONNECT_ERROR
        async with (
            raw_client(svc.hub_url, auth={"token": token(7, "Grace")}) as user,
            admin_client(svc.hub_url) as admin,
        ):
            got = await events(admin, "config", "all_sockets", "server_stats")
            listed = {s["nsp"]: s for s in got["all_sockets"][0]}
            assert listed["/"]["id"] == user.sids["/"]
            assert listed["/"]["data"] == {"userId": "7", "userName": "Grace", "role": "member"}
            assert got["server_stats"][0]["serverId"] == "svc-1"
            assert len(got["config"][0]["supportedFeatures"]) == 9


# ---- the stock socket.io-client, against ours and against Node's instrument() -------------

ADMIN_CLIENT = NODE_DIR / "admin_client.mjs"
ADMIN_REFERENCE = NODE_DIR / "admin_reference_server.mjs"


def run_admin_client(url: str, read_only: bool) -> dict[str, Any]:
    """``tests/node/admin_client.mjs`` against ``url``: its one JSON line."""
    command = [NODE, str(ADMIN_CLIENT), "--url", url, "--username", USER, "--password", PASSWORD]
    if read_only:
        command.append("--read-only")
    done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    return parse_result(done.stdout.splitlines(), f"admin_client.mjs ({done.stderr[-2000:]})")


def start_admin_reference(port: int, read_only: bool) -> subprocess.Popen[str]:
    """A stock Node Socket.IO server on the package's own ``instrument()``."""
    command = [NODE, str(ADMIN_REFERENCE), "--port", str(port), "--username", USER]
    command += ["--hash", HASH, *(["--read-only"] if read_only else [])]
    proc = subprocess.Popen(command, cwd=NODE_DIR, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        line = LineReader(proc.stdout).next_line(15)
        if line is None or not line.startswith("listening "):
            raise NodeHarnessError(f"the Node admin reference did not start: {line!r}")
    except BaseException:
        stop_process(proc)
        raise
    return proc


@pytest.mark.parametrize("read_only", [False, True], ids=["commands", "read-only"])
async def test_the_stock_client_sees_what_nodes_instrument_shows(read_only: bool) -> None:
    """Connect, refusals, session, config, all_sockets, stats, a socket connecting on
    polling and upgrading, its rooms and events, the commands on another socket, a page
    reload with the session id: the same, ids and times aside, from ours and from Node."""
    if not node_deps_installed() or not (NODE_DIR / "node_modules" / "@socket.io").is_dir():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")
    port = free_port()
    reference = await trio.to_thread.run_sync(start_admin_reference, port, read_only)
    try:
        expected = await trio.to_thread.run_sync(
            run_admin_client, f"http://127.0.0.1:{port}", read_only
        )
    finally:
        await trio.to_thread.run_sync(stop_process, reference)
    assert expected["ok"] is True, expected
    hub, _ = build_hub(server_id="reference", read_only=read_only)
    async with serving(hub) as url:
        got = await trio.to_thread.run_sync(run_admin_client, url, read_only)
    assert got == expected
    # what the comparison stands on
    assert got["wrongPassword"] == got["noCredentials"] == "invalid credentials"
    assert got["secondConnected"]["transport"] == "polling"
    assert got["secondUpdated"] == {"id": "<second>", "nsp": "/", "transport": "websocket"}
    assert ["room_joined", "/", "room-1", "<second>", "<time>"] in got["feed"]
    if read_only:
        assert got["targetGot"] == [["hi", "still here"]]  # its own, and nothing more
        assert got["targetRooms"] == ["<target>"]
    else:
        assert got["targetGot"] == [["fromAdmin", 1, {"x": "y"}]]
        assert got["targetDisconnect"] == "io server disconnect"


# ---- the package's own UI, in Chromium ----------------------------------------------------

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ADMIN_UI_BROWSER = NODE_DIR / "admin_ui_browser.mjs"


async def test_the_stock_dashboard_in_chromium_shows_our_server_and_a_socket(
    tmp_path: Path,
) -> None:
    """``ui/dist`` of ``@socket.io/admin-ui``, served on a loopback port (another origin
    than the hub's, so the hub must allow it: ``--cors-origins``), connected to the service
    through its connection form: the servers page lists our server id, the sockets page a
    socket connected to ``/`` with a token."""
    check_browser()
    ui_port = free_port()
    options = AdminUIOptions(auth=(USER, HASH), server_id="trio-hub-ui-test")
    cors = (f"http://127.0.0.1:{ui_port}",)
    async with (
        service(tmp_path, admin_ui=options, cors_origins=cors) as svc,
        raw_client(svc.hub_url, auth={"token": token(3, "Ada")}) as user,
    ):
        command = [NODE, str(ADMIN_UI_BROWSER), "--hub", svc.hub_url, "--ui-port", str(ui_port)]
        command += ["--username", USER, "--password", PASSWORD]
        command += ["--server-id", "trio-hub-ui-test", "--socket", user.sids["/"]]
        command += ["--screenshots", str(tmp_path), "--chromium", str(CHROMIUM)]

        def browse() -> dict[str, Any]:
            done = subprocess.run(
                command, cwd=NODE_DIR, capture_output=True, text=True, timeout=120
            )
            return parse_result(
                done.stdout.splitlines(), f"admin_ui_browser ({done.stderr[-2000:]})"
            )

        result = await trio.to_thread.run_sync(browse)
    for path in result.get("screenshots", []):
        print("screenshot:", path)
    assert result["ok"] is True, result
    assert len(result["screenshots"]) == 3
    assert all(size > 10_000 for size in sizes(result["screenshots"]))


def check_browser() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    if not (NODE_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("Node dependencies missing: run `make install` (npm ci in tests/node)")


def sizes(paths: list[str]) -> list[int]:
    return [Path(p).stat().st_size for p in paths]
