"""Settings of ``python -m server``: command-line flags, falling back to environment variables.

One table (:data:`OPTIONS`) says, for each flag, its environment variable, its type and
where its value goes: a field of :class:`Settings`, or of the hub's typed configuration it
holds (``hub.`` for :class:`~server.hub.HubConfig`, ``hub.engine.`` for the Engine.IO one).
The hub is then built from ``settings.hub_config`` as it is: nothing is copied field by
field on the way to the engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from server.hub import HubConfig, Rate
from server.hub.admin import DEVELOPMENT, PRODUCTION, AdminUIOptions, check_bcrypt_hash
from server.realtime.service import DEFAULT_FLOOD_DISCONNECT, DEFAULT_RATE_LIMITS
from server.store import DEFAULT_DATABASE_URL, sqlite_path

DEFAULT_PORT = 4000

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

#: The hub as the service runs it: connection state recovery on, and a resumed connection
#: shows its token again (credentials do not outlive their expiry).
SERVICE_HUB = HubConfig.of(connection_state_recovery=True, recovery_skips_middlewares=False)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    #: One port for all: /socket.io/ (long-polling and WebSocket) served by the hub, the
    #: rest (REST API, web client, /healthz, /metrics) handed by the hub to the app
    #: (Hypercorn + Quart-Trio).
    port: int = DEFAULT_PORT
    #: A listener of the hub's own, for /socket.io/ only; the app then has ``port`` to
    #: itself. None: the hub serves on ``port``.
    hub_port: int | None = None
    #: Browser origins allowed to reach the hub; the app's own origin by default.
    cors_origins: tuple[str, ...] = ()
    #: Where people reach the service (a proxy's origin), for the ``--dev`` banner.
    public_url: str = ""
    #: Everything the hub (and its engine) is configured with, but the CORS origins.
    hub: HubConfig = SERVICE_HUB
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
    #: bridge); empty for one process alone.
    redis_url: str = ""
    #: The bridge's format: ``pubsub`` (``@socket.io/redis-adapter``) or ``streams``
    #: (``@socket.io/redis-streams-adapter``: recovery across nodes, even after a crash).
    redis_adapter: str = "pubsub"
    #: What a node keeps for the others while Redis is away: bytes, and seconds.
    redis_backlog_bytes: int = 16 * 1024 * 1024
    redis_backlog_seconds: float = 60.0
    #: Seconds between two checks of who is still in each project room (a node lost is
    #: checked for at once).
    presence_heal_interval: float = 30.0
    #: Per user and event (``*`` for the others, ``rest.*`` for REST); empty: no limits.
    rate_limits: tuple[tuple[str, Rate], ...] = tuple(DEFAULT_RATE_LIMITS.items())
    #: Refusals in a burst before a flooding user's socket is disconnected (0: never).
    flood_disconnect: int = DEFAULT_FLOOD_DISCONNECT
    #: The Socket.IO Admin UI's namespace ``/admin`` (``--admin-ui``): None, off.
    admin_ui: AdminUIOptions | None = None

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        if self.cors_origins:
            return self.cors_origins
        return (f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}")

    @property
    def hub_config(self) -> HubConfig:
        """What the hub is built with: :attr:`hub`, with the allowed browser origins."""
        return self.hub.replace(cors_origins=self.allowed_origins)

    def with_options(self, **options: Any) -> Settings:
        """These settings with some changed: fields of Settings, or options of the hub's
        configuration (see :meth:`HubConfig.replace`)."""
        own = {f.name for f in dataclasses.fields(Settings)}
        mine = {k: v for k, v in options.items() if k in own}
        theirs = {k: v for k, v in options.items() if k not in own}
        if theirs:
            mine["hub"] = mine.get("hub", self.hub).replace(**theirs)
        return dataclasses.replace(self, **mine)


# ---- the table ------------------------------------------------------------------------------


def _port(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("a port is 0 to 65535")
    return port


def redis_url(text: str) -> str:
    """``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS) or
    ``unix:///path/to/socket``; empty: no Redis."""
    if not text:
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://host:port/db, rediss://... or unix:///path")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return text
    if not parts.hostname:
        raise ValueError("no host")
    _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database is a number, not {db!r}")
    return text


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _flag(text: str) -> bool:
    return text.lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Option:
    """One flag: ``--name`` (or ``ENV``) sets every field in ``to``."""

    flag: str
    env: str | None
    to: tuple[str, ...]
    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option("--host", "HOST", ("host",), "interface for both listeners"),
    Option(
        "--port",
        "PORT",
        ("port",),
        "the port of everything: /socket.io/, the board, the REST API, /healthz, /metrics",
        _port,
    ),
    Option(
        "--hub-port",
        "HUB_PORT",
        ("hub_port",),
        "give /socket.io/ a port of its own (the app keeps --port); default: one port",
        _port,
    ),
    Option(
        "--cors-origins",
        "CORS_ORIGINS",
        ("cors_origins",),
        "comma-separated browser origins allowed on the hub and the API, '*' for any; "
        "default: the app's own origin",
        _origins,
    ),
    Option(
        "--public-url",
        "PUBLIC_URL",
        ("public_url",),
        "where people reach the service, behind a proxy (the --dev banner names it)",
    ),
    Option(
        "--ping-interval",
        "PING_INTERVAL",
        ("hub.engine.ping_interval",),
        "seconds between heartbeats",
        float,
    ),
    Option(
        "--ping-timeout",
        "PING_TIMEOUT",
        ("hub.engine.ping_timeout",),
        "seconds a client has to answer a ping",
        float,
    ),
    Option(
        "--max-payload",
        "MAX_PAYLOAD",
        ("hub.engine.max_payload",),
        "largest message or polling body in bytes",
        int,
    ),
    Option(
        "--max-queue",
        "MAX_QUEUE",
        ("hub.engine.max_queue",),
        "packets queued for one client before volatile ones are dropped",
        int,
    ),
    Option(
        "--slow-consumer-timeout",
        "SLOW_CONSUMER_TIMEOUT",
        ("hub.engine.slow_consumer_timeout",),
        "seconds a client with a full queue may leave what it was sent unread before it "
        "is closed as a slow consumer",
        float,
    ),
    Option(
        "--connect-timeout",
        "CONNECT_TIMEOUT",
        ("hub.connect_timeout",),
        "seconds a new connection has to join a namespace",
        float,
    ),
    Option("--log-level", "LOG_LEVEL", ("log_level",), "", str.upper),
    Option(
        "--database-url",
        "DATABASE_URL",
        ("database_url",),
        "sqlite:///path/to/file.db or postgresql://user[:password]@host[:port]/dbname",
    ),
    Option(
        "--db-threads",
        "DB_THREADS",
        ("db_threads",),
        "database calls at once, each on a worker thread",
        int,
    ),
    Option(
        "--monitor-interval",
        "MONITOR_INTERVAL",
        ("monitor_interval",),
        "seconds between monitoring log lines",
        float,
    ),
    Option(
        "--redis-url",
        "REDIS_URL",
        ("redis_url",),
        "redis://host:port/db: run as one node of a cluster; default: alone",
        redis_url,
    ),
    Option(
        "--redis-adapter",
        "REDIS_ADAPTER",
        ("redis_adapter",),
        "pubsub (the format of @socket.io/redis-adapter) or streams (of "
        "@socket.io/redis-streams-adapter: a client comes back recovered on any node, "
        "even after its node crashed)",
        str.lower,
    ),
    Option(
        "--redis-backlog-bytes",
        "REDIS_BACKLOG_BYTES",
        ("redis_backlog_bytes",),
        "what this node keeps for the others while Redis is away, in bytes (past it the "
        "oldest is dropped)",
        int,
    ),
    Option(
        "--redis-backlog-seconds",
        "REDIS_BACKLOG_SECONDS",
        ("redis_backlog_seconds",),
        "and for how long at most",
        float,
    ),
    Option(
        "--presence-heal-interval",
        "PRESENCE_HEAL_INTERVAL",
        ("presence_heal_interval",),
        "seconds between two checks that the users in each room are still there (userLeft "
        "for those whose node died); a node lost is checked for at once",
        float,
    ),
    Option(
        "--recovery-window",
        "RECOVERY_WINDOW",
        ("hub.max_disconnection_duration",),
        "seconds a dropped client has to come back with its state",
        float,
    ),
    Option(
        "--flood-disconnect",
        "FLOOD_DISCONNECT",
        ("flood_disconnect",),
        "refused events in a burst before a flooding user is disconnected; 0: never",
        int,
    ),
    Option(
        "--max-handshaking-per-address",
        "MAX_HANDSHAKING_PER_ADDRESS",
        ("hub.engine.max_handshaking_per_address", "hub.max_unjoined_per_address"),
        "connections from one address that have not completed a request yet, and (a "
        "second count) that have not sent their Socket.IO CONNECT yet; past it the oldest "
        "of them is refused; 0: no limit",
        int,
    ),
    Option(
        "--max-handshaking",
        "MAX_HANDSHAKING",
        ("hub.engine.max_handshaking", "hub.max_unjoined"),
        "the same, from all addresses together; at most half the file descriptor limit",
        int,
    ),
)


def _current(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _assign(settings: Settings, path: str, value: Any) -> Settings:
    """``settings`` with the field at ``path`` set (``hub.`` and ``hub.engine.`` both land in
    the hub's configuration, which knows which part has which field)."""
    name = path.rsplit(".", 1)[-1]
    if path.startswith("hub."):
        return dataclasses.replace(settings, hub=settings.hub.replace(**{name: value}))
    return dataclasses.replace(settings, **{name: value})


#: Where ``--dev`` keeps its secret, in the data folder.
DEV_SECRET_FILE = "dev-jwt-secret"


def dev_secret(database_url: str) -> str:
    """``--dev`` without ``JWT_SECRET``: a random secret, made once and kept (readable by this
    user only) in the data folder (the SQLite file's, ``./data`` otherwise), so that the
    tokens ``--dev`` prints, and that a user copies, stay valid after a restart."""
    if database_url.startswith("sqlite:///"):
        folder = Path(sqlite_path(database_url)).parent
    else:
        folder = Path("data")
    path = folder / DEV_SECRET_FILE
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if len(kept.encode()) >= MIN_SECRET_BYTES:
        return kept
    folder.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


def usage_error(message: str) -> NoReturn:
    """What a bad setting found after parsing (a port in use, say) gets: the usage line and
    ``python -m server: error: message`` on stderr, and exit status 2, as argparse gives."""
    _parser(Settings()).error(message)


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()
    parser = _parser(defaults)
    args = parser.parse_args(argv)

    settings = defaults
    for option in OPTIONS:
        raw = getattr(args, option.to[0].replace(".", "__"))
        if raw is None and option.env is not None:
            raw = env.get(option.env)
        if raw is None:
            continue
        try:
            value = option.parse(raw)
            for path in option.to:
                settings = _assign(settings, path, value)
        except ValueError as exc:
            parser.error(f"{option.flag} / {option.env}: {raw!r}: {exc}")
    recovery = args.recovery if args.recovery is not None else _flag(env.get("RECOVERY", "1"))
    settings = dataclasses.replace(
        settings, dev=args.dev, hub=settings.hub.replace(connection_state_recovery=recovery)
    )
    secret = env.get("JWT_SECRET", "")
    if not secret:
        if not args.dev:
            parser.error(NO_SECRET)
        try:
            secret = dev_secret(settings.database_url)
        except OSError as exc:
            parser.error(f"--dev: cannot keep a secret in {exc.filename}: {exc.strerror}")
    elif len(secret.encode()) < MIN_SECRET_BYTES and not args.dev:
        parser.error(SHORT_SECRET.format(n=len(secret.encode())))
    try:
        rate_limits = _rate_limits(args.rate_limit or env.get("RATE_LIMITS", "").split(","))
    except ValueError as exc:
        parser.error(f"--rate-limit / RATE_LIMITS: {exc}")
    try:
        admin_ui = _admin_ui(args, env)
    except ValueError as exc:
        parser.error(str(exc))
    settings = dataclasses.replace(
        settings, jwt_secret=secret, rate_limits=rate_limits, admin_ui=admin_ui
    )
    _check(parser, settings)
    return settings


def _parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="The real-time hub (Socket.IO on Trio) and its HTTP app, in one process.",
    )
    for option in OPTIONS:
        default = _current(defaults, option.to[0])
        shown = ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(
            option.flag,
            dest=option.to[0].replace(".", "__"),
            default=None,
            metavar=option.metavar or option.env,
            help=f"{option.help} ({option.env}; default: {shown})".replace("(; ", "("),
        )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="development mode: a demo project, POST /api/dev/token, demo tokens printed at "
        "start; unless JWT_SECRET is set, a random JWT secret kept in the data folder (so the "
        "printed tokens stay valid across restarts)",
    )
    parser.add_argument(
        "--recovery",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="connection state recovery for clients that support it (on; RECOVERY=0 or "
        "--no-recovery turns it off); other clients see each stored event's offset as a "
        "last argument",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        metavar="EVENT=RATE",
        help="per-user limit of one event, e.g. chatMessage=5/s:20 (5 a second, bursts of "
        "20); '*' for every other event, rest.write and rest.read for the REST API; "
        "EVENT=off lifts one; 'off' lifts all; repeatable (RATE_LIMITS, comma-separated). "
        "Default: " + ", ".join(f"{event}={rate}" for event, rate in defaults.rate_limits),
    )
    admin = parser.add_argument_group(
        "Socket.IO Admin UI",
        "the namespace /admin that @socket.io/admin-ui's dashboard connects to (off by "
        "default); a browser page on another origin needs it in --cors-origins",
    )
    admin.add_argument(
        "--admin-ui",
        metavar="USER:BCRYPT_HASH",
        help="turn it on, for this user and the bcrypt hash of their password "
        "(ADMIN_UI; e.g. python -c \"import bcrypt; print(bcrypt.hashpw(b'PASSWORD', "
        'bcrypt.gensalt()).decode())")',
    )
    admin.add_argument(
        "--admin-ui-no-auth",
        action="store_true",
        default=None,
        help="turn it on without authentication: whoever reaches the hub port may watch "
        "and, unless read-only, act (ADMIN_UI_NO_AUTH=1)",
    )
    admin.add_argument(
        "--admin-ui-read-only",
        action="store_true",
        default=None,
        help="the UI may watch but not emit, join, leave or disconnect (ADMIN_UI_READ_ONLY=1)",
    )
    admin.add_argument(
        "--admin-ui-mode",
        metavar="MODE",
        help=f"{DEVELOPMENT}: every socket, room change and event is sent to the UI; "
        f"{PRODUCTION}: only the servers' stats (ADMIN_UI_MODE; default: {DEVELOPMENT})",
    )
    admin.add_argument(
        "--admin-ui-server-id",
        metavar="ID",
        help="this process's name in the UI (ADMIN_UI_SERVER_ID; default: the host name, "
        "and #pid after it with --redis-url)",
    )
    return parser


#: What ``--admin-ui`` takes, for its error message.
ADMIN_UI_FORMAT = (
    "--admin-ui / ADMIN_UI: expected USER:BCRYPT_HASH, the hash as bcrypt writes it "
    "($2a$, $2b$ or $2y$, 60 characters, e.g. admin:$2b$10$...)"
)


def admin_credentials(text: str) -> tuple[str, str]:
    """``USER:BCRYPT_HASH`` as ``(user, hash)`` (the hash has no colon; the user may)."""
    user, sep, hashed = text.rpartition(":")
    if not sep or not user:
        raise ValueError(ADMIN_UI_FORMAT)
    try:
        check_bcrypt_hash(hashed)
    except ValueError:
        raise ValueError(ADMIN_UI_FORMAT) from None
    return user, hashed


def _admin_ui(args: argparse.Namespace, env: Mapping[str, str]) -> AdminUIOptions | None:
    """The admin UI's settings: None when neither ``--admin-ui`` nor ``--admin-ui-no-auth``
    turns it on. ValueError with a one-line message for a bad one."""
    credentials = args.admin_ui if args.admin_ui is not None else env.get("ADMIN_UI") or None
    no_auth = args.admin_ui_no_auth or _flag(env.get("ADMIN_UI_NO_AUTH", "0"))
    read_only = args.admin_ui_read_only or _flag(env.get("ADMIN_UI_READ_ONLY", "0"))
    mode = args.admin_ui_mode or env.get("ADMIN_UI_MODE") or None
    server_id = args.admin_ui_server_id or env.get("ADMIN_UI_SERVER_ID") or None
    if credentials is not None and no_auth:
        raise ValueError("--admin-ui and --admin-ui-no-auth: give one or the other, not both")
    if credentials is None and not no_auth:
        if read_only or mode is not None or server_id is not None:
            raise ValueError(
                "--admin-ui-read-only, --admin-ui-mode and --admin-ui-server-id need the admin "
                "UI on: --admin-ui USER:BCRYPT_HASH or --admin-ui-no-auth"
            )
        return None
    if mode is not None and mode.lower() not in (DEVELOPMENT, PRODUCTION):
        raise ValueError(
            f"--admin-ui-mode / ADMIN_UI_MODE: {DEVELOPMENT} or {PRODUCTION}, not {mode!r}"
        )
    auth = admin_credentials(credentials) if credentials is not None else None
    return AdminUIOptions(
        auth=auth,
        read_only=read_only,
        server_id=server_id,
        mode=mode.lower() if mode is not None else DEVELOPMENT,
    )


def _check(parser: argparse.ArgumentParser, settings: Settings) -> None:
    url = settings.database_url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        parser.error(
            "--database-url / DATABASE_URL: sqlite:///path or "
            f"postgresql://user[:password]@host[:port]/dbname, not {url!r}"
        )
    if settings.db_threads < 1 or settings.monitor_interval <= 0:
        parser.error("--db-threads and --monitor-interval must be positive")
    if settings.presence_heal_interval <= 0:
        parser.error("--presence-heal-interval must be positive")
    if settings.flood_disconnect < 0:
        parser.error("--flood-disconnect must be 0 or more")
    if settings.redis_adapter not in ("pubsub", "streams"):
        parser.error("--redis-adapter must be pubsub or streams")
    if settings.redis_backlog_bytes < 0 or settings.redis_backlog_seconds <= 0:
        parser.error("--redis-backlog-bytes must be 0 or more, --redis-backlog-seconds positive")
    engine = settings.hub.engine
    if engine.max_handshaking_per_address < 0 or engine.max_handshaking < 0:
        parser.error("--max-handshaking and --max-handshaking-per-address must be 0 or more")


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
