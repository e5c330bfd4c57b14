"""A TCP proxy on loopback for the cluster tests: a client's path to a node that the test can
cut, or point at another node, while the client and the nodes run unmodified.

It runs inside the test's own task tree, like the hubs in ``tests/bridge/nodes.py``::

    async with tcp_proxy(node_port) as proxy:       # or: proxy = TcpProxy(node_port)
        connect_a_client(proxy.port)                 #     await nursery.start(proxy.run)
        proxy.switch(other_node_port)                # later connections go to the other node
        await proxy.cut()                            # live ones break; the client reconnects

Each accepted connection gets a connection to the current target and two tasks, one pumping
each way. An end of stream on one side is passed on as an end of stream (half-close), so a
peer that closes politely is seen closing politely; a reset on one side resets the other, and
:meth:`TcpProxy.cut` resets both sides of every live connection (``SO_LINGER`` 0, so the
peers see ``ECONNRESET`` rather than a clean end). A target that refuses has the client
closed at once, the way a refused connection looks to it. Whatever happens to a connection
stays in it: the proxy keeps accepting until its task is cancelled.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

HOST = "127.0.0.1"
_CHUNK = 65536
#: How long the proxy waits for its target to accept; on loopback a live port answers at once.
_CONNECT_TIMEOUT = 5.0


def _reset_on_close(stream: trio.SocketStream) -> None:
    """Make the next close send RST instead of FIN: linger on, for zero seconds."""
    with contextlib.suppress(OSError):  # already closed: nothing left to reset
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's stream, then the target's once it is open."""

    client: trio.SocketStream
    target_port: int
    upstream: trio.SocketStream | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    aborted: bool = False

    def reset(self) -> None:
        """Abort both sides: the pumps stop, and the closes that follow send RST."""
        self.aborted = True
        self.scope.cancel()


class TcpProxy:
    """Forwards connections made to ``127.0.0.1:port`` to ``127.0.0.1:target_port``.

    ``port`` is known once :meth:`run` has started (it is what ``nursery.start`` returns);
    pass ``port=`` to listen on a given one instead of a free one. Counters, for assertions:
    ``accepted`` (connections the proxy took), ``refused`` (of those, how many found the
    target refusing), ``targets`` (connections opened per target port), ``live`` (proxied
    connections open now) and ``errors`` (anything unexpected that ended a connection; the
    tests may assert it stays empty).
    """

    def __init__(self, target_port: int, *, host: str = HOST, port: int = 0) -> None:
        self.host = host
        self.target_port = target_port
        self._wanted_port = port
        self._port: int | None = None
        self._links: set[_Link] = set()
        self.accepted = 0
        self.refused = 0
        self.targets: Counter[int] = Counter()
        self.errors: list[BaseException] = []

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not listening yet: start TcpProxy.run first")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the proxy as a Socket.IO client's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def live(self) -> int:
        return len(self._links)

    def switch(self, target_port: int) -> None:
        """Send later connections to `target_port`; those already open stay where they are."""
        self.target_port = target_port

    async def cut(self) -> int:
        """Reset every live connection, both ways, and return once all are closed.

        Returns how many were cut. Connections accepted after the call are not affected.
        """
        links = list(self._links)
        for link in links:
            link.reset()
        for link in links:
            await link.done.wait()
        return len(links)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the port to ``nursery.start``, and proxy until cancelled."""
        listeners = await trio.open_tcp_listeners(self._wanted_port, host=self.host)
        listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        async with listener, trio.open_nursery() as nursery:
            self._port = listener.socket.getsockname()[1]
            task_status.started(self._port)
            while True:
                client = await listener.accept()
                self.accepted += 1
                nursery.start_soon(self._serve, client)

    async def _serve(self, client: trio.SocketStream) -> None:
        link = _Link(client, self.target_port)
        self._links.add(link)
        try:
            with link.scope:
                await self._proxy(link)
        except Exception as exc:  # one connection's failure is not the proxy's
            self.errors.append(exc)
        finally:
            self._links.discard(link)
            for stream in (link.upstream, client):
                if stream is not None:
                    if link.aborted:
                        _reset_on_close(stream)
                    await trio.aclose_forcefully(stream)
            link.done.set()

    async def _proxy(self, link: _Link) -> None:
        try:
            with trio.fail_after(_CONNECT_TIMEOUT):
                link.upstream = await trio.open_tcp_stream(self.host, link.target_port)
        except (OSError, trio.TooSlowError):
            self.refused += 1
            link.aborted = True
            return
        self.targets[link.target_port] += 1
        try:
            async with trio.open_nursery() as pumps:
                pumps.start_soon(_pump, link.client, link.upstream)
                pumps.start_soon(_pump, link.upstream, link.client)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            # one side was reset (or closed under us): reset the other side too
            link.reset()


async def _pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    """Copy `source` to `sink` until `source` ends, then end `sink`'s sending side."""
    while data := await source.receive_some(_CHUNK):
        await sink.send_all(data)
    await sink.send_eof()


@asynccontextmanager
async def tcp_proxy(
    target_port: int, *, host: str = HOST, port: int = 0
) -> AsyncIterator[TcpProxy]:
    """A :class:`TcpProxy` running in a nursery of its own for the block's duration."""
    proxy = TcpProxy(target_port, host=host, port=port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
