"""The parts of Node's server API that the hub had not: dynamic namespaces, ``socket.use``,
catch-all listeners both ways and their removal, ``timeout(s).emit_with_ack``, server-side
events, ``hub.of`` returning one object. With the stock clients: socket.io-client (Node) and
python-socketio."""

from __future__ import annotations

import re
from typing import Any

import pytest
import socketio
import trio

from server.hub import EventRefused, Hub, HubConfig, Namespace, ParentNamespace, Socket
from tests.hub.conftest import serving
from tests.hub.test_recovery import node_client, until


def python_client(url: str, namespace: str = "/", **options: Any) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, namespaces=[namespace], transports=["websocket"], wait_timeout=5)
    return client


async def test_of_returns_the_same_namespace_and_a_config_is_one_object() -> None:
    hub = Hub(max_queue=8, connect_timeout=3)
    assert hub.of("/x") is hub.of("x") is hub.namespaces["/x"]
    pattern = re.compile(r"^/team-\d+$")
    assert hub.of(pattern) is hub.of(pattern)
    assert isinstance(hub.of(pattern), ParentNamespace)
    assert hub.config == HubConfig.of(max_queue=8, connect_timeout=3)
    assert hub.config.engine.max_queue == 8 and hub.engine.config is hub.config.engine
    with pytest.raises(TypeError):
        Hub(no_such_option=1)


async def test_dynamic_namespaces_with_the_node_client() -> None:
    """A regular expression makes namespaces on demand; they share the parent's handlers
    and middlewares, have rooms of their own, and the parent's emit reaches them all."""
    hub = Hub()
    teams = hub.of(re.compile(r"^/team-\d+$"))
    seen: list[str] = []

    @teams.use
    def who(socket: Socket) -> None:
        socket.data["user"] = socket.handshake.auth.get("user")

    @teams.on("connect")
    def on_connect(socket: Socket) -> None:
        seen.append(socket.nsp.name)
        socket.emit("welcome", socket.nsp.name, socket.data["user"])

    async with serving(hub) as url:
        async with node_client(f"{url}/team-7", "websocket", {"user": "ada"}) as ada:
            assert (await ada.events("welcome", 1))[0] == ["/team-7", "ada"]

            @teams.on("hello")  # registered on the parent after the child exists: applies
            def hello(socket: Socket, text: str) -> None:
                socket.nsp.emit("hello", socket.data["user"], text)

            async with node_client(f"{url}/team-8", "websocket", {"user": "bob"}) as bob:
                await bob.events("welcome", 1)
                await ada.command(cmd="emit", event="hello", args=["hi"])
                assert (await ada.events("hello", 1))[0] == ["ada", "hi"]
                teams.emit("news", 1)  # the parent emits on every child
                assert (await ada.events("news", 1))[0] == [1]
                assert (await bob.events("news", 1))[0] == [1]
                assert set(seen) == {"/team-7", "/team-8"}
                assert "hello" not in [m.get("name") for m in bob.seen]  # rooms of their own
        async with node_client(f"{url}/other", "websocket", {}) as other:
            refusal = await other.expect(lambda m: m["type"] == "connect_error")
            assert refusal["message"] == "Invalid namespace"


async def test_a_function_may_decide_and_sees_the_auth() -> None:
    hub = Hub()

    async def allowed(name: str, auth: dict[str, Any]) -> bool:
        return name.startswith("/room-") and auth.get("key") == "yes"

    rooms = hub.of(allowed)

    @rooms.on("ping")
    def ping(socket: Socket) -> str:
        return f"pong from {socket.nsp.name}"

    async with serving(hub) as url:

        def scenario() -> tuple[Any, str]:
            good = socketio.Client(reconnection=False)
            good.connect(url, namespaces=["/room-1"], auth={"key": "yes"}, transports=["websocket"])
            try:
                answer = good.call("ping", namespace="/room-1", timeout=5)
            finally:
                good.disconnect()
            bad = socketio.Client(reconnection=False)
            try:
                bad.connect(url, namespaces=["/room-2"], auth={"key": "no"}, wait_timeout=2)
            except socketio.exceptions.ConnectionError as exc:
                return answer, str(exc)
            bad.disconnect()
            return answer, "connected"

        answer, refused = await trio.to_thread.run_sync(scenario)
    assert answer == "pong from /room-1"
    assert "/room-2" in refused or "namespace" in refused.lower()


async def test_socket_use_refuses_a_packet_and_the_error_handler_hears_of_it() -> None:
    hub = Hub()
    errors: list[Any] = []

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        @socket.use
        def only_short(socket: Socket, event: str, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], str) and len(args[0]) > 5:
                raise EventRefused("too long", {"error": "too long"})

    @hub.on("error")
    def on_error(socket: Socket, error: EventRefused) -> None:
        errors.append(error.reason)

    @hub.on("say")
    def say(socket: Socket, text: str) -> str:
        return f"said {text}"

    async with serving(hub) as url:

        def scenario() -> list[Any]:
            client = python_client(url)
            try:
                return [client.call("say", "hi", timeout=5), client.call("say", "far too long")]
            finally:
                client.disconnect()

        answers = await trio.to_thread.run_sync(scenario)
    assert answers == ["said hi", {"error": "too long"}]
    assert errors == ["too long"]


async def test_catch_all_listeners_both_ways_and_their_removal() -> None:
    hub = Hub()
    incoming: list[Any] = []
    outgoing: list[Any] = []
    sockets: list[Socket] = []

    def log_in(event: str, *args: Any) -> None:
        incoming.append((event, *args))

    def log_out(event: str, *args: Any) -> None:
        outgoing.append((event, *args))

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        sockets.append(socket)
        socket.on_any(log_in)
        socket.on_any_outgoing(log_out)

    @hub.on("shout")
    def shout(socket: Socket, text: str) -> None:
        socket.emit("echo", text)
        hub.emit("everyone", text)  # a broadcast is an outgoing packet too

    async with serving(hub) as url:
        client = await trio.to_thread.run_sync(python_client, url)
        try:
            await trio.to_thread.run_sync(client.emit, "shout", "one")
            await until(lambda: len(outgoing) >= 2)
            assert incoming == [("shout", "one")]
            assert outgoing == [("echo", "one"), ("everyone", "one")]
            sockets[0].off_any(log_in)
            sockets[0].off_any_outgoing()
            await trio.to_thread.run_sync(client.emit, "shout", "two")
            await trio.sleep(0.2)
            assert incoming == [("shout", "one")] and len(outgoing) == 2
        finally:
            await trio.to_thread.run_sync(client.disconnect)


async def test_timeout_then_emit_with_ack() -> None:
    """``socket.timeout(s)`` and ``hub.timeout(s)`` set how long one ``emit_with_ack``
    waits, whatever the hub's ``ack_timeout``: Node's stock client never answers (its
    listener takes no callback), python-socketio's answers with its handler's value."""
    hub = Hub(ack_timeout=30)
    results: dict[str, Any] = {}

    @hub.on("connect")
    async def on_connect(socket: Socket) -> None:
        who = socket.handshake.auth.get("who")
        try:
            results[who] = await socket.timeout(0.3 if who == "node" else 5).emit_with_ack(
                "question"
            )
        except TimeoutError as exc:
            results[who] = type(exc).__name__

    async with serving(hub) as url:
        started = trio.current_time()
        async with node_client(url, "websocket", {"who": "node"}):
            await until(lambda: "node" in results)

            def python_answers() -> None:
                client = socketio.Client(reconnection=False)
                client.on("question", lambda *args: "yes")
                client.connect(url, auth={"who": "python"}, transports=["websocket"])
                try:
                    for _ in range(250):  # up to 5 s for the server's question
                        if "python" in results:
                            break
                        client.sleep(0.02)
                finally:
                    client.disconnect()

            await trio.to_thread.run_sync(python_answers)
            try:
                await hub.timeout(0.3).emit_with_ack("question")  # the Node client is there
            except TimeoutError as exc:
                results["everyone"] = type(exc).__name__
    assert results == {"node": "AckTimeout", "python": "yes", "everyone": "AckTimeout"}
    assert trio.current_time() - started < 10  # nothing waited the hub's 30 s


async def test_server_side_events_without_other_nodes() -> None:
    """Alone, a server-side emit reaches no one and waits for no one, as in Node."""
    hub = Hub()
    heard: list[Any] = []
    hub.on_server_side("ping", heard.append)
    hub.server_side_emit("ping", 1)
    assert await hub.server_side_emit_with_ack("ping", 2, timeout=1) == []
    assert heard == []
    nsp: Namespace = hub.of("/x")
    assert await nsp.server_side_emit_with_ack("ping") == []


async def test_empty_children_can_be_dropped_so_names_do_not_pile_up() -> None:
    hub = Hub()
    kept = hub.of(re.compile(r"^/kept-\d+$"))
    dropped = hub.of(re.compile(r"^/gone-\d+$"), cleanup_empty_children=True)
    assert isinstance(kept, ParentNamespace) and isinstance(dropped, ParentNamespace)
    async with serving(hub) as url:

        def visit(names: list[str]) -> None:
            for name in names:
                client = socketio.Client(reconnection=False)
                client.connect(url, namespaces=[name], transports=["websocket"])
                client.disconnect()

        names = [f"/kept-{n}" for n in range(3)] + [f"/gone-{n}" for n in range(3)]
        await trio.to_thread.run_sync(visit, names)
        await until(lambda: not dropped.children)
    assert sorted(kept.children) == ["/kept-0", "/kept-1", "/kept-2"]  # Node's default


async def test_a_parent_acts_on_every_child_and_of_finds_a_child() -> None:
    """``hub.of(name)`` is the child of that name, as Node's ``io.of`` is once a parent made
    it; what the parent is asked (rooms, except, acks, fetch, join) is done in every child.
    python-socketio's clients, on two children."""
    hub = Hub()
    teams = hub.of(re.compile(r"^/team-\d+$"))

    @teams.on("connect")
    def on_connect(socket: Socket) -> None:
        socket.join(socket.handshake.auth["room"])

    async with serving(hub) as url:

        def connect(name: str, nsp: str, room: str) -> tuple[socketio.Client, list[Any]]:
            got: list[Any] = []
            client = socketio.Client(reconnection=False)
            client.on("*", lambda event, *args: got.append((event, *args)), namespace=nsp)
            client.on("question", lambda: f"answer of {name}", namespace=nsp)
            client.connect(
                url,
                namespaces=[nsp],
                auth={"room": room},
                transports=["websocket"],
                wait_timeout=5,
            )
            return client, got

        (a, a_got), (b, b_got), (c, c_got) = [
            await trio.to_thread.run_sync(connect, name, nsp, room)
            for name, nsp, room in (
                ("a", "/team-1", "red"),
                ("b", "/team-2", "red"),
                ("c", "/team-2", "blue"),
            )
        ]
        try:
            await until(lambda: len(teams.children) == 2 and len(hub.of("/team-2").sockets) == 2)
            assert hub.of("/team-2") is teams.children["/team-2"]
            assert "/team-2" not in hub.namespaces
            assert hub.of("/team-2").emit("two", 2) == 2  # the child's own sockets
            assert teams.to("red").emit("red", 1) == 2
            assert teams.except_("red").emit("not-red", 0) == 1
            assert teams.volatile.emit("volatile") == 3
            answers = await teams.timeout(5).emit_with_ack("question")
            assert sorted(answers) == ["answer of a", "answer of b", "answer of c"]
            assert len(await teams.fetch_sockets()) == 3
            await teams.in_("blue").sockets_join("green")
            assert teams.to("green").emit("green") == 1
            await until(lambda: sum(len(g) for g in (a_got, b_got, c_got)) >= 9)
            assert [e[0] for e in a_got] == ["red", "volatile"]
            assert [e[0] for e in b_got] == ["two", "red", "volatile"]
            assert [e[0] for e in c_got] == ["two", "not-red", "volatile", "green"]
        finally:
            for client in (a, b, c):
                await trio.to_thread.run_sync(client.disconnect)


async def test_socket_use_that_fails_refuses_the_event_and_the_error_handler_hears() -> None:
    """A middleware of ``socket.use`` that raises any exception (Node: ``next(err)``) refuses
    the event, and the namespace's ``error`` handler gets the exception."""
    hub = Hub()
    errors: list[Exception] = []
    said: list[str] = []

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        @socket.use
        async def checks(socket: Socket, event: str, args: tuple[Any, ...]) -> None:
            if args == ("bad",):
                raise ValueError("bad input")

    @hub.on("error")
    def on_error(socket: Socket, error: Exception) -> None:
        errors.append(error)

    @hub.on("say")
    def say(socket: Socket, text: str) -> str:
        said.append(text)
        return text

    async with serving(hub) as url:

        def scenario() -> Any:
            client = python_client(url)
            try:
                client.emit("say", "bad")
                return client.call("say", "good", timeout=5)
            finally:
                client.disconnect()

        assert await trio.to_thread.run_sync(scenario) == "good"
    assert said == ["good"]
    assert [type(e) for e in errors] == [ValueError] and str(errors[0]) == "bad input"
    assert hub.stats["handler_errors"] == 1


async def test_catch_all_listeners_of_a_socket_may_be_async() -> None:
    hub = Hub()
    heard: list[tuple[str, Any]] = []

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        async def listener(event: str, *args: Any) -> None:
            await trio.lowlevel.checkpoint()
            heard.append((event, *args))

        socket.on_any(listener)

    @hub.on("ping")
    def ping(socket: Socket, n: int) -> int:
        return n

    async with serving(hub) as url:

        def scenario() -> Any:
            client = python_client(url)
            try:
                return client.call("ping", 7, timeout=5)
            finally:
                client.disconnect()

        assert await trio.to_thread.run_sync(scenario) == 7
    await until(lambda: heard)
    assert heard == [("ping", 7)]
