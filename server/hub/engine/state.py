"""The Engine.IO session's state machine: every state and every move between them is here.

A session is in one :class:`State`. What moves it is an :class:`Event`, and
:data:`TRANSITIONS` is the whole of what is allowed: an event that a state does not list is
refused, and the state stays. :class:`~server.hub.engine.session.Session` has one method per
event (``begin_upgrade``, ``probe``, ``upgrade``, ``upgrade_failed``, ``close``, ``abort``,
and ``take_all`` for ``FLUSHED``), which the transports and the heartbeat call; each returns
whether the move was made, and does what goes with it (waking a poll, switching transports,
queueing the CLOSE packet). This module knows no transport, no queue and no clock, so the
table can be read, and tested, as data.

::

    POLLING ──BEGIN_UPGRADE──▶ UPGRADING ──PROBE──▶ PROBED ──UPGRADE──▶ WEBSOCKET
       ▲                           │                  │
       └─────────────UPGRADE_FAILED┴──────────────────┘

    every open state ──CLOSE──▶ CLOSING ──FLUSHED──▶ CLOSED
    every state but CLOSED ──ABORT──▶ CLOSED

A session starts in ``POLLING`` or ``WEBSOCKET``, after the transport of its handshake. The
transport is part of the state because what the protocol allows depends on it: only a
polling session may be upgraded (a second WebSocket for a sid that has one is accepted and
closed, as Node's server does), and once upgraded, polling requests for its sid are refused.
A session upgraded to a WebSocket is in every other way one that started on it.
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    #: Open, carried by long-polling; no WebSocket has connected with its sid.
    POLLING = "polling"
    #: Still polling; a WebSocket with its sid has connected, and not probed yet.
    UPGRADING = "upgrading"
    #: Still polling; that WebSocket sent ``2probe`` and was answered ``3probe``, so a
    #: pending GET ends with NOOP. The client sends ``5`` next.
    PROBED = "probed"
    #: Open, carried by a WebSocket: since its handshake, or since the upgrade.
    WEBSOCKET = "websocket"
    #: Closed by the server (or by the client during a pending GET): what is queued, ending
    #: with CLOSE (or NOOP), still goes out; nothing more is queued.
    CLOSING = "closing"
    #: Over: nothing more goes out.
    CLOSED = "closed"


class Event(Enum):
    #: A WebSocket with the session's sid completed its opening handshake.
    BEGIN_UPGRADE = "begin upgrade"
    #: That WebSocket sent the probe (``2probe``).
    PROBE = "probe"
    #: That WebSocket sent UPGRADE (``5``): it carries the session from now on.
    UPGRADE = "upgrade"
    #: That WebSocket went away, broke the protocol or ran out of time before ``5``.
    UPGRADE_FAILED = "upgrade failed"
    #: Closed from our side: what is queued, and then the CLOSE packet, still go out.
    CLOSE = "close"
    #: A transport took the last of what a closing session had queued.
    FLUSHED = "flushed"
    #: The client went away or broke the protocol: nothing more is sent.
    ABORT = "abort"


S, E = State, Event

#: ``state -> {event: next state}``; an event missing from a state's row is refused there.
TRANSITIONS: dict[State, dict[Event, State]] = {
    S.POLLING: {E.BEGIN_UPGRADE: S.UPGRADING, E.CLOSE: S.CLOSING, E.ABORT: S.CLOSED},
    S.UPGRADING: {
        E.PROBE: S.PROBED,
        E.UPGRADE_FAILED: S.POLLING,
        E.CLOSE: S.CLOSING,
        E.ABORT: S.CLOSED,
    },
    S.PROBED: {
        E.UPGRADE: S.WEBSOCKET,
        E.UPGRADE_FAILED: S.POLLING,
        E.CLOSE: S.CLOSING,
        E.ABORT: S.CLOSED,
    },
    S.WEBSOCKET: {E.CLOSE: S.CLOSING, E.ABORT: S.CLOSED},
    S.CLOSING: {E.FLUSHED: S.CLOSED, E.ABORT: S.CLOSED},
    S.CLOSED: {},
}

del S, E

#: The states in which a session is open: it takes packets to send, and those it receives.
OPEN_STATES = frozenset({State.POLLING, State.UPGRADING, State.PROBED, State.WEBSOCKET})
#: The states in which long-polling carries the session: GET and POST are served.
POLLING_STATES = frozenset({State.POLLING, State.UPGRADING, State.PROBED})


def initial_state(transport: str) -> State:
    """Where a session begins: after the transport of its handshake request."""
    return State.POLLING if transport == "polling" else State.WEBSOCKET


def next_state(state: State, event: Event) -> State | None:
    """The state ``event`` moves ``state`` to; None where the table does not allow it."""
    return TRANSITIONS[state].get(event)
