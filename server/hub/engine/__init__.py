"""Engine.IO v4 over Trio: sessions, heartbeat, long-polling (h11) and WebSocket (our frames)."""

from server.hub.engine.config import EngineConfig
from server.hub.engine.server import EngineServer, Handoff
from server.hub.engine.session import RequestInfo, Session, SessionHandler
from server.hub.engine.ticks import DirectWrites, current_ticker
from server.hub.engine.wire import Wire

__all__ = [
    "DirectWrites",
    "EngineConfig",
    "EngineServer",
    "Handoff",
    "RequestInfo",
    "Session",
    "SessionHandler",
    "Wire",
    "current_ticker",
]
