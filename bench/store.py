"""The store's latency per operation, SQLite against PostgreSQL, in one run.

    python -m bench.store [--quick] [--repeat N] [--concurrency C] [--out bench/results]

Each store gets the same data (projects with members and tasks, a long chat history,
notifications waiting) and then the queries the service makes, measured from the Trio side
as the service sees them (the hop to a worker thread included):

- one at a time, ``--repeat`` times each: median, p90 and p99 per operation;
- then a mix of them from ``--concurrency`` tasks at once (what a busy process asks):
  operations per second and the latency quantiles of the mix.

SQLite is a file in a temporary folder (WAL, as the server runs it); PostgreSQL is a
database of the bench's own on ``--postgres`` (default the machine's 127.0.0.1:5432, user
postgres), dropped afterwards. Prints a table, writes JSON to ``--out``. Both stores use
``--threads`` worker threads (the server's ``--db-threads``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import trio
from psycopg import sql

from bench.report import machine_info
from server.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"triohub_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary_ms(samples: list[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in samples)
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p90_ms": round(quantile(values, 0.90), 3),
        "p99_ms": round(quantile(values, 0.99), 3),
        "max_ms": round(values[-1], 3),
    }


class Data:
    """What the queries run against; ids as the store gave them."""

    def __init__(self) -> None:
        self.projects: list[int] = []
        self.members: dict[int, list[str]] = {}
        self.tasks: list[int] = []
        self.busy_project = 0
        self.last_message = 0


async def fill(store: Store, *, projects: int, members: int, tasks: int, messages: int) -> Data:
    data = Data()
    for p in range(projects):
        project = await store.create_project(f"Project {p}", "admin")
        data.projects.append(project.id)
        users = [f"user{(p * 7 + m) % (members * 3)}" for m in range(members)]
        data.members[project.id] = users
        for user in users:
            await store.add_member(project.id, user, user.title())
        for t in range(tasks):
            task = await store.create_task(
                project.id,
                f"Task {t}",
                description="",
                status="todo",
                assignee_id=users[t % len(users)],
                created_by="admin",
            )
            data.tasks.append(task.id)
    data.busy_project = data.projects[0]
    last = None
    for i in range(messages):
        user = data.members[data.busy_project][i % members]
        last = await store.add_message(data.busy_project, user, user.title(), f"msg {i}", None)
    data.last_message = last.id if last else 0
    for user in data.members[data.busy_project]:
        for n in range(5):
            await store.add_notification(user, "task", f"n{n}", "body", "/tasks/1")
    return data


Op = Callable[[int], Awaitable[Any]]


def operations(store: Store, data: Data) -> dict[str, Op]:
    """The service's queries, named as in the store; ``i`` varies the arguments."""
    busy = data.busy_project
    users = data.members[busy]

    def user(i: int) -> str:
        return users[i % len(users)]

    async def claim_and_release(i: int) -> None:
        unread = await store.list_notifications(user(i), unread_only=True, limit=1)
        ids = [n.id for n in unread]
        await store.claim_deliveries(f"bench-{i}", ids)
        await store.release_deliveries(f"bench-{i}", ids)

    return {
        # joinProject: the membership check
        "is_member": lambda i: store.is_member(busy, user(i)),
        # chatMessage: a reply's parent, then the insert
        "get_message": lambda i: store.get_message(data.last_message - i % 100),
        "add_message": lambda i: store.add_message(busy, user(i), "U", f"bench {i}", None),
        # GET /api/projects/:id/messages: the newest page, and one further back
        "list_messages": lambda i: store.list_messages(busy, limit=50),
        "list_messages_before": lambda i: store.list_messages(
            busy, before=data.last_message - 1000, limit=50
        ),
        # PUT /api/tasks/:id
        "get_task": lambda i: store.get_task(data.tasks[i % len(data.tasks)]),
        "update_task": lambda i: store.update_task(
            data.tasks[i % len(data.tasks)], {"status": ("todo", "in_progress", "done")[i % 3]}
        ),
        "add_notification": lambda i: store.add_notification(user(i), "task", "t", "b", "/x"),
        # the board and the lists a page asks for
        "list_tasks": lambda i: store.list_tasks(data.projects[i % len(data.projects)]),
        "list_members": lambda i: store.list_members(busy),
        "list_projects": lambda i: store.list_projects(user(i)),
        # connect: what waits for the user, and the claim (exactly once per connection)
        "list_notifications_unread": lambda i: store.list_notifications(
            user(i), unread_only=True, oldest_first=True
        ),
        "claim_and_release": claim_and_release,
        "ping": lambda i: store.ping(),
    }


async def measure(ops: dict[str, Op], repeat: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, op in ops.items():
        for i in range(min(20, repeat)):  # warm the caches and the pool
            await op(i)
        samples = []
        for i in range(repeat):
            start = time.perf_counter()
            await op(i)
            samples.append(time.perf_counter() - start)
        out[name] = summary_ms(samples)
    return out


async def mixed(ops: dict[str, Op], concurrency: int, duration: float) -> dict[str, Any]:
    """``concurrency`` tasks, each running the operations in turn for ``duration`` s."""
    names = list(ops)
    samples: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker(w: int) -> None:
        i = w
        while time.perf_counter() < deadline:
            op = ops[names[i % len(names)]]
            start = time.perf_counter()
            await op(i)
            samples.append(time.perf_counter() - start)
            i += concurrency

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(worker, w)
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "ops_per_s": round(len(samples) / elapsed, 1),
        **summary_ms(samples),
    }


async def bench_store(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = await open_store(url, max_threads=args.threads)
    try:
        t0 = time.perf_counter()
        data = await fill(
            store,
            projects=args.projects,
            members=args.members,
            tasks=args.tasks,
            messages=args.messages,
        )
        fill_s = time.perf_counter() - t0
        ops = operations(store, data)
        single = await measure(ops, args.repeat)
        mix = await mixed(ops, args.concurrency, args.duration)
    finally:
        await store.aclose()
    return {"fill_s": round(fill_s, 2), "operations": single, "mixed": mix}


def table(results: dict[str, dict[str, Any]]) -> str:
    sqlite, pg = results["sqlite"], results["postgres"]
    lines = [
        "| operation | SQLite p50 / p99 (ms) | PostgreSQL p50 / p99 (ms) | p50 PostgreSQL/SQLite |",
        "|---|---|---|---|",
    ]
    for name, s in sqlite["operations"].items():
        p = pg["operations"][name]
        ratio = p["p50_ms"] / s["p50_ms"] if s["p50_ms"] else float("nan")
        lines.append(
            f"| {name} | {s['p50_ms']:.3f} / {s['p99_ms']:.3f} | "
            f"{p['p50_ms']:.3f} / {p['p99_ms']:.3f} | {ratio:.2f} |"
        )
    sm, pm = sqlite["mixed"], pg["mixed"]
    lines.append(
        f"| mixed, {sm['concurrency']} at once: ops/s, p50 / p99 | "
        f"{sm['ops_per_s']:,.0f}, {sm['p50_ms']:.2f} / {sm['p99_ms']:.2f} | "
        f"{pm['ops_per_s']:,.0f}, {pm['p50_ms']:.2f} / {pm['p99_ms']:.2f} | "
        f"{pm['ops_per_s'] / sm['ops_per_s']:.2f} (ops/s) |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small data, 50 repeats, 2 s mix")
    parser.add_argument("--repeat", type=int, help="measurements per operation (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, help="seconds of the mix (default 10)")
    parser.add_argument("--threads", type=int, default=4, help="the server's --db-threads")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--members", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=100, help="per project")
    parser.add_argument("--messages", type=int, help="chat history (default 20000)")
    parser.add_argument("--postgres", default=ADMIN_URL, help="a URL to create databases from")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.repeat = args.repeat or (50 if args.quick else 1000)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.messages = args.messages or (500 if args.quick else 20000)
    if args.quick:
        args.projects, args.tasks = min(args.projects, 3), min(args.tasks, 20)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = trio.run(bench_store, f"sqlite:///{folder}/bench.db", args)
    with postgres_database(args.postgres) as url:
        results["postgres"] = trio.run(bench_store, url, args)

    print(table(results))
    doc = {
        "bench": "store",
        "machine": machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "postgres")},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"store-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
