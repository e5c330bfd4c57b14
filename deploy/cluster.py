"""``make cluster``: several processes of ``python -m server`` on one Redis, behind nginx.

    python -m deploy.cluster [--nodes 2] [--redis-url redis://...] [--listen 127.0.0.1:8080]
                             [--base-port 4000] [--redis-port 6380] [--database data/cluster.db]
                             [--database-url postgresql://...]

- Redis: ``--redis-url`` (or ``REDIS_URL``) if given; otherwise a ``redis-server`` of its own
  on 127.0.0.1:``--redis-port``, without persistence.
- Process ``i`` serves everything (the app and ``/socket.io/``) on base + 10 i, all with
  ``--dev`` on one SQLite file and one JWT secret, so a demo token works on any, and with
  ``--public-url`` the nginx origin, which their banners name.
- ``CORS_ORIGINS`` (comma-separated) adds browser origins to those the processes allow (the
  nginx origin and their own); ``ADMIN_UI`` and the other settings of the environment reach
  every process.
- nginx, when installed, on ``--listen`` with the configuration of ``deploy/nginx.py``:
  one origin, the hub sticky on ``/socket.io/``.

One Ctrl-C (or SIGTERM) stops everything, as does the end of any of the processes.
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
    parser.add_argument("--base-port", type=int, default=4000)
    parser.add_argument("--redis-port", type=int, default=6380)
    parser.add_argument("--database", default=str(ROOT / "data" / "cluster.db"))
    parser.add_argument(
        "--database-url",
        default="",
        help="postgresql://... : every process on that database (instead of --database)",
    )
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
                        str(args.redis_port),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(prefix),
                    ]
                )
            )
            redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
            time.sleep(0.5)
        nodes = default_nodes(args.nodes, base=args.base_port)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        with_nginx = os.path.exists(nginx)
        origins = [f"http://{args.listen}", f"http://localhost:{args.listen.rsplit(':', 1)[1]}"]
        origins += [f"http://127.0.0.1:{n.app_port}" for n in nodes]
        # and those the environment adds (the Admin UI's page, say)
        origins += [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
        Path(args.database).parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("JWT_SECRET", secrets.token_urlsafe(32))
        database_url = args.database_url or f"sqlite:///{Path(args.database).resolve()}"
        env.update(REDIS_URL=redis_url, DATABASE_URL=database_url)
        for i, node in enumerate(nodes):
            command = [
                sys.executable,
                "-m",
                "server",
                "--dev",
                "--port",
                str(node.app_port),
                "--cors-origins",
                ",".join(origins),
            ]
            if with_nginx:
                command += ["--public-url", f"http://{args.listen}"]
            procs.append(subprocess.Popen(command, cwd=ROOT, env=env))
            if i == 0:
                time.sleep(2)  # the first one creates and seeds the database
        if with_nginx:
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
        _wait_for_a_stop(procs)
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


def _wait_for_a_stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Until SIGINT or SIGTERM, or until one of the processes ends (say which)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    while True:
        for proc in procs:
            if proc.poll() is not None:
                print(f"cluster: {proc.args[0]} ended ({proc.returncode}); stopping", flush=True)
                return
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
