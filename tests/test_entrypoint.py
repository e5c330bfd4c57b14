"""``python -m server``: the hub and the app in one process, on one port or two, and a clean
stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jwt
import pytest
import socketio

from server.hub import Rate
from server.settings import parse
from tests.node_harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of ``python -m server`` in a test: a secret, a database in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "DATABASE_URL")}
    env.update(
        JWT_SECRET="entrypoint-test-secret-of-32-bytes-or-more",
        DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
    )
    env.update(extra)
    return env


def wait_until_serving(url: str, proc: subprocess.Popen[str], timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                message = f"the server exited with {proc.returncode}:\n{output}"
                raise AssertionError(message) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize(
    ("signum", "ports"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGTERM, 2)],
    ids=["SIGINT-one-port", "SIGTERM-one-port", "SIGTERM-hub-port"],
)
def test_serves_and_stops_cleanly(signum: signal.Signals, ports: int, tmp_path: Path) -> None:
    """One port by default: the app and /socket.io/ on --port; with --hub-port, two."""
    port = free_port()
    hub_port = free_port() if ports == 2 else port
    extra = ["--hub-port", str(hub_port)] if ports == 2 else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), *extra],
        cwd=ROOT,
        env=server_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = json.loads(wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["status"] == "ok"

        client = socketio.Client(reconnection=False)
        disconnected: list[str] = []
        client.on("disconnect", lambda reason=None: disconnected.append(str(reason)))
        token = jwt.encode(
            {"userId": "u1", "userName": "U", "exp": int(time.time()) + 60},
            "entrypoint-test-secret-of-32-bytes-or-more",
            algorithm="HS256",
        )
        client.connect(f"http://127.0.0.1:{hub_port}", auth={"token": token}, wait_timeout=5)
        health = json.loads(wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["hub"]["clients"] == 1

        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    assert f"{signum.name} received" in output
    if ports == 1:
        assert f"listening on http://127.0.0.1:{port}/ (and /socket.io/)" in output
    else:
        assert f"hub listening on http://127.0.0.1:{hub_port}/socket.io/" in output
    deadline = time.monotonic() + 5
    while not disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert disconnected, "the connected client was not told the server went away"
    client.disconnect()


def start_server(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m server`` on free ports, expected to stop at once."""
    return subprocess.run(
        [sys.executable, "-m", "server", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_refuses_to_start_without_a_secret_or_dev(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    del env["JWT_SECRET"]
    result = start_server(env)
    assert result.returncode == 2
    assert "JWT_SECRET is not set" in result.stderr
    assert "--dev" in result.stderr
    assert not (tmp_path / "app.db").exists()


def test_bad_settings_fail_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "not-a-number"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_settings_of_the_real_time_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # --dev keeps its secret in ./data
    settings = parse(["--dev"], env={})
    assert settings.dev and len(settings.jwt_secret) >= 32  # a random one, kept
    assert (tmp_path / "data" / "dev-jwt-secret").read_text().strip() == settings.jwt_secret
    assert settings.database_url == "sqlite:///./data/app.db"
    assert "jwt_secret" not in repr(settings)  # logs never show it
    env = {"JWT_SECRET": "s" * 32, "DATABASE_URL": "sqlite:////tmp/x.db", "DB_THREADS": "2"}
    settings = parse([], env=env)
    assert (settings.jwt_secret, settings.dev) == ("s" * 32, False)
    assert (settings.database_url, settings.db_threads) == ("sqlite:////tmp/x.db", 2)
    pg = parse([], env={"JWT_SECRET": "s" * 32, "DATABASE_URL": "postgresql://db/app"})
    assert pg.database_url == "postgresql://db/app"
    for unknown in ("mysql://db/app", "app.db"):
        with pytest.raises(SystemExit):
            parse([], env={"JWT_SECRET": "s" * 32, "DATABASE_URL": unknown})


def test_refuses_a_short_secret_outside_dev(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    env["JWT_SECRET"] = "s" * 31
    result = start_server(env)
    assert result.returncode == 2
    assert "JWT_SECRET is 31 bytes long: HS256 needs a secret of at least 32 bytes" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "app.db").exists()
    # --dev takes a short one, for trying things out
    assert parse(["--dev"], env={"JWT_SECRET": "short"}).jwt_secret == "short"


def test_rate_limits_and_handshake_limits_are_settings() -> None:
    env = {"JWT_SECRET": "s" * 32}
    defaults = dict(parse([], env=env).rate_limits)
    assert defaults["chatMessage"] == Rate(5, 20)
    changed = dict(
        parse(
            ["--rate-limit", "chatMessage=2/s:4", "--rate-limit", "typing=off"], env=env
        ).rate_limits
    )
    assert changed["chatMessage"] == Rate(2, 4) and "typing" not in changed
    assert changed["cursorMove"] == defaults["cursorMove"]
    assert parse(["--rate-limit", "off"], env=env).rate_limits == ()
    from_env = parse([], env={**env, "RATE_LIMITS": "*=1/s:1,chatMessage=off"}).rate_limits
    assert dict(from_env)["*"] == Rate(1, 1) and "chatMessage" not in dict(from_env)
    for bad in ("chatMessage", "chatMessage=fast", "=1/s"):
        with pytest.raises(SystemExit):
            parse(["--rate-limit", bad], env=env)
    settings = parse(["--max-handshaking", "10", "--max-handshaking-per-address", "0"], env=env)
    engine = settings.hub_config.engine
    assert (engine.max_handshaking, engine.max_handshaking_per_address) == (10, 0)
    assert (settings.hub.max_unjoined, settings.hub.max_unjoined_per_address) == (10, 0)


def test_one_typed_configuration_from_the_command_line_to_the_engine() -> None:
    env = {"JWT_SECRET": "s" * 32, "PING_TIMEOUT": "7"}
    settings = parse(["--ping-interval", "3", "--no-recovery", "--port", "4100"], env=env)
    config = settings.hub_config
    assert (config.engine.ping_interval, config.engine.ping_timeout) == (3.0, 7.0)
    assert config.connection_state_recovery is False
    assert config.recovery_skips_middlewares is False  # the service re-authenticates
    assert config.engine.cors_origins == ("http://localhost:4100", "http://127.0.0.1:4100")
    queue = parse(["--max-queue", "64", "--slow-consumer-timeout", "2.5"], env=env)
    engine = queue.hub_config.engine
    assert (engine.max_queue, engine.slow_consumer_timeout) == (64, 2.5)
    for bad in (
        ["--ping-interval", "0"],
        ["--port", "x"],
        ["--max-payload", "1.5"],
        ["--slow-consumer-timeout", "-1"],
    ):
        with pytest.raises(SystemExit):
            parse(bad, env=env)


def test_worker_threads_get_the_interpreter_within_a_fraction_of_a_millisecond(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``python -m server`` lowers CPython's switch interval before it runs: the database's
    worker threads otherwise wait out a busy event loop (bench/soak.py, noop-posts)."""
    import server.__main__ as entry

    seen: list[float] = []
    monkeypatch.chdir(tmp_path)  # --dev keeps its secret in ./data
    monkeypatch.setattr(entry.trio, "run", lambda *args: seen.append(sys.getswitchinterval()))
    before = sys.getswitchinterval()
    try:
        assert entry.main(["--dev", "--port", "0", "--hub-port", "0"]) == 0
    finally:
        sys.setswitchinterval(before)
    assert seen == [pytest.approx(entry.SWITCH_INTERVAL)] and entry.SWITCH_INTERVAL <= 0.0002


def start_with(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--port", "0", "--hub-port", "0", *args],
        cwd=ROOT,
        env=server_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (["--hub-port", "99999"], {}, "--hub-port / HUB_PORT: '99999': a port is 0 to 65535"),
        (["--port=-1"], {}, "--port / PORT: '-1': a port is 0 to 65535"),
        (
            ["--redis-url", "http://127.0.0.1:6379"],
            {},
            "--redis-url / REDIS_URL: 'http://127.0.0.1:6379': expected redis://host:port/db",
        ),
        ([], {"REDIS_URL": "redis://127.0.0.1:63x79/0"}, "--redis-url / REDIS_URL: 'redis://"),
        (
            [],
            {"REDIS_URL": "redis://127.0.0.1/zero"},
            "--redis-url / REDIS_URL: 'redis://127.0.0.1/zero': the database is a number",
        ),
        (
            ["--database-url", "mysql://localhost/app"],
            {},
            "--database-url / DATABASE_URL: sqlite:///path or postgresql://",
        ),
    ],
    ids=["port-range", "port-negative", "redis-scheme", "redis-port", "redis-db", "database"],
)
def test_a_bad_setting_is_one_line_and_exit_status_2(
    tmp_path: Path, args: list[str], env: dict[str, str], error: str
) -> None:
    result = start_with(tmp_path, *args, **env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("usage: python -m server")
    assert lines[-1].startswith(f"python -m server: error: {error}"), lines[-1]


@pytest.mark.parametrize("flag", ["--port", "--hub-port"])
def test_a_port_in_use_is_one_line_and_exit_status_2(tmp_path: Path, flag: str) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = start_with(tmp_path, flag, str(port))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m server: error: ") and last.endswith(
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
    ), last


def test_redis_unreachable_at_start_is_a_warning_naming_it(tmp_path: Path) -> None:
    """The server starts all the same (degraded: its own clients only), and says so once at
    WARNING level, with the URL (its password hidden)."""
    port, hub_port = free_port(), free_port()
    dead = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--hub-port", str(hub_port)],
        cwd=ROOT,
        env=server_env(tmp_path, REDIS_URL=dead),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc)
    except urllib.error.HTTPError as exc:  # degraded: /healthz says 503, but it answers
        assert exc.code == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    warnings = [line for line in output.splitlines() if " WARNING hub.bridge: Redis at " in line]
    assert warnings, output
    assert "redis://user:***@127.0.0.1:" in warnings[0] and "hunter2" not in output


def test_dev_keeps_its_secret_so_printed_tokens_survive_a_restart(tmp_path: Path) -> None:
    """``--dev`` without ``JWT_SECRET``: one random secret, kept beside the SQLite file
    (readable by its owner only), the same at the next start; another data folder gets its
    own; JWT_SECRET, when set, is used instead."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/one/app.db"}
    first = parse(["--dev"], env=env).jwt_secret
    assert parse(["--dev"], env=env).jwt_secret == first
    kept = tmp_path / "one" / "dev-jwt-secret"
    assert kept.read_text().strip() == first and len(first) >= 32
    assert kept.stat().st_mode & 0o777 == 0o600
    other = parse(["--dev"], env={"DATABASE_URL": f"sqlite:///{tmp_path}/two/app.db"})
    assert other.jwt_secret != first
    assert parse(["--dev"], env={**env, "JWT_SECRET": "given"}).jwt_secret == "given"
