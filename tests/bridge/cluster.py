"""``python -m server`` processes on one Redis, as a deployment runs them (for the process
and nginx tests). They share one SQLite file and one JWT secret; the first seeds the demo
project (``--dev``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.realtime.auth import TokenVerifier
from tests.node_harness import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bridge-cluster-test-secret-of-32-bytes-or-more"


def tokens() -> dict[str, str]:
    verifier = TokenVerifier(SECRET)
    return {
        "alice": verifier.issue("alice", "Alice", "admin"),
        "bob": verifier.issue("bob", "Bob", "member"),
    }


class ServerProcess:
    """One process; ``host`` is the loopback address it listens on (127.0.0.2, 127.0.0.3...
    stand for hosts of their own)."""

    def __init__(self, workdir: Path, redis_url: str, *extra: str, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.hub_port = self.port  # one port: the app and /socket.io/
        self.app_url = f"http://{host}:{self.port}"
        self.hub_url = f"http://{host}:{self.hub_port}"
        env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "DATABASE_URL")}
        env.update(
            JWT_SECRET=SECRET,
            DATABASE_URL=f"sqlite:///{workdir}/app.db",
            REDIS_URL=redis_url,
            MONITOR_INTERVAL="3600",
        )
        self.log = open(workdir / f"server-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--dev",
                "--host",
                host,
                "--port",
                str(self.port),
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.app_url + path, timeout=5) as response:
            body: bytes = response.read()
            return body

    def healthz(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.get("/healthz"))
        return value

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def wait_serving(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.healthz()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def start_cluster(
    workdir: Path, redis_url: str, count: int, *extra: str, hosts: Sequence[str] = ()
) -> list[ServerProcess]:
    """Start ``count`` processes one after the other (the first seeds the database), the
    i-th on ``hosts[i]`` if given."""
    started: list[ServerProcess] = []
    try:
        for i in range(count):
            host = hosts[i] if hosts else "127.0.0.1"
            server = ServerProcess(workdir, redis_url, *extra, host=host)
            started.append(server)
            server.wait_serving()
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started
