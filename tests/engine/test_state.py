"""The session's state machine as data: the table itself, then a Session driven through
every sequence of events, checked against the table (as h11's tests check its machine).

No streams and no clock run here: a session is made with a stand-in transport, and its
transition methods are called as the transports would call them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest
import trio
import trio.testing

from server.hub.engine.config import EngineConfig
from server.hub.engine.heartbeat import Heartbeat
from server.hub.engine.session import RequestInfo, Session
from server.hub.engine.state import (
    OPEN_STATES,
    POLLING_STATES,
    TRANSITIONS,
    Event,
    State,
    initial_state,
    next_state,
)
from server.hub.engine.wire import CLOSE, NOOP, PING, Wire
from server.hub.protocol import engineio as eio

S, E = State, Event


class Stub:
    """A transport that takes nothing directly and counts how often it is told to send."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1

    def try_write(self, wire: Wire) -> bool:
        return False

    def unread_for(self) -> float:
        return 0.0


def new_session(transport: str = "polling", removed: list[Session] | None = None) -> Session:
    config = EngineConfig()
    request = RequestInfo("GET", "/socket.io/", "/socket.io/", {}, {}, None)
    gone = removed if removed is not None else []
    return Session(config, Heartbeat(25, 20), request, Stub(transport), gone.append, lambda _: None)


# ---- the table ----------------------------------------------------------------------------
def test_every_state_has_a_row_and_every_move_lands_on_a_state() -> None:
    assert set(TRANSITIONS) == set(State)
    for row in TRANSITIONS.values():
        assert set(row.values()) <= set(State)


def test_closed_is_final_and_everything_else_can_be_aborted() -> None:
    assert TRANSITIONS[S.CLOSED] == {}
    for state in set(State) - {S.CLOSED}:
        assert next_state(state, E.ABORT) is S.CLOSED


def test_every_open_state_closes_and_a_closing_one_only_flushes_or_aborts() -> None:
    for state in OPEN_STATES:
        assert next_state(state, E.CLOSE) is S.CLOSING
        assert next_state(state, E.FLUSHED) is None  # an open session has nothing to flush
    assert TRANSITIONS[S.CLOSING] == {E.FLUSHED: S.CLOSED, E.ABORT: S.CLOSED}


def test_only_polling_begins_an_upgrade_and_only_a_probe_leads_to_it() -> None:
    assert [s for s in State if next_state(s, E.BEGIN_UPGRADE)] == [S.POLLING]
    assert [s for s in State if next_state(s, E.PROBE)] == [S.UPGRADING]
    assert [s for s in State if next_state(s, E.UPGRADE)] == [S.PROBED]
    assert {s for s in State if next_state(s, E.UPGRADE_FAILED)} == {S.UPGRADING, S.PROBED}
    assert {next_state(s, E.UPGRADE_FAILED) for s in (S.UPGRADING, S.PROBED)} == {S.POLLING}


def reachable(start: State) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        for state in TRANSITIONS[todo.pop()].values():
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return seen


def test_what_each_kind_of_session_can_become() -> None:
    assert initial_state("polling") is S.POLLING
    assert initial_state("websocket") is S.WEBSOCKET
    assert reachable(S.POLLING) == set(State)
    # a session on a WebSocket never goes back to polling, nor upgrades again
    assert reachable(S.WEBSOCKET) == {S.WEBSOCKET, S.CLOSING, S.CLOSED}
    assert POLLING_STATES.isdisjoint(reachable(S.WEBSOCKET))


@pytest.mark.parametrize(
    ("events", "states"),
    [
        # the upgrade, as the protocol runs it
        ([E.BEGIN_UPGRADE, E.PROBE, E.UPGRADE], [S.UPGRADING, S.PROBED, S.WEBSOCKET]),
        # "5" before the probe is refused; the WebSocket then goes, and polling goes on
        ([E.BEGIN_UPGRADE, E.UPGRADE, E.UPGRADE_FAILED], [S.UPGRADING, None, S.POLLING]),
        # a second WebSocket while one is upgrading, or after, is refused
        ([E.BEGIN_UPGRADE, E.BEGIN_UPGRADE], [S.UPGRADING, None]),
        (
            [E.BEGIN_UPGRADE, E.PROBE, E.UPGRADE, E.BEGIN_UPGRADE],
            [S.UPGRADING, S.PROBED, S.WEBSOCKET, None],
        ),
        # a failed upgrade may be tried again
        (
            [E.BEGIN_UPGRADE, E.PROBE, E.UPGRADE_FAILED, E.BEGIN_UPGRADE],
            [S.UPGRADING, S.PROBED, S.POLLING, S.UPGRADING],
        ),
        # closed mid-upgrade: the probe and the switch are refused, the flush ends it
        (
            [E.BEGIN_UPGRADE, E.CLOSE, E.PROBE, E.UPGRADE_FAILED, E.FLUSHED],
            [S.UPGRADING, S.CLOSING, None, None, S.CLOSED],
        ),
        ([E.CLOSE, E.CLOSE, E.ABORT, E.ABORT], [S.CLOSING, None, S.CLOSED, None]),
    ],
)
def test_sequences(events: list[Event], states: list[State | None]) -> None:
    """Each event's next state; None where it is refused (and the state stays)."""
    state = S.POLLING
    for event, expected in zip(events, states, strict=True):
        moved = next_state(state, event)
        assert moved is expected, (state, event)
        state = moved or state


# ---- a Session against the table ----------------------------------------------------------
def apply(session: Session, event: Event, websocket: Stub) -> bool:
    """Call the Session method of ``event``, as a transport would; whether it moved."""
    before = session.state
    calls: dict[Event, Callable[[], object]] = {
        E.BEGIN_UPGRADE: session.begin_upgrade,
        E.PROBE: session.probe,
        E.UPGRADE: lambda: session.upgrade(websocket),
        E.UPGRADE_FAILED: session.upgrade_failed,
        E.CLOSE: lambda: session.close("closed by the test"),
        E.FLUSHED: session.take_all,
        E.ABORT: lambda: session.abort("aborted by the test"),
    }
    answer = calls[event]()
    moved = session.state is not before
    if isinstance(answer, bool):
        assert answer is (next_state(before, event) is not None), (before, event)
    return moved


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_a_session_moves_exactly_as_the_table_says(transport: str) -> None:
    """Every sequence of up to four events, from each kind of session: the Session's state
    is the table's, its methods say whether they moved, and what goes with each move is
    done (the CLOSE queued over polling, the queue dropped, the transport switched)."""
    for length in range(1, 5):
        for events in itertools.product(list(Event), repeat=length):
            removed: list[Session] = []
            session = new_session(transport, removed)
            websocket = Stub("websocket")
            model = initial_state(transport)
            for event in events:
                before = session.state
                apply(session, event, websocket)
                model = next_state(model, event) or model
                assert session.state is model, (events, event, before)
                assert session.is_open is (model in OPEN_STATES)
                assert session.polling is (model in POLLING_STATES)
                if event is E.CLOSE and before in POLLING_STATES:
                    assert session.queue[-1] is CLOSE  # a WebSocket ends with its close frame
                if event is E.CLOSE and before is S.WEBSOCKET:
                    assert CLOSE not in session.queue
                if event is E.ABORT and before is not S.CLOSED:
                    assert session.queue == []
                if event is E.UPGRADE and before is S.PROBED:
                    assert session.transport is websocket
            # a session leaves the engine once, whichever way it ends
            assert len(removed) == (0 if session.is_open else 1)
            assert bool(session.close_reason) is not session.is_open


async def test_the_handshake_offers_the_upgrade_to_polling_sessions_only() -> None:
    for transport, upgrades in (("polling", ["websocket"]), ("websocket", [])):
        packet = new_session(transport).handshake_packet()
        assert packet.type is eio.PacketType.OPEN
        assert isinstance(packet.data, str)
        assert json.loads(packet.data)["upgrades"] == upgrades


async def test_a_probe_wakes_a_pending_poll_with_noop() -> None:
    session = new_session()
    assert session.begin_upgrade()
    got: list[list[Wire]] = []

    async def poll() -> None:
        got.append(await session.poll())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        assert session.poll_pending and not got  # UPGRADING: the GET still waits
        assert session.probe()
    assert got == [[NOOP]]
    assert not session.poll_pending


async def test_packets_from_the_client_move_the_session() -> None:
    # an unasked pong is ignored; the pong of the ping that is out schedules the next one
    session = new_session()
    await session.receive(eio.PONG)
    assert session.heartbeat_token is None and not session.awaiting_pong
    session.send_ping()
    assert session.awaiting_pong and session.queue == [PING]
    await session.receive(eio.PONG)
    assert not session.awaiting_pong and session.heartbeat_token is not None
    assert session.heartbeat_token.pending

    # CLOSE with no GET pending: over at once
    session = new_session()
    await session.receive(eio.CLOSE)
    assert session.state is S.CLOSED and session.close_reason == "transport close"

    # CLOSE while a GET waits: that GET ends with NOOP, and then the session is closed
    session = new_session()
    session.poll_pending = True
    await session.receive(eio.CLOSE)
    assert session.state is S.CLOSING and session.queue == [NOOP]
    assert session.take_all() == [NOOP]
    assert session.state is S.CLOSED


def test_ids_are_url_safe_120_bit_and_never_repeat() -> None:
    """Session and socket ids: 20 characters of URL-safe base64 (15 random bytes), drawn
    from a pool refilled by the operating system, distinct across refills."""
    import re

    from server.hub.engine.ids import random_id

    ids = [random_id() for _ in range(3 * 256 + 7)]  # across three refills of the pool
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20}", i) for i in ids)
    assert len(set(ids)) == len(ids)
