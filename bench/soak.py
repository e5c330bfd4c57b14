"""Soak: flood, half-open and surrogate-bomb a real ``python -m server`` while a control client
measures its round trips.

python -m bench.soak [--repo PATH] [--duration 10] [--quick] [--only idle,chat-flood]
                     [--attackers 4] [--post-bytes 1000000] [--half-open 4096]
                     [--bomb-rate 2] [--out bench/results]

Each scenario starts a fresh server process of ``--repo`` (its own ``.venv/bin/python`` if it
has one, with cwd=PATH), so one scenario's damage never skews the next. The attackers run in a
child process (``bench.soak_attacks``); the control client (python-socketio's stock
``socketio.Client``), the ``/healthz`` prober and the fresh connections run here. Prints a
Markdown table, writes ``<out>/soak-<timestamp>.json`` and ``<out>/soak-latest.json``. A
server that dies is a result (``died (status N)``), not a failure: the exit status is 1 only
when the script itself failed (a scenario or an attacker raised). See bench/README.md, "Soak".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import socketio

from bench import soak_attacks

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SCENARIO_NAMES = ("idle", "noop-posts", "half-open", "unjoined", "surrogate-bomb", "chat-flood")
RATE_LIMITED = "Rate limit exceeded"
#: what ``--quick`` changes (a smoke test: every scenario in a couple of seconds)
QUICK = {"duration": 2.0, "attackers": 2, "post_bytes": 100_000, "half_open": 300}

Figures = dict[str, Any]


class SoakError(RuntimeError):
    """The script could not do what a scenario asks (not the server misbehaving)."""


@dataclass(frozen=True)
class Config:
    duration: float = 10.0
    attackers: int = 4
    post_bytes: int = 1_000_000
    half_open: int = 4096
    bomb_rate: float = 2.0
    quick: bool = False


# ---- the server under test -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Target:
    """Which checkout is served, and by which interpreter."""

    repo: Path
    python: str

    @classmethod
    def of(cls, repo: Path) -> Target:
        """``repo``'s own venv if it has one; else this interpreter, which still imports
        ``server`` from ``repo`` because ``python -m`` puts the cwd first on ``sys.path``."""
        own = repo / ".venv" / "bin" / "python"
        return cls(repo, str(own) if own.exists() else sys.executable)

    def server_package(self) -> str:
        """Where ``import server`` resolves from ``repo``: proof that the right code runs."""
        proc = subprocess.run(
            [self.python, "-c", "import server; print(server.__file__)"],
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout.strip() or proc.stderr.strip()[-500:]

    def commit(self) -> dict[str, Any]:
        def git(*args: str) -> str:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), *args], capture_output=True, text=True, timeout=30
            )
            return proc.stdout.strip()

        modified = git("status", "--porcelain", "--untracked-files=no").splitlines()
        return {"commit": git("rev-parse", "HEAD"), "modified_files": len(modified)}


class ServerProcess:
    """One ``python -m server`` of the target, on free ports, with a database of its own.

    Its output goes to a file (a pipe nobody reads could fill and stall it). ``sample`` keeps
    the last RSS, peak RSS and fd count read from /proc, so a server that dies still has
    figures from just before."""

    def __init__(self, target: Target, workdir: Path, fd_soft_limit: int) -> None:
        self.target = target
        self.workdir = workdir
        self.fd_soft_limit = fd_soft_limit
        self.app_port = free_port()
        self.hub_port = free_port()
        self.app_url = f"http://{HOST}:{self.app_port}"
        self.hub_url = f"http://{HOST}:{self.hub_port}"
        self.secret = secrets.token_urlsafe(36)  # 48 characters
        self.db_path = workdir / "soak.db"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.last: dict[str, Any] = {}

    def start(self, timeout: float = 30.0) -> None:
        command = [
            self.target.python, "-m", "server",
            "--host", HOST,
            "--port", str(self.app_port),
            "--hub-port", str(self.hub_port),
            "--database-url", f"sqlite:///{self.db_path}",
            "--log-level", "WARNING",
            "--monitor-interval", "3600",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.target.repo,
                env={**os.environ, "JWT_SECRET": self.secret},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # the server gets the descriptor limit this script was started with, not the one the
        # script raised for its own attackers
        with contextlib.suppress(OSError):
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.prlimit(self.proc.pid, resource.RLIMIT_NOFILE, (self.fd_soft_limit, hard))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Both listeners up: /healthz answers on the app port and the hub port accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_status() is not None:
                raise SoakError(f"the server exited at start: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, OSError):
                if httpx.get(f"{self.app_url}/healthz", timeout=1).status_code == 200:
                    socket.create_connection((HOST, self.hub_port), timeout=1).close()
                    return
            time.sleep(0.1)
        raise SoakError(f"the server was not up within {timeout:.0f} s: {self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def exit_status(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def sample(self) -> dict[str, Any]:
        """RSS and peak RSS (MB, VmRSS and VmHWM) and open fds, from /proc; {} if it is gone
        (a zombie, dead but not yet reaped, has no memory lines)."""
        if self.exit_status() is not None:
            return {}
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return {}
        kb = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        if len(kb) < 2:
            return {}
        self.last = {
            "rss_mb": round(kb["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(kb["VmHWM"] / 1024, 1),
            "fds": fds,
        }
        return self.last

    def fd_limit(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def db_bytes(self) -> int:
        """The database with its WAL and shared-memory files."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{self.db_path}{suffix}")
        return total

    def stop(self) -> dict[str, Any]:
        """SIGTERM (the graceful shutdown), SIGKILL after 8 s; its status and how long."""
        proc = self.proc
        if proc is None:
            return {}
        if proc.poll() is not None:
            return {"stop_status": proc.returncode, "stop_s": 0.0}
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        killed = False
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        return {
            "stop_status": proc.returncode,
            "stop_s": round(time.monotonic() - t, 2),
            "killed_after_8s": killed,
        }

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


# ---- REST ------------------------------------------------------------------------------------


class Api:
    """The app's REST API, as an admin (setup) or as any member (tokens signed here)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.admin = self.token("soak-admin", "admin")
        self.http = httpx.Client(
            base_url=server.app_url, timeout=10, headers={"Authorization": f"Bearer {self.admin}"}
        )

    def token(self, user_id: str, role: str = "member") -> str:
        claims = {"userId": user_id, "userName": user_id, "role": role, "exp": time.time() + 3600}
        return jwt.encode(claims, self.server.secret, algorithm="HS256")

    def setup(self, name: str, members: list[str]) -> int:
        """A project with these members; its id."""
        response = self.http.post("/api/projects", json={"name": name})
        if response.status_code != 201:
            raise SoakError(f"POST /api/projects: {response.status_code} {response.text[:200]}")
        project_id: int = response.json()["id"]
        for user in members:
            response = self.http.post(
                f"/api/projects/{project_id}/members", json={"userId": user, "userName": user}
            )
            if response.status_code != 201:
                raise SoakError(f"adding {user}: {response.status_code} {response.text[:200]}")
        return project_id

    def post_task_text(self, project_id: int, text: bytes, as_user: str | None = None) -> int | str:
        """POST a task with exactly this JSON text (as the admin, or as the member
        ``as_user``, who has a REST budget of their own); the HTTP status (or the failure)."""
        headers = {"Content-Type": "application/json"}
        if as_user is not None:
            headers["Authorization"] = f"Bearer {self.token(as_user)}"
        try:
            response = self.http.post(
                f"/api/projects/{project_id}/tasks", content=text, headers=headers, timeout=3
            )
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return response.status_code

    def count_messages(self, project_id: int, budget_s: float = 60.0) -> tuple[int, bool]:
        """Messages in the history, paging back 200 at a time; (count, complete)."""
        count, before, deadline = 0, None, time.monotonic() + budget_s
        while time.monotonic() < deadline:
            params: dict[str, Any] = {"limit": 200}
            if before is not None:
                params["before"] = before
            response = self.http.get(f"/api/projects/{project_id}/messages", params=params)
            response.raise_for_status()
            page = response.json()["messages"]
            if not page:
                return count, True
            count += len(page)
            before = min(m["id"] for m in page)
        return count, False

    def close(self) -> None:
        self.http.close()


# ---- the control client and other python-socketio members ------------------------------------


def has_surrogate(value: Any) -> bool:
    """True if a string anywhere in ``value`` holds a lone surrogate (a code point UTF-8
    cannot encode; a real emoji is one code point in Python, never a pair)."""
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_surrogate(v) for v in value)
    return False


class Member:
    """A python-socketio client in the project, counting the events it gets: all of them by
    name, the bomber's ``canary N`` messages, and events carrying a lone surrogate."""

    def __init__(
        self,
        hub_url: str,
        token: str,
        project_id: int,
        transports: list[str] | None = None,
        t0: float | None = None,
    ) -> None:
        self.hub_url = hub_url
        self.token = token
        self.project_id = project_id
        self.transports = transports or ["websocket"]
        self.client = socketio.Client(reconnection=False, request_timeout=2)
        self.events: Counter[str] = Counter()
        self.canaries = 0
        self.surrogates = 0
        self.client.on("*", self._on_event)
        self.client.on("disconnect", self._on_disconnect)
        self.t0 = time.monotonic() if t0 is None else t0
        #: (seconds since t0, the reason python-socketio gives)
        self.disconnects: list[tuple[float, str]] = []
        self.closing = False

    def connect(self, join: bool = True, timeout: float = 5.0) -> None:
        self.client.connect(
            self.hub_url,
            auth={"token": self.token},
            transports=self.transports,
            wait_timeout=timeout,
        )
        if join:
            answer = self.client.call("joinProject", self.project_id, timeout=timeout)
            if not (isinstance(answer, dict) and answer.get("ok")):
                raise SoakError(f"joinProject answered {answer!r}")

    def _on_event(self, event: str, *args: Any) -> None:
        self.events[event] += 1
        body = args[0] if args else None
        if event == "newMessage" and isinstance(body, dict):
            message = body.get("message")
            if isinstance(message, str) and message.startswith("canary "):
                self.canaries += 1
        if has_surrogate(args):
            self.surrogates += 1

    def _on_disconnect(self, *args: Any) -> None:
        if not self.closing:
            reason = str(args[0]) if args else "?"
            self.disconnects.append((round(time.monotonic() - self.t0, 2), reason))

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            self.client.disconnect()

    def figures(self) -> Figures:
        return {
            "connected_at_end": self.connected,
            "events": dict(self.events),
            "canaries_seen": self.canaries,
            "events_with_surrogates": self.surrogates,
            "disconnects": self.disconnects,
        }


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (q=0.5 is the median); None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Control:
    """The measuring side, on threads of this process:

    - python-socketio's stock client, over WebSocket, as its own user, joined to the project:
      ``typing`` with an ack (``call``, 2 s timeout) every 100 ms, each round trip recorded;
      a timeout or any failure counts as one, a ``Rate limit exceeded`` answer as limited;
      and ``chatMessage`` with an ack every 500 ms, which writes to the database (on a
      worker thread): its round trips are recorded apart (``chat_round_trip_ms``);
    - ``GET /healthz`` every 0.5 s (2 s timeout);
    - every second, a fresh python-socketio client connecting (and leaving again).
    """

    def __init__(self, server: ServerProcess, api: Api, project_id: int) -> None:
        self.server = server
        self.api = api
        self.project_id = project_id
        self.t0 = time.monotonic()
        self.member = self._member()
        self.stopping = threading.Event()
        self.round_trips: list[float] = []
        self.chat_round_trips: list[float] = []
        self.chat_failures: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.calls = 0
        self.limited = 0
        self.reconnects = 0
        self.ticks_skipped = 0
        self.earlier_disconnects: list[tuple[float, str]] = []
        self.healthz = [0, 0]  # answered, asked
        self.healthz_s: list[float] = []
        self.fresh = [0, 0]  # connected, tried
        self.fresh_errors: Counter[str] = Counter()
        self.threads = [
            threading.Thread(target=self._typing_loop, daemon=True),
            threading.Thread(target=self._chat_loop, daemon=True),
            threading.Thread(target=self._healthz_loop, daemon=True),
            threading.Thread(target=self._fresh_loop, daemon=True),
        ]
        self.result: Figures | None = None

    def _member(self) -> Member:
        token = self.api.token("control")
        return Member(self.server.hub_url, token, self.project_id, t0=self.t0)

    def start(self) -> None:
        self.member.connect()
        for thread in self.threads:
            thread.start()

    def _every(self, interval: float, step: Callable[[], None]) -> int:
        """``step`` on an absolute schedule; ticks missed while it ran (a call waiting for
        its timeout) are skipped, not caught up in a burst. The number skipped."""
        due = time.monotonic()
        skipped = 0
        while not self.stopping.is_set():
            step()
            due += interval
            now = time.monotonic()
            if due < now:
                missed = int((now - due) // interval) + 1
                skipped += missed
                due += missed * interval
            self.stopping.wait(due - now)
        return skipped

    def _typing_loop(self) -> None:
        last_reconnect = [0.0]

        def step() -> None:
            self.calls += 1
            if not self.member.connected:
                self.failures["disconnected"] += 1
                if time.monotonic() - last_reconnect[0] > 1.0:
                    last_reconnect[0] = time.monotonic()
                    self._reconnect()
                return
            self._typing_once()

        self.ticks_skipped = self._every(0.1, step)

    def _typing_once(self) -> None:
        body = {"projectId": self.project_id, "isTyping": True}
        self.limited += self._call_once("typing", body, self.round_trips, self.failures)

    def _chat_loop(self) -> None:
        n = 0

        def step() -> None:
            nonlocal n
            n += 1
            if self.member.connected:
                body = {"projectId": self.project_id, "message": f"control {n}"}
                self._call_once("chatMessage", body, self.chat_round_trips, self.chat_failures)

        self._every(0.5, step)

    def _call_once(
        self, event: str, body: Any, samples: list[float], failures: Counter[str]
    ) -> int:
        """One call with an ack: its round trip goes to ``samples``; 1 if rate-limited."""
        t = time.perf_counter()
        try:
            answer = self.member.client.call(event, body, timeout=2)
        except socketio.exceptions.TimeoutError:
            failures["timeout"] += 1
            return 0
        except Exception as exc:
            failures[type(exc).__name__] += 1
            return 0
        elapsed = time.perf_counter() - t
        if isinstance(answer, dict) and answer.get("ok") is True:
            samples.append(elapsed)
        elif isinstance(answer, dict) and answer.get("error") == RATE_LIMITED:
            samples.append(elapsed)
            return 1
        else:
            failures[f"answer {answer!r}"[:80]] += 1
        return 0

    def _reconnect(self) -> None:
        self.earlier_disconnects += self.member.disconnects
        self.member.close()
        member = self._member()
        try:
            member.connect()
        except Exception:
            member.close()
            return
        self.member = member
        self.reconnects += 1

    def _healthz_loop(self) -> None:
        def step() -> None:
            self.healthz[1] += 1
            t = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.server.app_url}/healthz", timeout=2)
                if response.status_code == 200:
                    self.healthz[0] += 1
                    self.healthz_s.append(time.perf_counter() - t)

        self._every(0.5, step)

    def _fresh_loop(self) -> None:
        def step() -> None:
            self.fresh[1] += 1
            member = Member(self.server.hub_url, self.api.token("fresh"), self.project_id)
            try:
                member.connect(join=False, timeout=2)
                self.fresh[0] += member.connected
            except Exception as exc:
                self.fresh_errors[f"{type(exc).__name__}: {exc}"[:100]] += 1
            finally:
                member.close()

        self._every(1.0, step)

    def stop(self) -> Figures:
        """Stop measuring (once); the figures."""
        if self.result is not None:
            return self.result
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
        ms = [t * 1000 for t in self.round_trips]
        chat_ms = [t * 1000 for t in self.chat_round_trips]
        self.result = {
            "calls": self.calls,
            "answered": len(ms),
            "round_trip_ms": {
                "p50": _round(quantile(ms, 0.5)),
                "p99": _round(quantile(ms, 0.99)),
                "max": _round(max(ms, default=None)),
            },
            "chat_round_trip_ms": {
                "n": len(chat_ms),
                "p50": _round(quantile(chat_ms, 0.5)),
                "p99": _round(quantile(chat_ms, 0.99)),
                "max": _round(max(chat_ms, default=None)),
            },
            "chat_failures": dict(self.chat_failures),
            "failures": sum(self.failures.values()),
            "failure_reasons": dict(self.failures),
            "limited": self.limited,
            "ticks_skipped_waiting": self.ticks_skipped,
            "reconnects": self.reconnects,
            "healthz": {
                "answered": self.healthz[0],
                "asked": self.healthz[1],
                "p50_ms": _round(quantile([t * 1000 for t in self.healthz_s], 0.5)),
                "max_ms": _round(max(self.healthz_s, default=0) * 1000 or None),
            },
            "fresh_connects": {
                "connected": self.fresh[0],
                "tried": self.fresh[1],
                "errors": dict(self.fresh_errors),
            },
            **self.member.figures(),
        }
        self.result["disconnects"] = self.earlier_disconnects + self.member.disconnects
        self.member.close()
        return self.result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---- one scenario's run --------------------------------------------------------------------


@dataclass
class Run:
    """What a scenario function gets: the server, the project, the control client, and the
    measured window (:meth:`hold`) with the attackers' child process (:meth:`attack`)."""

    cfg: Config
    server: ServerProcess
    api: Api
    project_id: int
    control: Control
    end: dict[str, Any] = field(default_factory=dict)
    attack_errors: list[str] = field(default_factory=list)

    def args(self, user: str, **more: Any) -> dict[str, Any]:
        """The arguments every attack gets, with a token for ``user``."""
        return {
            "hub_port": self.server.hub_port,
            "project_id": self.project_id,
            "token": self.api.token(user),
            **more,
        }

    def hold(self, tick: Callable[[float], None] | None = None) -> None:
        """The measured window: ``duration`` seconds, sampling the server's memory (and
        calling ``tick(elapsed)``) every 0.25 s; then the end figures, read while the
        attack is still on, and the control client stopped."""
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < self.cfg.duration:
            self.server.sample()
            if tick is not None:
                tick(elapsed)
            time.sleep(min(0.25, max(0.0, self.cfg.duration - elapsed)))
        self.end = {
            "exit_status": self.server.exit_status(),
            "at_end": self.server.sample(),
            "last_seen": dict(self.server.last),
            "fd_limit": self.server.fd_limit(),
        }
        self.control.stop()

    @contextlib.contextmanager
    def attack(self, name: str, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run attack ``name`` in a child process while the body runs; the dict it yields is
        filled with the attack's result when the block ends (``stop`` set, result awaited)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=soak_attacks.child_main, args=(name, args, child), daemon=True)
        proc.start()
        child.close()
        result: dict[str, Any] = {}
        try:
            message = self._receive(parent, proc, timeout=120)
            if message[0] != "ready":
                self._attack_failed(name, message, result)
            yield result
        finally:
            with contextlib.suppress(OSError):
                parent.send("stop")
            if not result:
                self._attack_failed(name, self._receive(parent, proc, timeout=60), result)
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            parent.close()

    def _attack_failed(self, name: str, message: tuple[str, Any], result: dict[str, Any]) -> None:
        kind, payload = message
        if kind == "result":
            result.update(payload)
            return
        self.attack_errors.append(f"{name}: {payload}")
        result["error"] = str(payload)

    @staticmethod
    def _receive(
        conn: Any, proc: multiprocessing.process.BaseProcess, timeout: float
    ) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while not conn.poll(0.2):
            if not proc.is_alive() and not conn.poll(0.2):
                return ("error", f"the attack process died (exit code {proc.exitcode})")
            if time.monotonic() > deadline:
                return ("error", f"no answer from the attack process in {timeout:.0f} s")
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError) as exc:
            return ("error", f"the attack process went away: {exc}")
        return kind, payload


# ---- the scenarios -----------------------------------------------------------------------------


def idle(run: Run) -> Figures:
    run.hold()
    return {"notes": "control client alone"}


def noop_posts(run: Run) -> Figures:
    args = run.args("noop", attackers=run.cfg.attackers, post_bytes=run.cfg.post_bytes)
    with run.attack("noop_posts", args) as result:
        run.hold()
    if "error" in result:
        return {**result, "notes": f"attack failed: {_first_line(result['error'])}"}
    statuses = {k: v for k, v in result["post_statuses"].items() if k != 200}
    notes = (
        f"{result['attackers']} x {result['body_bytes'] / 1e6:.1f} MB NOOP bodies: "
        f"POSTs answered {result['posts_answered']:,} "
        f"(median {_ms(result['post_median_ms'])} each)"
    )
    if statuses:
        notes += f", other statuses {statuses}"
    if result["connections_closed_by_server"]:
        notes += f", connections closed by server {result['connections_closed_by_server']}"
    return {**result, "notes": notes}


def half_open(run: Run, kind: str = "http") -> Figures:
    args = run.args("half-open", connections=run.cfg.half_open, kind=kind)
    with run.attack("half_open", args) as result:
        run.hold()
    if "error" in result:
        return {**result, "notes": f"attack failed: {_first_line(result['error'])}"}
    fresh = run.control.stop()["fresh_connects"]
    median = result["median_s_to_close"]
    notes = (
        f"refused or closed {result['refused_or_closed']:,}/{result['connections']:,}"
        + (f" (median after {_seconds(median)})" if median is not None else "")
        + f", held {result['outcomes'].get('held', 0):,}"
    )
    after = result.get("median_s_to_answer_by_status", {})
    answers = ", ".join(
        f"{n:,} x {status}" + (f" ({_seconds(after[status])})" if status in after else "")
        for status, n in result["answered_statuses"].items()
    )
    if answers:
        notes += f", answered {answers}"
    if result.get("upgraded"):
        notes += f", {result['upgraded']:,} upgraded to WebSocket first"
    notes += f"; fresh connects {fresh['connected']}/{fresh['tried']}"
    return {**result, "notes": notes}


def unjoined(run: Run) -> Figures:
    """The same number of WebSockets, upgraded, that never send a Socket.IO CONNECT."""
    return half_open(run, "websocket")


SURROGATE_TASK = b'{"title": "bad \\ud800"}'
#: ``taskCreated`` broadcasts of ~10 KB each: 300 KB for a reader that reads nothing, more
#: than the kernel holds for it, so the server queues what follows
FILLER_TASK = json.dumps({"title": "filler", "description": "x" * 10_000}).encode()
FILLERS = 30
BOMB_DELAY = 1.0


def surrogate_bomb(run: Run) -> Figures:
    """The bomber and the slow reader in the child; here the polling member and the REST
    task posts (a clean one first, then the surrogate title every 2 s).

    The bomb goes off in a project of its own, whose only other members are the polling
    member and the slow reader: a packet that cannot be encoded is then met by a polling
    GET or a backlogged writer, the paths that took a server down. With an idle WebSocket
    member in the room (the control client), that member's direct write could fail first,
    inside the bomber's handler, and hide them. Before the first bomb (the bomber waits
    :data:`BOMB_DELAY`), tasks with long descriptions fill the slow reader's pipe, so the
    server has a backlog for it."""
    server = run.server
    room = run.api.setup("soak bomb room", ["bomber", "polling", "slow"])
    poller = Member(server.hub_url, run.api.token("polling"), room, ["polling"])
    poller.connect()
    clean_status = run.api.post_task_text(room, b'{"title": "clean"}')
    statuses: list[int | str] = []
    filled: list[int | str] = []

    def tick(elapsed: float) -> None:
        if not filled:
            filled.extend(run.api.post_task_text(room, FILLER_TASK) for _ in range(FILLERS))
        if elapsed >= 2 * len(statuses):
            # as the bomber: the admin's REST budget went on the fillers (a 429 would hide
            # whether the text itself is refused)
            statuses.append(run.api.post_task_text(room, SURROGATE_TASK, as_user="bomber"))

    args = run.args("bomber", slow_token=run.api.token("slow"), rate=run.cfg.bomb_rate)
    args.update(project_id=room, start_delay=BOMB_DELAY)
    with run.attack("surrogate_bomb", args) as result:
        run.hold(tick)
    polling = poller.figures()
    poller.close()
    figures = {
        **result,
        "rest_clean_task_status": clean_status,
        "rest_surrogate_task_statuses": statuses,
        "polling_member": polling,
    }
    if "error" in result:
        return {**figures, "notes": f"attack failed: {_first_line(result['error'])}"}
    sent = result["canaries_sent"]
    closed = (result.get("slow_reader") or {}).get("closed_by_server")
    notes = (
        f"REST surrogate task {_statuses(statuses)} (clean {clean_status}); canaries seen "
        f"by the polling member {polling['canaries_seen']}/{sent}"
        f"; polling member {'connected' if polling['connected_at_end'] else 'disconnected'}"
        f"; slow reader {f'closed ({closed})' if closed else 'open'}"
    )
    if result["bomber_disconnected_after_s"]:
        notes += f"; bomber disconnected at {result['bomber_disconnected_after_s']} s"
    return {**figures, "notes": notes}


def chat_flood(run: Run) -> Figures:
    db_before = run.server.db_bytes()
    with run.attack("chat_flood", run.args("flooder")) as result:
        run.hold()
    stored: int | None = None
    complete = False
    if run.server.exit_status() is None:
        with contextlib.suppress(httpx.HTTPError):
            stored, complete = run.api.count_messages(run.project_id)
    growth = run.server.db_bytes() - db_before
    figures = {
        **result,
        "stored": stored,
        "stored_count_complete": complete,
        "db_growth_bytes": growth,
    }
    if "error" in result:
        return {**figures, "notes": f"attack failed: {_first_line(result['error'])}"}
    if "connect_error" in result:
        return {**figures, "notes": f"the flooder could not join: {result['connect_error']}"}
    when = result["disconnected_after_s"]
    notes = (
        f"stored {'?' if stored is None else f'{stored:,}'}{'' if complete else '+'}"
        f" of {result['sent']:,} sent; acks ok {result['acked_ok']:,} / refused "
        f"{result['refused']:,} / none {result['unanswered']:,}; flooder "
        + (f"disconnected after {when} s" if when is not None else "not disconnected")
        + f"; DB +{growth / 1e6:.1f} MB"
    )
    return {**figures, "notes": notes}


SCENARIOS: dict[str, Callable[[Run], Figures]] = {
    "idle": idle,
    "noop-posts": noop_posts,
    "half-open": half_open,
    "unjoined": unjoined,
    "surrogate-bomb": surrogate_bomb,
    "chat-flood": chat_flood,
}
#: the project's members in each scenario, besides the control client
MEMBERS = {
    "idle": [],
    "noop-posts": ["noop"],
    "half-open": [],
    "unjoined": [],
    "surrogate-bomb": [],  # the bomb has a project of its own
    "chat-flood": ["flooder"],
}


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _statuses(statuses: list[int | str]) -> str:
    counts = Counter(statuses)
    return ", ".join(f"{s} x{n}" if n > 1 else str(s) for s, n in counts.items()) or "-"


def run_scenario(name: str, cfg: Config, target: Target, fd_soft_limit: int) -> Figures:
    """One scenario on a fresh server; its row (with ``error`` if the script failed)."""
    t0 = time.monotonic()
    row: Figures = {"scenario": name}
    with tempfile.TemporaryDirectory(prefix=f"soak-{name}-") as tmp:
        server = ServerProcess(target, Path(tmp), fd_soft_limit)
        run: Run | None = None
        try:
            server.start()
            api = Api(server)
            project_id = api.setup(f"soak {name}", ["control", "fresh", *MEMBERS[name]])
            control = Control(server, api, project_id)
            control.start()
            run = Run(cfg, server, api, project_id, control)
            try:
                row["figures"] = SCENARIOS[name](run)
            finally:
                control.stop()
                api.close()
            if run.attack_errors:
                row["error"] = "; ".join(run.attack_errors)
        except Exception as exc:
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            row["server"] = _server_figures(server, run)
            row["server"].update(server.stop())
            if row["server"]["exit_status"] is not None or row["server"].get("stop_status"):
                row["server"]["log_tail"] = server.log_tail()
        if run is not None:
            row["control"] = run.control.stop()
    row["elapsed_s"] = round(time.monotonic() - t0, 1)
    return row


def _server_figures(server: ServerProcess, run: Run | None) -> Figures:
    end = run.end if run is not None and run.end else {}
    at_end = end.get("at_end") or {}
    return {
        "exit_status": end.get("exit_status", server.exit_status()),
        "rss_mb_end": at_end.get("rss_mb"),
        "rss_mb_peak": (end.get("last_seen") or server.last).get("peak_rss_mb"),
        "fds_end": at_end.get("fds"),
        "fd_limit": end.get("fd_limit"),
        "port_app": server.app_port,
        "port_hub": server.hub_port,
    }


# ---- output --------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def _cell(value: Any, fmt: str = "{:,.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def server_cell(server: Figures) -> str:
    status = server.get("exit_status")
    if status is None:
        return "alive"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"died (status {status}, {signal.Signals(-status).name})"
    return f"died (status {status})"


def table_row(row: Figures) -> str:
    control = row.get("control") or {}
    rt = control.get("round_trip_ms") or {}
    chat = control.get("chat_round_trip_ms") or {}
    chat_failed = sum((control.get("chat_failures") or {}).values())
    server = row.get("server") or {}
    failures = f"{control.get('failures', '-')}/{control.get('calls', '-')}"
    if control.get("ticks_skipped_waiting"):
        failures += f" ({control['ticks_skipped_waiting']} skipped)"
    if control.get("limited"):
        failures += f" ({control['limited']} limited)"
    health = control.get("healthz") or {}
    notes = (row.get("figures") or {}).get("notes", "")
    if row.get("error"):
        notes = f"**script error**: {_first_line(row['error'])}" + (f"; {notes}" if notes else "")
    cells = [
        row["scenario"],
        " / ".join(_cell(rt.get(q)) for q in ("p50", "p99", "max")),
        " / ".join(_cell(chat.get(q)) for q in ("p50", "p99", "max"))
        + (f" ({chat_failed} failed)" if chat_failed else ""),
        failures,
        f"{health.get('answered', '-')}/{health.get('asked', '-')}",
        server_cell(server),
        f"{_cell(server.get('rss_mb_end'))} / {_cell(server.get('rss_mb_peak'))}",
        _cell(server.get("fds_end"), "{:,}"),
        notes.replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def table(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    load = ", ".join(f"{x:.2f}" for x in machine["loadavg_at_start"])
    target = doc["target"]
    dirty = f" + {target['modified_files']} modified files" if target["modified_files"] else ""
    lines = [
        f"soak {doc['date']} — {machine['cpu_count']} cores, {machine['cpu_model']}, "
        f"load average at start {load}; took {doc['elapsed_s']:.0f} s",
        f"repo {target['repo']} at {target['commit'][:7]}{dirty}; server python "
        f"{target['python']}; `import server` -> {target['server_package']}",
        f"command: {doc['command']}",
        "",
        "| scenario | control typing p50 / p99 / max (ms) | control chat (database) p50 / p99 "
        "/ max (ms) | control failures | healthz | server | RSS end / peak (MB) | fds | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(row) for row in doc["scenarios"].values()]
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, Config]:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--repo", type=Path, default=ROOT, help="checkout to serve (default: this)")
    p.add_argument("--only", default=",".join(SCENARIO_NAMES), help="comma-separated scenarios")
    p.add_argument("--quick", action="store_true", help="2 s per scenario, small counts")
    p.add_argument("--duration", type=float, help="seconds per scenario (default 10)")
    p.add_argument("--attackers", type=int, help="noop-posts: attackers (default 4)")
    p.add_argument("--post-bytes", type=int, help="noop-posts: body size (default 1000000)")
    p.add_argument("--half-open", type=int, help="half-open: connections (default 4096)")
    p.add_argument("--bomb-rate", type=float, help="surrogate-bomb: rounds/s (default 2)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("duration", "attackers", "post_bytes", "half_open", "bomb_rate"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    args.only = [s for s in args.only.split(",") if s]
    for s in args.only:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIO_NAMES)}")
    args.repo = args.repo.resolve()
    if not (args.repo / "server" / "__main__.py").is_file():
        p.error(f"{args.repo} has no server/__main__.py")
    return args, Config(quick=args.quick, **values)


def raise_fd_limit() -> int:
    """This process's soft descriptor limit raised to the hard one; the old soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft


def exit_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI runner) ends the script like Ctrl-C does, through every
    ``finally``: each server runs in a session of its own and would outlive the script."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, cfg = parse_args(argv)
    exit_on_sigterm()
    fd_soft_limit = raise_fd_limit()
    target = Target.of(args.repo)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {
        "schema": 1,
        "timestamp": stamp,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.soak", *argv]),
        "machine": machine_info(),
        "target": {
            "repo": str(target.repo),
            "python": target.python,
            "server_package": target.server_package(),
            **target.commit(),
        },
        "config": {**asdict(cfg), "script_fd_soft_limit_at_start": fd_soft_limit},
        "scenarios": {},
    }
    started = time.monotonic()
    for name in args.only:
        print(f"[soak {name}] ...", file=sys.stderr, flush=True)
        doc["scenarios"][name] = run_scenario(name, cfg, target, fd_soft_limit)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    doc["machine"]["loadavg_at_end"] = list(os.getloadavg())
    print(table(doc))
    args.out.mkdir(parents=True, exist_ok=True)
    encoded = json.dumps(doc, indent=1, default=str)
    (args.out / f"soak-{stamp}.json").write_text(encoded)
    (args.out / "soak-latest.json").write_text(encoded)
    print(f"json: {args.out / f'soak-{stamp}.json'} (and soak-latest.json)", file=sys.stderr)
    return 1 if any("error" in row for row in doc["scenarios"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
