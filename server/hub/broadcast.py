"""``hub.to(room).except_(other).volatile.emit(...)``: who a packet goes to, chosen fluently.

A :class:`BroadcastOperator` is built from its namespace's adapter alone (as in socket.io's
``broadcast-operator.ts``): it knows the namespace only as a :class:`BroadcastTarget`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import trio

from server.hub.adapter import Adapter, SocketLike
from server.hub.errors import AckTimeout
from server.hub.protocol import socketio as sio
from server.hub.selection import BroadcastOptions


def check_event(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError(f"event name must be a str, not {type(event).__name__}")
    if event in sio.RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name")


class BroadcastTarget(Protocol):
    """What a broadcast needs of its namespace."""

    @property
    def name(self) -> str: ...

    @property
    def adapter(self) -> Adapter: ...

    @property
    def ack_timeout(self) -> float:
        """Seconds an ``emit_with_ack`` waits by default."""
        ...

    def next_ack_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A :class:`BroadcastTarget` made of its parts (for what is not a namespace: the
    snapshot of another node's socket acts through one)."""

    name: str
    adapter: Adapter
    ack_timeout: float
    next_ack_id: Callable[[], int]


class BroadcastOperator:
    """An immutable selection of sockets in one namespace; each method returns a new one."""

    __slots__ = ("_opts", "_target", "_timeout")

    def __init__(
        self,
        target: BroadcastTarget,
        opts: BroadcastOptions | None = None,
        timeout: float | None = None,
    ) -> None:
        self._target = target
        self._opts = opts or BroadcastOptions()
        self._timeout = timeout

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self._target, replace(self._opts, **changes), self._timeout)

    def to(self, *rooms: str) -> BroadcastOperator:
        """Only sockets in any of ``rooms`` (repeatable: the rooms add up)."""
        return self._with(rooms=self._opts.rooms | set(rooms))

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        """Not the sockets in any of ``rooms`` (a socket id is a room too)."""
        return self._with(except_rooms=self._opts.except_rooms | set(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Dropped for a client whose queue is full (or that is not connected right now)."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only sockets of this process, never relayed to other nodes."""
        return self._with(local=True)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long :meth:`emit_with_ack` waits (instead of the hub's ``ack_timeout``)."""
        return BroadcastOperator(self._target, self._opts, seconds)

    def emit(self, event: str, *args: Any) -> int:
        """Send ``event`` to every selected socket; never waits. Returns this node's
        recipients."""
        check_event(event)
        packet = sio.Packet(sio.PacketType.EVENT, self._target.name, [event, *args])
        return self._target.adapter.broadcast(packet, self._opts)

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send ``event`` to every selected socket and collect their acknowledgements.

        Returns one response per socket that answered (the first argument of its ack).
        Raises :class:`AckTimeout` if any did not answer within ``timeout`` seconds.
        """
        check_event(event)
        target = self._target
        limit = timeout if timeout is not None else self._timeout
        if limit is None:
            limit = target.ack_timeout
        packet = sio.Packet(sio.PacketType.EVENT, target.name, [event, *args], target.next_ack_id())
        acks = target.adapter.broadcast_with_ack(packet, self._opts, limit)
        with trio.move_on_after(limit):
            await acks.wait()
        if acks.missing:
            acks.forget()
            raise AckTimeout(f"{acks.missing} clients did not acknowledge {event!r}")
        return acks.responses

    async def fetch_sockets(self) -> list[SocketLike]:
        """The selected sockets: this process's, and with a cluster adapter the other
        processes' (as :class:`~server.hub.remote.RemoteSocket`), unless ``local``."""
        return await self._target.adapter.fetch_sockets(self._opts)

    async def sockets_join(self, *rooms: str) -> None:
        await self._target.adapter.add_sockets(self._opts, rooms)

    async def sockets_leave(self, *rooms: str) -> None:
        await self._target.adapter.del_sockets(self._opts, rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._target.adapter.disconnect_sockets(self._opts, close)
