"""``make cluster``: several processes of ``python -m server`` on one Redis, behind nginx.

    python -m deploy.cluster [--nodes 2] [--redis-url redis://...] [--listen 127.0.0.1:8080]

- Redis: ``--redis-url`` (or ``REDIS_URL``) if given; otherwise a ``redis-server`` of its own
  on 127.0.0.1:6380, without persistence.
- Process ``i`` serves its app on 4000 + 10 i and its hub on 4001 + 10 i, all with ``--dev``
  on one SQLite file (``data/cluster.db``) and one JWT secret, so a demo token works on any.
- nginx, when installed, on ``--listen`` with the configuration of ``deploy/nginx.py``:
  one origin, the hub sticky on ``/socket.io/``.

Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.nginx import default_nodes, render

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--listen", default="127.0.0.1:8080")
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    prefix = Path(tempfile.mkdtemp(prefix="cluster-nginx-"))
    try:
        redis_url = args.redis_url
        if not redis_url:
            redis = shutil.which("redis-server")
            if redis is None:
                sys.exit("redis-server is not installed: install it or pass --redis-url")
            procs.append(
                subprocess.Popen(
                    [
                        redis,
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        "6380",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(prefix),
                    ]
                )
            )
            redis_url = "redis://127.0.0.1:6380/0"
            time.sleep(0.5)
        nodes = default_nodes(args.nodes)
        origins = [f"http://{args.listen}", f"http://localhost:{args.listen.rsplit(':', 1)[1]}"]
        origins += [f"http://127.0.0.1:{n.app_port}" for n in nodes]
        (ROOT / "data").mkdir(exist_ok=True)
        env = dict(os.environ)
        env.setdefault("JWT_SECRET", secrets.token_urlsafe(32))
        env.update(REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{ROOT}/data/cluster.db")
        for i, node in enumerate(nodes):
            command = [
                sys.executable,
                "-m",
                "server",
                "--dev",
                "--port",
                str(node.app_port),
                "--hub-port",
                str(node.hub_port),
                "--cors-origins",
                ",".join(origins),
            ]
            procs.append(subprocess.Popen(command, cwd=ROOT, env=env))
            if i == 0:
                time.sleep(2)  # the first one creates and seeds the database
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if os.path.exists(nginx):
            (prefix / "tmp").mkdir()
            os.chmod(prefix / "tmp", 0o777)
            (prefix / "nginx.conf").write_text(render(nodes, args.listen, prefix))
            procs.append(
                subprocess.Popen(
                    [
                        nginx,
                        "-p",
                        str(prefix),
                        "-c",
                        str(prefix / "nginx.conf"),
                        "-g",
                        "daemon off;",
                    ]
                )
            )
            print(
                f"cluster: {len(nodes)} processes on {redis_url}, one origin on "
                f"http://{args.listen}/ (nginx)",
                flush=True,
            )
        else:
            print(
                f"cluster: {len(nodes)} processes on {redis_url}; nginx is not installed, "
                f"so no single origin",
                flush=True,
            )
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
