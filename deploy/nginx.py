"""The nginx configuration for N processes of ``python -m server`` behind one origin.

    python -m deploy.nginx --nodes 2 > deploy/nginx.conf        # ports 4000, 4010...
    python -m deploy.nginx --node 10.0.0.11 --node 10.0.0.12     # one process per host

Each process serves everything on one port (``python -m server --port N``); a process
started with ``--hub-port`` too is named ``HOST:APP_PORT:HUB_PORT``.

- ``/socket.io/`` goes to the hubs, **sticky**: every request of one Engine.IO session
  (long-polling GETs and POSTs, then the WebSocket upgrade) must reach the process that holds
  the session. ``hash $remote_addr consistent`` keeps a client on one process, and moving
  only a share of clients when a process is added or removed. (``ip_hash`` would hash only
  the first three bytes of an IPv4 address; behind another proxy, hash a header that carries
  the client's address instead.)
- Everything else goes to the apps (REST API, web client, /healthz, /metrics), round robin:
  they share the database, and a REST call's broadcast reaches every process's clients
  through the bridge.
- WebSocket: HTTP/1.1 upstream, ``Upgrade`` and ``Connection`` passed on, and a read timeout
  longer than the ping interval plus the ping timeout (25 + 20 s), so an idle socket is not
  cut by the proxy.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Node:
    host: str
    app_port: int
    #: The hub's own port, if it has one (``--hub-port``); by default the app's.
    hub_port: int | None = None

    @property
    def socket_io_port(self) -> int:
        return self.hub_port if self.hub_port is not None else self.app_port


def default_nodes(count: int, host: str = "127.0.0.1", base: int = 4000) -> list[Node]:
    """Process ``i`` listens on base + 10 i."""
    return [Node(host, base + 10 * i) for i in range(count)]


def render(
    nodes: Sequence[Node], listen: str = "127.0.0.1:8080", prefix: Path | None = None
) -> str:
    """The configuration text. With ``prefix``, a self-contained one for
    ``nginx -p PREFIX -c nginx.conf``: pid, logs and temporary files under ``prefix``."""
    hubs = "".join(f"        server {n.host}:{n.socket_io_port};\n" for n in nodes)
    apps = "".join(f"        server {n.host}:{n.app_port};\n" for n in nodes)
    main = ""
    temp = ""
    if prefix is not None:
        main = f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        temp = "".join(
            f"    {kind}_temp_path {prefix}/tmp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
    return f"""# nginx in front of {len(nodes)} processes of `python -m server` (deploy/nginx.py).
# One origin: the hub on /socket.io/ (sticky), the app for everything else.
worker_processes 1;
{main}
events {{
    worker_connections 8192;
}}

http {{
    access_log off;
{temp}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    upstream hub {{
        # sticky sessions: one client, one process (see deploy/nginx.py)
        hash $remote_addr consistent;
{hubs}    }}

    upstream app {{
{apps}        keepalive 16;
    }}

    server {{
        listen {listen};

        location /socket.io/ {{
            proxy_pass http://hub;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # long-polling GETs and idle WebSockets: longer than ping interval + timeout
            proxy_read_timeout 75s;
            proxy_send_timeout 75s;
            proxy_buffering off;
        }}

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def parse_node(text: str) -> Node:
    """``HOST`` (port 4000), ``HOST:PORT``, or ``HOST:APP_PORT:HUB_PORT`` (a process started
    with ``--hub-port``)."""
    host, _, ports = text.partition(":")
    if not ports:
        return Node(host, 4000)
    app, _, hub = ports.partition(":")
    try:
        return Node(host, int(app), int(hub) if hub else None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected HOST, HOST:PORT or HOST:APP_PORT:HUB_PORT"
        ) from None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.nginx", description=__doc__)
    parser.add_argument("--nodes", type=int, default=2, help="processes (ports 4000 + 10 i)")
    parser.add_argument("--host", default="127.0.0.1", help="where the processes listen")
    parser.add_argument(
        "--node",
        type=parse_node,
        action="append",
        metavar="HOST[:PORT[:HUB_PORT]]",
        help="one process on a host of its own (repeat it; instead of --nodes and --host)",
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", help="nginx's address")
    parser.add_argument("--prefix", type=Path, help="self-contained: pid, logs, temp here")
    args = parser.parse_args(argv)
    nodes = args.node or default_nodes(args.nodes, args.host)
    print(render(nodes, args.listen, args.prefix.resolve() if args.prefix else None), end="")


if __name__ == "__main__":
    main()
