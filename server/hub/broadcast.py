"""``hub.to(room).except_(other).volatile.emit(...)``: who a packet goes to, chosen fluently."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from server.hub.adapter import BroadcastOptions
from server.hub.errors import AckTimeout
from server.hub.protocol import socketio as sio

if TYPE_CHECKING:
    from server.hub.namespace import Namespace
    from server.hub.remote import RemoteSocket
    from server.hub.socket import Socket


def check_event(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError(f"event name must be a str, not {type(event).__name__}")
    if event in sio.RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name")


class BroadcastOperator:
    """An immutable selection of sockets in one namespace; each method returns a new one."""

    __slots__ = ("_nsp", "_opts")

    def __init__(self, nsp: Namespace, opts: BroadcastOptions | None = None) -> None:
        self._nsp = nsp
        self._opts = opts or BroadcastOptions()

    def to(self, *rooms: str) -> BroadcastOperator:
        """Only sockets in any of ``rooms`` (repeatable: the rooms add up)."""
        return BroadcastOperator(
            self._nsp, replace(self._opts, rooms=self._opts.rooms | set(rooms))
        )

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        """Not the sockets in any of ``rooms`` (a socket id is a room too)."""
        opts = replace(self._opts, except_rooms=self._opts.except_rooms | set(rooms))
        return BroadcastOperator(self._nsp, opts)

    @property
    def volatile(self) -> BroadcastOperator:
        """Dropped for a client whose queue is full (or that is not connected right now)."""
        return BroadcastOperator(self._nsp, replace(self._opts, volatile=True))

    @property
    def local(self) -> BroadcastOperator:
        """Only sockets of this process, never relayed to other nodes."""
        return BroadcastOperator(self._nsp, replace(self._opts, local=True))

    @property
    def options(self) -> BroadcastOptions:
        return self._opts

    def emit(self, event: str, *args: Any) -> int:
        """Send ``event`` to every selected socket; never waits. Returns the recipients."""
        check_event(event)
        packet = sio.Packet(sio.PacketType.EVENT, self._nsp.name, [event, *args])
        return self._nsp.adapter.broadcast(packet, self._opts)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send ``event`` to every selected socket and collect their acknowledgements.

        Returns one response per socket that answered (the first argument of its ack).
        Raises :class:`AckTimeout` if any did not answer within ``timeout`` seconds.
        """
        check_event(event)
        nsp = self._nsp
        ack_id = nsp.next_ack_id()
        packet = sio.Packet(sio.PacketType.EVENT, nsp.name, [event, *args], ack_id)
        sockets = nsp.adapter.broadcast_with_ack(packet, self._opts)
        limit = timeout if timeout is not None else nsp.hub.ack_timeout
        others = None
        if not self._opts.local:
            others = nsp.adapter.acks_from_others(packet, self._opts, limit)
        responses: list[Any] = []
        if not sockets and others is None:
            return responses
        done = trio.Event()
        pending = len(sockets)
        if not pending:
            done.set()

        def answered(value: Any) -> None:
            nonlocal pending
            responses.append(value)
            pending -= 1
            if pending == 0:
                done.set()

        def gone() -> None:
            nonlocal pending
            pending -= 1
            if pending == 0:
                done.set()

        for socket in sockets:
            socket._expect_ack(ack_id, answered, gone)
        with trio.move_on_after(limit):
            await done.wait()
            if others is not None:
                await others.wait()
        if others is not None:
            responses.extend(others.answers)
            if others.missing:
                pending += others.missing
        if pending:
            for socket in sockets:
                socket._forget_ack(ack_id)
            raise AckTimeout(f"{pending} clients did not acknowledge {event!r}")
        return responses

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        """The selected sockets: this process's, and with a bridge the other processes'
        (as :class:`~server.hub.remote.RemoteSocket`), unless ``local``."""
        return await self._nsp.adapter.fetch_sockets(self._opts)

    async def sockets_join(self, *rooms: str) -> None:
        await self._nsp.adapter.add_sockets(self._opts, rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self._nsp.adapter.del_sockets(self._opts, rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._nsp.adapter.disconnect_sockets(self._opts, close)
