"""The cluster tests' TCP proxy (``tests/bridge/tcp_proxy.py``) against echo servers on
loopback: bytes both ways, switching targets, cutting live connections, refused targets."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import trio

from tests.bridge.redis_server import free_port
from tests.bridge.tcp_proxy import HOST, TcpProxy, tcp_proxy


@dataclass
class EchoServer:
    """Greets each connection with its name and a newline, then echoes what it receives.

    ``endings`` says how each of its connections ended: ``"eof"`` or ``"reset"``.
    """

    name: bytes
    port: int = 0
    endings: list[str] = field(default_factory=list)

    async def handle(self, stream: trio.SocketStream) -> None:
        ending = "eof"
        try:
            await stream.send_all(self.name + b"\n")
            while data := await stream.receive_some(65536):
                await stream.send_all(data)
        except (trio.BrokenResourceError, OSError):
            ending = "reset"
        finally:
            self.endings.append(ending)
            await trio.aclose_forcefully(stream)


async def echo_server(nursery: trio.Nursery, name: bytes) -> EchoServer:
    server = EchoServer(name)
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host=HOST))
    server.port = listeners[0].socket.getsockname()[1]
    return server


async def receive_exactly(stream: trio.SocketStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        assert chunk, f"end of stream after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


async def how_it_ends(stream: trio.SocketStream) -> str:
    """Read until the stream ends: ``"eof"`` for a clean end, ``"reset"`` for a broken one."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        return "reset"
    return "eof"


async def dial(proxy: TcpProxy) -> tuple[trio.SocketStream, bytes]:
    """A connection through the proxy, and the name of the echo server behind it."""
    stream = await trio.open_tcp_stream(HOST, proxy.port)
    name = (await receive_exactly(stream, 2)).rstrip(b"\n")
    return stream, name


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_bytes_flow_both_ways(nursery: trio.Nursery) -> None:
    a = await echo_server(nursery, b"A")
    payload = os.urandom(1 << 20)  # more than the socket buffers: the pumps must keep pace
    with trio.fail_after(10):
        async with tcp_proxy(a.port) as proxy:
            stream, name = await dial(proxy)
            assert name == b"A"
            echoed = b""

            async def read_back() -> None:
                nonlocal echoed
                echoed = await receive_exactly(stream, len(payload))

            async with trio.open_nursery() as both:
                both.start_soon(read_back)
                await stream.send_all(payload)
            assert echoed == payload

            # a half-close is passed on: the server sees the end, closes, and so do we
            await stream.send_eof()
            assert await how_it_ends(stream) == "eof"
            await wait_until(lambda: a.endings == ["eof"])
            await stream.aclose()
            await wait_until(lambda: proxy.live == 0)
            assert (proxy.accepted, proxy.refused, proxy.targets[a.port]) == (1, 0, 1)
            assert proxy.errors == []


async def test_switch_sends_new_connections_elsewhere(nursery: trio.Nursery) -> None:
    a = await echo_server(nursery, b"A")
    b = await echo_server(nursery, b"B")
    with trio.fail_after(10):
        async with tcp_proxy(a.port) as proxy:
            first, name = await dial(proxy)
            assert name == b"A"
            proxy.switch(b.port)
            second, name = await dial(proxy)
            assert name == b"B"
            # the connection made before the switch still reaches A
            for stream, word in ((first, b"old"), (second, b"new")):
                await stream.send_all(word)
                assert await receive_exactly(stream, len(word)) == word
            assert proxy.live == 2
            assert proxy.targets == {a.port: 1, b.port: 1}
            await first.aclose()
            await second.aclose()


async def test_cut_resets_live_connections_and_new_ones_get_through(
    nursery: trio.Nursery,
) -> None:
    a = await echo_server(nursery, b"A")
    b = await echo_server(nursery, b"B")
    with trio.fail_after(10):
        async with tcp_proxy(a.port) as proxy:
            streams = [(await dial(proxy))[0] for _ in range(3)]
            await streams[0].send_all(b"unread")  # data in flight does not hold the cut back
            await wait_until(lambda: proxy.live == 3)
            proxy.switch(b.port)
            assert await proxy.cut() == 3
            assert proxy.live == 0
            # both sides of each one see it broken: the clients here, the server behind
            for stream in streams:
                assert await how_it_ends(stream) == "reset"
                await stream.aclose()
            await wait_until(lambda: len(a.endings) == 3)
            assert a.endings == ["reset"] * 3
            # the client reconnects through the proxy, to the new target
            again, name = await dial(proxy)
            assert name == b"B"
            await again.send_all(b"hello")
            assert await receive_exactly(again, 5) == b"hello"
            assert await proxy.cut() == 1
            assert await how_it_ends(again) == "reset"
            await again.aclose()
            assert proxy.errors == []


async def test_refused_target_closes_the_client_and_the_proxy_goes_on(
    nursery: trio.Nursery,
) -> None:
    nobody = free_port()  # nothing listens there
    a = await echo_server(nursery, b"A")
    with trio.fail_after(10):
        async with tcp_proxy(nobody) as proxy:
            for _ in range(2):
                stream = await trio.open_tcp_stream(HOST, proxy.port)
                assert await how_it_ends(stream) == "reset"
                await stream.aclose()
            await wait_until(lambda: proxy.refused == 2)
            assert proxy.live == 0
            proxy.switch(a.port)
            stream, name = await dial(proxy)
            assert name == b"A"
            assert (proxy.accepted, proxy.refused) == (3, 2)
            assert proxy.errors == []
            await stream.aclose()


async def test_one_connection_reset_leaves_the_others_alone(nursery: trio.Nursery) -> None:
    a = await echo_server(nursery, b"A")
    with trio.fail_after(10):
        proxy = TcpProxy(a.port)
        async with trio.open_nursery() as inner:
            port = await inner.start(proxy.run)
            assert port == proxy.port
            doomed, _ = await dial(proxy)
            kept, _ = await dial(proxy)
            # the client resets its own connection: the reset reaches the server behind
            doomed.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await doomed.aclose()
            await wait_until(lambda: a.endings == ["reset"])
            await wait_until(lambda: proxy.live == 1)
            await kept.send_all(b"still here")
            assert await receive_exactly(kept, 10) == b"still here"
            await kept.aclose()
            inner.cancel_scope.cancel()
        assert proxy.errors == []
