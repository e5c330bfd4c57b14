"""A real nginx (Debian's) in front of two ``python -m server`` processes on one Redis, with
the configuration of ``deploy/``: polling and upgraded clients spread over both processes by
the sticky hash, and a REST call on one process reaching the clients of both."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from deploy.nginx import Node, default_nodes, render
from deploy.nginx import main as nginx_main
from tests.bridge.cluster import ServerProcess, start_cluster, tokens
from tests.bridge.proxied import ProxiedClient
from tests.bridge.redis_server import RedisServer
from tests.node_harness import free_port, stop_process
from tests.postgres import postgres_database

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def test_deploy_config_is_the_rendered_one() -> None:
    """deploy/nginx.conf is what ``python -m deploy.nginx --nodes 2`` writes."""
    assert (ROOT / "deploy" / "nginx.conf").read_text() == render(default_nodes(2))


def test_nodes_on_hosts_of_their_own(capsys: pytest.CaptureFixture[str]) -> None:
    nginx_main(["--node", "10.0.0.11", "--node", "10.0.0.12:5000", "--node", "10.0.0.13:6000:6001"])
    text = capsys.readouterr().out
    hub = text.split("upstream hub {")[1].split("}")[0]
    app = text.split("upstream app {")[1].split("}")[0]
    # one port by default; a process with --hub-port has /socket.io/ on that one
    assert "server 10.0.0.11:4000;" in hub and "server 10.0.0.12:5000;" in hub
    assert "server 10.0.0.13:6001;" in hub
    assert "server 10.0.0.11:4000;" in app and "server 10.0.0.12:5000;" in app
    assert "server 10.0.0.13:6000;" in app


@pytest.fixture(params=["one-host-sqlite", "two-hosts-postgres"])
def cluster(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[str, list[ServerProcess]]]:
    """Two processes behind nginx: on one host sharing a SQLite file, or as two hosts would
    run them (each on a loopback address of its own) on one PostgreSQL database."""
    with contextlib.ExitStack() as stack:
        extra: tuple[str, ...] = ()
        hosts: tuple[str, ...] = ()
        if request.param == "two-hosts-postgres":
            extra = ("--database-url", stack.enter_context(postgres_database()))
            hosts = ("127.0.0.2", "127.0.0.3")
        yield from _behind_nginx(redis_server, tmp_path, extra, hosts)


def _behind_nginx(
    redis_server: RedisServer, tmp_path: Path, extra: tuple[str, ...], hosts: tuple[str, ...]
) -> Iterator[tuple[str, list[ServerProcess]]]:
    listen_port = free_port()
    origin = f"http://127.0.0.1:{listen_port}"
    servers = start_cluster(
        tmp_path, redis_server.url, 2, "--cors-origins", origin, *extra, hosts=hosts
    )
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    os.chmod(prefix / "tmp", 0o777)  # nginx's workers drop root and write temp files here
    nodes = [Node(s.host, s.port) for s in servers]  # one port each
    (prefix / "nginx.conf").write_text(render(nodes, f"127.0.0.1:{listen_port}", prefix))
    assert NGINX is not None
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield origin, servers
    finally:
        stop_process(proc)
        for server in servers:
            server.stop()


async def test_clients_on_both_processes_behind_nginx(
    cluster: tuple[str, list[ServerProcess]],
) -> None:
    origin, servers = cluster
    token = tokens()
    alice = {"Authorization": f"Bearer {token['alice']}"}
    async with httpx.AsyncClient(base_url=origin, timeout=10) as api:
        # the app through the proxy: the demo project and its first task
        projects = (await api.get("/api/projects", headers=alice)).json()["projects"]
        project_id = projects[0]["id"]
        tasks = (await api.get(f"/api/projects/{project_id}/tasks", headers=alice)).json()
        task_id = tasks["tasks"][0]["id"]

    clients: list[ProxiedClient] = []
    async with trio.open_nursery() as nursery:
        try:
            for i in range(12):
                client = ProxiedClient(origin, f"127.0.0.{20 + i}")
                clients.append(client)
                await client.open()
                user = "alice" if i % 2 else "bob"
                await client.connect({"token": token[user]})
                if i % 3 == 0:
                    await client.upgrade(nursery)
                answer = await client.call("joinProject", project_id)
                assert answer["ok"] is True, answer
            # the hash spread them over both processes
            counts = [s.healthz()["hub"]["clients"] for s in servers]
            assert sum(counts) == len(clients) and min(counts) >= 1, counts
            # presence is cluster-wide: both users are online wherever one asks
            last = await clients[-1].call("joinProject", project_id, ack_id=2)
            names = sorted(m["userId"] for m in last["onlineMembers"])
            assert names == ["alice", "bob"]

            # a REST call on process 0 reaches the clients of both
            async with httpx.AsyncClient(base_url=servers[0].app_url, timeout=10) as direct:
                response = await direct.put(
                    f"/api/tasks/{task_id}", headers=alice, json={"status": "done"}
                )
                assert response.status_code == 200, response.text
            for client in clients:
                # the first argument (with connection state recovery on, an offset follows)
                update = (await client.receive_event("taskUpdated"))[0]
                assert update["taskId"] == task_id
                assert update["changes"] == {"status": "done"}
            # and one through the proxy, wherever it lands
            async with httpx.AsyncClient(base_url=origin, timeout=10) as api:
                response = await api.put(
                    f"/api/tasks/{task_id}", headers=alice, json={"status": "in_progress"}
                )
                assert response.status_code == 200, response.text
            for client in clients:
                update = (await client.receive_event("taskUpdated"))[0]
                assert update["changes"] == {"status": "in_progress"}
        finally:
            for client in clients:
                with trio.move_on_after(2) as scope:
                    scope.shield = True
                    await client.aclose()
            nursery.cancel_scope.cancel()


def _free_base() -> int:
    """A port P with P, P + 1, P + 10 and P + 11 free (two nodes' app and hub ports)."""
    for _ in range(50):
        base = free_port()
        if base + 11 > 65535:
            continue
        try:
            for port in (base, base + 1, base + 10, base + 11):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def test_make_cluster_stops_everything_on_one_ctrl_c(tmp_path: Path) -> None:
    """``python -m deploy.cluster`` (``make cluster``): Redis, two nodes and nginx; the banner
    names the one origin; one Ctrl-C (SIGINT to its process group, as a terminal sends it)
    ends every process, and the command exits 0."""
    base, redis_port, listen = _free_base(), free_port(), free_port()
    command = [
        sys.executable, "-m", "deploy.cluster",
        "--nodes", "2",
        "--base-port", str(base),
        "--redis-port", str(redis_port),
        "--listen", f"127.0.0.1:{listen}",
        "--database", str(tmp_path / "cluster.db"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "REDIS_URL")}
    log = (tmp_path / "cluster.log").open("w")
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while "cluster: 2 processes" not in (tmp_path / "cluster.log").read_text():
            assert proc.poll() is None, (tmp_path / "cluster.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()
            time.sleep(0.1)
        output = (tmp_path / "cluster.log").read_text()
        assert f"one origin for all: http://127.0.0.1:{listen}" in output
        health = httpx.get(f"http://127.0.0.1:{listen}/healthz", timeout=5)
        assert health.json()["status"] == "ok"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        for port in (base, base + 10, redis_port, listen):
            with socket.socket() as probe:
                # free again (no listener left; TIME_WAIT of the requests made is fine)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
                probe.listen()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
