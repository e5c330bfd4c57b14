"""Settings of ``python -m server``: command-line flags, falling back to environment variables."""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from server.hub import Rate
from server.realtime.service import DEFAULT_FLOOD_DISCONNECT, DEFAULT_RATE_LIMITS

DEFAULT_PORT = 4000
DEFAULT_HUB_PORT = 4001
DEFAULT_DATABASE_URL = "sqlite:///./data/app.db"

NO_SECRET = (
    "JWT_SECRET is not set: set it to the secret your tokens are signed with (HS256), "
    "or start with --dev to try the server with demo tokens"
)
#: RFC 7518 3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32
SHORT_SECRET = (
    f"JWT_SECRET is {{n}} bytes long: HS256 needs a secret of at least {MIN_SECRET_BYTES} "
    "bytes (RFC 7518), or anyone who sees a token can find it by brute force; "
    "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    #: The app: REST API, web client, /healthz (Hypercorn + Quart-Trio).
    port: int = DEFAULT_PORT
    #: The hub's own listener: /socket.io/, long-polling and WebSocket.
    hub_port: int = DEFAULT_HUB_PORT
    #: Browser origins allowed to reach the hub; the app's own origin is added by default.
    cors_origins: tuple[str, ...] = ()
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    connect_timeout: float = 45.0
    #: Seconds a shutdown waits for connections to close before it stops anyway.
    shutdown_grace: float = 5.0
    log_level: str = "INFO"
    #: HS256 secret that tokens are verified with (``JWT_SECRET``; never a flag).
    jwt_secret: str = field(default="", repr=False)
    #: ``--dev``: demo project and users, ``POST /api/dev/token``, tokens printed at start.
    dev: bool = False
    database_url: str = DEFAULT_DATABASE_URL
    #: Worker threads the store may use at once.
    db_threads: int = 4
    #: Seconds between the monitor's log lines.
    monitor_interval: float = 30.0
    #: ``redis://host:port/db``: link this process to the others on the same Redis (the
    #: bridge, in the format of ``@socket.io/redis-adapter``); empty for one process alone.
    redis_url: str = ""
    #: Connection state recovery: a client whose connection drops gets its rooms, ``data`` and
    #: missed events back if it returns within ``recovery_window`` seconds.
    recovery: bool = True
    recovery_window: float = 120.0
    #: Per user and event (``*`` for the others); empty: no limits.
    rate_limits: tuple[tuple[str, Rate], ...] = tuple(DEFAULT_RATE_LIMITS.items())
    #: Refusals in a burst before a flooding user's socket is disconnected (0: never).
    flood_disconnect: int = DEFAULT_FLOOD_DISCONNECT
    #: Connections that have not completed a request yet, per client address and overall.
    max_handshaking_per_address: int = 128
    max_handshaking: int = 1024

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        if self.cors_origins:
            return self.cors_origins
        return (f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}")


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    d = Settings()

    def default(name: str, fallback: object) -> str:
        return env.get(name, str(fallback))

    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="The real-time hub (Socket.IO on Trio) and its HTTP app, in one process.",
    )
    parser.add_argument("--host", default=default("HOST", d.host), help="interface (HOST)")
    parser.add_argument("--port", type=int, default=default("PORT", d.port), help="app port (PORT)")
    parser.add_argument(
        "--hub-port", type=int, default=default("HUB_PORT", d.hub_port), help="hub port (HUB_PORT)"
    )
    parser.add_argument(
        "--cors-origins",
        default=env.get("CORS_ORIGINS", ""),
        help="comma-separated browser origins allowed on the hub, '*' for any (CORS_ORIGINS); "
        "default: the app's own origin",
    )
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=default("PING_INTERVAL", d.ping_interval),
        help="seconds between heartbeats (PING_INTERVAL)",
    )
    parser.add_argument(
        "--ping-timeout",
        type=float,
        default=default("PING_TIMEOUT", d.ping_timeout),
        help="seconds a client has to answer a ping (PING_TIMEOUT)",
    )
    parser.add_argument(
        "--max-payload",
        type=int,
        default=default("MAX_PAYLOAD", d.max_payload),
        help="largest message or polling body in bytes (MAX_PAYLOAD)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=default("CONNECT_TIMEOUT", d.connect_timeout),
        help="seconds a new connection has to join a namespace (CONNECT_TIMEOUT)",
    )
    parser.add_argument(
        "--log-level", default=default("LOG_LEVEL", d.log_level), help="(LOG_LEVEL)"
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="development mode: a demo project, POST /api/dev/token, demo tokens printed at "
        "start; a random JWT secret unless JWT_SECRET is set",
    )
    parser.add_argument(
        "--database-url",
        default=default("DATABASE_URL", d.database_url),
        help="sqlite:///path/to/file.db (DATABASE_URL)",
    )
    parser.add_argument(
        "--db-threads",
        type=int,
        default=default("DB_THREADS", d.db_threads),
        help="database calls at once, each on a worker thread (DB_THREADS)",
    )
    parser.add_argument(
        "--monitor-interval",
        type=float,
        default=default("MONITOR_INTERVAL", d.monitor_interval),
        help="seconds between monitoring log lines (MONITOR_INTERVAL)",
    )
    parser.add_argument(
        "--redis-url",
        default=env.get("REDIS_URL", ""),
        help="redis://host:port/db: run as one node of a cluster (REDIS_URL); default: alone",
    )
    parser.add_argument(
        "--recovery",
        action=argparse.BooleanOptionalAction,
        default=env.get("RECOVERY", "1").lower() not in ("0", "false", "no", "off"),
        help="connection state recovery for clients that support it (on; RECOVERY=0 or "
        "--no-recovery turns it off); other clients see each stored event's offset as a "
        "last argument",
    )
    parser.add_argument(
        "--recovery-window",
        type=float,
        default=default("RECOVERY_WINDOW", d.recovery_window),
        help="seconds a dropped client has to come back with its state (RECOVERY_WINDOW)",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        metavar="EVENT=RATE",
        help="per-user limit of one event, e.g. chatMessage=5/s:20 (5 a second, bursts of "
        "20); '*' for every other event; EVENT=off lifts one; 'off' lifts all; repeatable "
        "(RATE_LIMITS, comma-separated). Default: "
        + ", ".join(f"{event}={rate}" for event, rate in d.rate_limits),
    )
    parser.add_argument(
        "--flood-disconnect",
        type=int,
        default=default("FLOOD_DISCONNECT", d.flood_disconnect),
        help="refused events in a burst before a flooding user is disconnected; 0: never "
        "(FLOOD_DISCONNECT)",
    )
    parser.add_argument(
        "--max-handshaking-per-address",
        type=int,
        default=default("MAX_HANDSHAKING_PER_ADDRESS", d.max_handshaking_per_address),
        help="connections from one address that have not completed a request yet; past it "
        "the oldest of them is answered 503; 0: no limit (MAX_HANDSHAKING_PER_ADDRESS)",
    )
    parser.add_argument(
        "--max-handshaking",
        type=int,
        default=default("MAX_HANDSHAKING", d.max_handshaking),
        help="the same, from all addresses together; at most half the file descriptor limit "
        "(MAX_HANDSHAKING)",
    )
    args = parser.parse_args(argv)
    secret = env.get("JWT_SECRET", "")
    if not secret:
        if not args.dev:
            parser.error(NO_SECRET)
        secret = secrets.token_urlsafe(32)  # dev: tokens last as long as this process
    elif len(secret.encode()) < MIN_SECRET_BYTES and not args.dev:
        parser.error(SHORT_SECRET.format(n=len(secret.encode())))
    try:
        rate_limits = _rate_limits(args.rate_limit or env.get("RATE_LIMITS", "").split(","))
    except ValueError as exc:
        parser.error(f"--rate-limit / RATE_LIMITS: {exc}")
    if args.flood_disconnect < 0:
        parser.error("--flood-disconnect must be 0 or more")
    if args.max_handshaking_per_address < 0 or args.max_handshaking < 0:
        parser.error("--max-handshaking and --max-handshaking-per-address must be 0 or more")
    if not args.database_url.startswith("sqlite:///"):
        parser.error(
            f"--database-url / DATABASE_URL: only sqlite:///path is supported, "
            f"not {args.database_url!r}"
        )
    if args.db_threads < 1 or args.monitor_interval <= 0:
        parser.error("--db-threads and --monitor-interval must be positive")
    origins = tuple(o.strip() for o in args.cors_origins.split(",") if o.strip())
    return Settings(
        host=args.host,
        port=args.port,
        hub_port=args.hub_port,
        cors_origins=origins,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_payload=args.max_payload,
        connect_timeout=args.connect_timeout,
        log_level=args.log_level.upper(),
        jwt_secret=secret,
        dev=args.dev,
        database_url=args.database_url,
        db_threads=args.db_threads,
        monitor_interval=args.monitor_interval,
        redis_url=args.redis_url,
        recovery=args.recovery,
        recovery_window=args.recovery_window,
        rate_limits=rate_limits,
        flood_disconnect=args.flood_disconnect,
        max_handshaking_per_address=args.max_handshaking_per_address,
        max_handshaking=args.max_handshaking,
    )


def _rate_limits(items: Sequence[str]) -> tuple[tuple[str, Rate], ...]:
    """The defaults, changed by ``EVENT=RATE`` / ``EVENT=off`` items; ``off`` alone: none."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item == "off":
            limits.clear()
            continue
        event, sep, rate = item.partition("=")
        if not sep or not event.strip():
            raise ValueError(f"{item!r} is not EVENT=RATE (e.g. chatMessage=5/s:20) or 'off'")
        if rate.strip() == "off":
            limits.pop(event.strip(), None)
        else:
            limits[event.strip()] = Rate.parse(rate)
    return tuple(limits.items())
