"""``python -m server``: one ``trio.run``, one root nursery holding the hub and the app.

Task tree::

    root nursery
    ├── signal watcher: SIGINT / SIGTERM -> hub.shutdown(grace) -> cancel the root
    ├── bridge.run (only with REDIS_URL): Redis link to the other processes, reconnecting
    ├── serve_with_app (the port)
    │   ├── the app's lifespan (Hypercorn + Quart-Trio: REST, the board, /metrics, /healthz)
    │   └── hub.serve: /socket.io/ (long-polling and WebSocket); every other request's
    │       connection is handed to the app
    ├── monitor: a log line every MONITOR_INTERVAL seconds
    └── presence healer (only with REDIS_URL): userLeft for users whose node died

With ``--hub-port``, the hub listens on a port of its own and the app is served by Hypercorn
on ``--port`` (``hub.serve`` and ``serve_app`` in place of ``serve_with_app``).

The store (SQLite, calls on worker threads) is opened before the nursery and closed after it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import trio

from server.http.app import create_app, hypercorn_config, serve_app
from server.http.shared_port import serve_with_app
from server.hub import Hub
from server.hub.adapter import AdapterFactory
from server.hub.bridge import Bridge
from server.lifecycle import cancel_on_signal, print_dev_banner
from server.realtime import Realtime, TokenVerifier, run_monitor
from server.realtime.demo import demo_tokens, seed
from server.settings import MIN_SECRET_BYTES, Settings, parse, usage_error
from server.store import open_store

log = logging.getLogger("server")
#: On SIGTERM, how long the Redis writes still queued after the drain may take.
FLUSH_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Running:
    """What :func:`run` reports once both listeners are up (tests use the ports)."""

    hub: Hub
    realtime: Realtime
    app_port: int
    hub_port: int
    demo_project_id: int | None


def build_hub(settings: Settings, adapter_factory: AdapterFactory | None = None) -> Hub:
    return Hub(settings.hub_config, adapter_factory=adapter_factory)


async def run(
    settings: Settings,
    *,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    store = await open_store(settings.database_url, max_threads=settings.db_threads)
    try:
        # the Redis bridge: every process on the same REDIS_URL is one cluster
        bridge = None
        if settings.redis_url:
            bridge = Bridge(
                settings.redis_url,
                mode=settings.redis_adapter,
                max_queue_bytes=settings.redis_backlog_bytes,
                max_queue_age=settings.redis_backlog_seconds,
            )
        hub = build_hub(settings, bridge.adapter if bridge is not None else None)
        verifier = TokenVerifier(settings.jwt_secret)
        if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:  # --dev only (parse refuses)
            log.warning("JWT_SECRET is shorter than 32 bytes: HS256 wants at least 32")
        realtime = Realtime(
            hub,
            store,
            verifier,
            rate_limits=dict(settings.rate_limits),
            flood_disconnect=settings.flood_disconnect,
        ).install()
        if settings.admin_ui is not None:  # the Socket.IO Admin UI's /admin (--admin-ui)
            settings.admin_ui.install(hub)
        demo_project_id = await seed(store) if settings.dev else None
        app = create_app(
            hub,
            realtime,
            demo_project_id=demo_project_id,
            cors_origins=settings.allowed_origins,
            bridge=bridge,
        )
        async with trio.open_nursery() as root:

            async def drain() -> None:
                await hub.shutdown(settings.shutdown_grace)
                # what the last disconnects queued for Redis (their sessions, in streams
                # mode) goes out before the bridge is cancelled with the rest
                if bridge is not None and not await bridge.flush(FLUSH_TIMEOUT):
                    log.warning("exiting with %d writes to Redis not done", bridge.backlog[0])

            if handle_signals:
                await root.start(cancel_on_signal, root.cancel_scope, drain)
            if bridge is not None:
                await root.start(bridge.run)
            if settings.hub_port is None:  # one port
                host, port = settings.host, settings.port
                serving = partial(serve_with_app, hub, app, host, port, config=hypercorn_config())
                with _listening("--port / PORT", host, port):
                    listeners = await root.start(serving)
                app_port = hub_port = listeners[0].socket.getsockname()[1]
                binds = [f"http://{settings.host}:{app_port}"]
            else:
                with _listening("--hub-port / HUB_PORT", settings.host, settings.hub_port):
                    listeners = await root.start(hub.serve, settings.host, settings.hub_port)
                hub_port = listeners[0].socket.getsockname()[1]
                app.config["HUB_PORT"] = hub_port  # the board's page is told where the hub is
                with _listening("--port / PORT", settings.host, settings.port):
                    binds = await root.start(serve_app, app, settings.host, settings.port)
                app_port = int(binds[0].rsplit(":", 1)[1])
            await root.start(run_monitor, hub, realtime, settings.monitor_interval)
            if bridge is not None:
                bridge.on_nodes_lost(realtime.nodes_lost)
                await root.start(realtime.run_presence_healer, settings.presence_heal_interval)
            if hub_port == app_port:
                log.info("listening on http://%s:%d/ (and /socket.io/)", settings.host, app_port)
            else:
                log.info("hub listening on http://%s:%d/socket.io/", settings.host, hub_port)
                log.info("app listening on %s", ", ".join(binds))
            log.info("database: %s", settings.database_url)
            if settings.dev:
                assert demo_project_id is not None
                print_dev_banner(
                    f"http://{settings.host}:{app_port}",
                    f"http://{settings.host}:{hub_port}",
                    demo_project_id,
                    [(u.user_id, u.role, token) for u, token in demo_tokens(verifier)],
                    settings.public_url,
                )
            task_status.started(Running(hub, realtime, app_port, hub_port, demo_project_id))
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
    log.info("stopped")


E = TypeVar("E", bound=BaseException)


class CannotListen(Exception):
    """A listener could not be opened (its port is in use, say): a setting's fault, told
    as one line by :func:`main`."""


@contextlib.contextmanager
def _listening(setting: str, host: str, port: int) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        error = _first(exc, OSError)
        if error is None:
            raise
        reason = error.strerror or str(error)
        raise CannotListen(f"{setting}: cannot listen on {host}:{port}: {reason}") from None


def _first(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` if it is a ``kind``, or the first one in it (an exception group's)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first(inner, kind)
            if found is not None:
                return found
    return None


#: How long the event loop's thread may hold the interpreter before a waiting thread gets it
#: (CPython's default is 5 ms). The database calls run on worker threads: with the default,
#: while the loop is busy for a second (a client posting a megabyte of packets, worked
#: through in slices), a chat message's INSERT waited that whole second for the
#: interpreter; at 0.2 ms it waits a few (bench/soak.py, "noop-posts": measured 1.1-1.3 s at
#: 5 ms and 0.5 ms, under 8 ms at 0.2 ms and 0.1 ms). It costs nothing while no other
#: thread is waiting.
SWITCH_INTERVAL = 0.0002


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse(argv)
    sys.setswitchinterval(SWITCH_INTERVAL)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        trio.run(run, settings)
    except BaseException as exc:
        cannot = _first(exc, CannotListen)
        if cannot is None:
            raise
        usage_error(str(cannot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
