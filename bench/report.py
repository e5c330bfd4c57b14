"""Machine info, the results table (Markdown), and the latency plot."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.procs import LABELS, NODE_DIR, ROOT, node_executable


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    try:
        node = subprocess.run(
            [node_executable(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except Exception:
        node = None
    try:
        socketio_js = json.loads(
            (NODE_DIR / "node_modules" / "socket.io" / "package.json").read_text()
        )["version"]
    except OSError:
        socketio_js = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=ROOT,
        ).stdout.strip()
    except Exception:
        commit = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node,
        "socket.io": socketio_js,
        "trio": pkg("trio"),
        "python-socketio": pkg("python-socketio"),
        "uvicorn": pkg("uvicorn"),
        "loadavg_at_start": list(os.getloadavg()),
        "git_commit": commit,
    }


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value):
        return None
    return float(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _get(*path: str | int) -> Callable[[dict[str, Any]], Any]:
    def get(result: dict[str, Any]) -> Any:
        value: Any = result
        for key in path:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    return get


def _idle_level(index: int, key: str) -> Callable[[dict[str, Any]], Any]:
    def get(result: dict[str, Any]) -> Any:
        levels = result.get("levels", [])
        if index >= len(levels):
            return None
        level = levels[index]
        if not level.get("reached"):
            return "not reached"
        return level.get(key)

    return get


def _idle_label(results: dict[str, Any], index: int, text: str) -> str:
    for result in results.values():
        levels = result.get("levels", []) if isinstance(result, dict) else []
        if index < len(levels):
            return text.format(n=f"{levels[index]['connections']:,}")
    return text.format(n="?")


# (row label, getter, "higher" / "lower" is better, or "" for information)
Row = tuple[str, Callable[[dict[str, Any]], Any], str]


def _overload_runs(result: dict[str, Any]) -> str | None:
    """Deliveries/s of each run, in order: how far the runs spread around the median."""
    runs = result.get("runs")
    if not runs:
        return None
    return ", ".join("error" if "error" in r else _fmt(float(r["deliveries_per_s"])) for r in runs)


def _received_of(received: str, expected: str) -> Callable[[dict[str, Any]], Any]:
    def get(result: dict[str, Any]) -> Any:
        if received not in result:
            return None
        return f"{_fmt(result[received])} / {_fmt(result.get(expected))}"

    return get


def _seconds_or_timeout(key: str) -> Callable[[dict[str, Any]], Any]:
    def get(result: dict[str, Any]) -> Any:
        value = result.get(key)
        if value is None and result.get("timed_out"):
            return f"not within {_fmt(result.get('timeout'))} s"
        return value

    return get


def rows_for(scenario: str, results: dict[str, Any]) -> list[Row]:
    if scenario in ("fanout", "fanout-ws"):
        return [
            ("deliveries/s", _get("deliveries_per_s"), "higher"),
            ("latency p50 (ms)", _get("latency_ms", "p50"), "lower"),
            ("latency p99 (ms)", _get("latency_ms", "p99"), "lower"),
            ("latency max (ms)", _get("latency_ms", "max"), "lower"),
            ("lost", _get("lost"), "lower"),
            ("server CPU µs/delivery", _get("cpu", "server_us_per_delivery"), "lower"),
            (
                "deliveries/s one server core would sustain",
                _get("cpu", "server_cpu_bound_deliveries_per_s"),
                "higher",
            ),
            ("server CPU, % of a core", _get("cpu", "server_pct_of_core"), ""),
            ("clients CPU, % of a core", _get("cpu", "clients_pct_of_core"), ""),
        ]
    if scenario in ("overload", "overload-past"):
        return [
            ("sent (msg)", _get("sent"), ""),
            ("expected deliveries", _get("expected"), ""),
            ("delivered within the window", _get("delivered"), "higher"),
            ("lost in the window", _get("lost_in_window"), "lower"),
            ("deliveries/s (delivered / sending time)", _get("deliveries_per_s"), "higher"),
            ("deliveries/s, each run", _overload_runs, ""),
            ("latency p50 (ms)", _get("latency_ms", "p50"), "lower"),
            ("latency p90 (ms)", _get("latency_ms", "p90"), "lower"),
            ("latency p99 (ms)", _get("latency_ms", "p99"), "lower"),
            ("latency max (ms)", _get("latency_ms", "max"), "lower"),
            ("server CPU (s)", _get("cpu", "server_s"), ""),
            ("server CPU, % of a core", _get("cpu", "server_pct_of_core"), ""),
            ("server CPU µs/delivery", _get("cpu", "server_us_per_delivery"), "lower"),
            ("server RSS at end (MB)", _get("server_rss_mb"), "lower"),
            ("healthy clients closed by server", _get("healthy_closed"), "lower"),
            ("runs failed", _get("failed_runs"), ""),
        ]
    if scenario == "joinstorm":
        return [
            ("all acks + onlineMembers back (s)", _seconds_or_timeout("entered_seconds"), "lower"),
            ("all userJoined delivered (s)", _seconds_or_timeout("user_joined_seconds"), "lower"),
            ("server CPU (s)", _get("server_cpu_s"), "lower"),
            (
                "userJoined received / expected",
                _received_of("user_joined_received", "user_joined_expected"),
                "",
            ),
            (
                "onlineMembers received / clients",
                _received_of("online_members_received", "sent"),
                "",
            ),
            ("acks received / clients", _received_of("acked", "sent"), ""),
        ]
    if scenario == "saturation":
        return [
            ("most deliveries/s, p99 ≤ limit", _get("best_deliveries_per_s"), "higher"),
            ("at sender rate (msg/s)", _get("best_rate"), ""),
            ("p99 there (ms)", _get("best_p99_ms"), ""),
            ("server CPU µs/delivery, median step", _get("server_us_per_delivery_median"), "lower"),
            ("deliveries/s one core would sustain", _get("cpu_bound_deliveries_per_s"), "higher"),
            ("stopped by", _get("stop_reason"), ""),
        ]
    if scenario == "storm":
        return [
            ("connections/s", _get("connections_per_s"), "higher"),
            ("connect p50 (ms)", _get("connect_ms", "p50"), "lower"),
            ("connect p99 (ms)", _get("connect_ms", "p99"), "lower"),
            ("join, all acks back (ms)", _get("join_ms"), "lower"),
        ]
    if scenario == "idle":
        rows: list[Row] = [("RSS before (MB)", _get("rss_before_mb"), "")]
        count = max(
            (len(r.get("levels", [])) for r in results.values() if isinstance(r, dict)),
            default=0,
        )
        for i in range(count):
            rows.append((_idle_label(results, i, "RSS at {n} (MB)"), _idle_level(i, "rss_mb"), ""))
            rows.append(
                (
                    _idle_label(results, i, "KB/connection at {n}"),
                    _idle_level(i, "kb_per_connection"),
                    "lower",
                )
            )
        return rows
    if scenario == "slow":
        return [
            ("healthy p99, none stalled (ms)", _get("healthy_p99_baseline_ms"), "lower"),
            ("healthy p99, with stalled (ms)", _get("healthy_p99_stalled_ms"), "lower"),
            ("healthy lost, with stalled", _get("runs", "stalled", "lost"), "lower"),
            ("RSS growth, none stalled (MB)", _get("rss_growth_baseline_mb"), "lower"),
            ("RSS growth, with stalled (MB)", _get("rss_growth_mb"), "lower"),
            ("stalled clients closed by server", _get("stalled_closed"), ""),
        ]
    return []


#: The ratio columns: (server, the one it is divided by) -> header.
RATIO_HEADS = {
    ("trio", "node"): "ours/Node",
    ("trio", "pysio"): "ours/pysio",
    ("trio1", "trio"): "one port/ours",
}

TITLES = {
    "fanout": "fan-out",
    "saturation": "saturation",
    "storm": "connect storm",
    "idle": "idle memory",
    "slow": "slow consumers",
    "overload": "overload",
    "overload-past": "overload, past capacity",
    "joinstorm": "presence join storm",
    "fanout-ws": "fan-out, Node ws clients",
}


def describe(scenario: str, results: dict[str, Any]) -> str:
    """The scenario's parameters, from the first result that has them."""
    first = next((r for r in results.values() if isinstance(r, dict) and "error" not in r), {})
    if scenario == "fanout":
        return (
            f"{first.get('clients')} clients, {first.get('rate')} msg/s, "
            f"{first.get('duration')} s, payload {first.get('payload')} B"
        )
    if scenario == "fanout-ws":
        return (
            f"{first.get('clients')} clients ({first.get('client')}, "
            f"{first.get('client_procs')} processes), {first.get('rate')} msg/s, "
            f"{first.get('duration')} s, payload {first.get('payload')} B"
        )
    if scenario in ("overload", "overload-past"):
        return (
            f"{first.get('clients')} clients ({first.get('client')}), "
            f"{first.get('rate')} msg/s for {first.get('duration')} s, "
            f"payload {first.get('payload')} B, counted until "
            f"{first.get('grace')} s after the last send; median of {first.get('repeat')} "
            f"runs per server, interleaved"
        )
    if scenario == "joinstorm":
        return (
            f"{first.get('clients')} clients send enter(room) at once: join, userJoined to "
            f"the room, onlineMembers and an ack to the caller"
        )
    if scenario == "saturation":
        return (
            f"{first.get('clients')} clients, {first.get('step_duration')} s per step, "
            f"p99 limit {first.get('p99_limit_ms')} ms"
        )
    if scenario == "storm":
        return (
            f"{first.get('clients')} clients, {first.get('inflight')} handshakes in flight; "
            f"join: {first.get('join_clients')} clients"
        )
    if scenario == "idle":
        return "idle WebSocket + Socket.IO connections"
    if scenario == "slow":
        return (
            f"{first.get('clients')} clients, {first.get('stalled')} stalled, "
            f"{first.get('rate')} msg/s, payload {first.get('payload')} B, "
            f"{first.get('duration')} s"
        )
    return ""


def table(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    servers: list[str] = doc["servers"]
    lines = [
        f"bench {machine['date']} — {machine['cores']} cores, {machine['cpu_model']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in machine['loadavg_at_start'])}, "
        f"at end {', '.join(f'{x:.2f}' for x in machine.get('loadavg_at_end', []))}; "
        f"run took {doc.get('elapsed_s', 0):.0f} s",
        f"Python {machine['python']}, trio {machine['trio']}; Node {machine['node']}, "
        f"socket.io {machine['socket.io']}; python-socketio {machine['python-socketio']} "
        f"on uvicorn {machine['uvicorn']}; commit {machine['git_commit']}",
        f"command: {doc['command']}",
        "",
    ]
    head = ["scenario", "metric", *(LABELS[s] for s in servers)]
    pairs = [("trio", "node"), ("trio", "pysio"), ("trio1", "trio")]
    ratios = [(a, b) for a, b in pairs if a in servers and b in servers]
    head += [RATIO_HEADS[pair] for pair in ratios]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for scenario, results in doc["scenarios"].items():
        title = f"**{TITLES.get(scenario, scenario)}**"
        lines.append(f"| {title} | {describe(scenario, results)} |" + " |" * (len(head) - 2))
        errors = {s: r["error"] for s, r in results.items() if "error" in r}
        for label, get, better in rows_for(scenario, results):
            values = {s: (get(results[s]) if s not in errors else "error") for s in servers}
            arrow = {"higher": " ↑", "lower": " ↓"}.get(better, "")
            cells = ["", label + arrow, *(_fmt(values[s]) for s in servers)]
            for mine, other in ratios:
                ours, theirs = _num(values[mine]), _num(values[other])
                if better and ours is not None and theirs:
                    ratio = ours / theirs
                    cells.append(f"{ratio:.2f}" if ratio >= 0.1 or ratio == 0 else f"{ratio:.2g}")
                else:
                    cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
        for server, error in errors.items():
            lines.append(f"| | error ({server}) | {error[:200]} |" + " |" * (len(head) - 3))
    lines.append("")
    lines.append(
        "↑ higher is better, ↓ lower is better; a ratio below 1 on a ↓ row (above 1 on a ↑ row) "
        "favours ours."
    )
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: Path) -> bool:
    """Latency CDF (fan-out), p99 per step (saturation), RSS over time (slow consumers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = doc["scenarios"]
    colors = {"trio": "tab:blue", "node": "tab:orange", "pysio": "tab:green", "trio1": "tab:cyan"}
    panels = [s for s in ("fanout", "saturation", "slow") if s in scenarios]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], panels, strict=True):
        results = scenarios[scenario]
        for server, result in results.items():
            if "error" in result:
                continue
            label = LABELS[server]
            if scenario == "fanout":
                cdf = result.get("cdf_ms", [])
                if cdf:
                    ys = [i / (len(cdf) - 1) for i in range(len(cdf))]
                    xs = [max(x, 0.01) for x in cdf]
                    ax.plot(xs, ys, color=colors[server], label=label)
            elif scenario == "saturation":
                steps = result.get("steps", [])
                ax.plot(
                    [s["rate"] * s["receivers"] for s in steps],
                    [max(s["latency_ms"]["p99"], 0.01) for s in steps],
                    marker="o",
                    color=colors[server],
                    label=label,
                )
            else:
                for run, style in (("stalled", "-"), ("baseline", ":")):
                    samples = result["runs"][run]["rss_samples"]
                    ax.plot(
                        [s["t"] for s in samples],
                        [s["rss_mb"] for s in samples],
                        style,
                        color=colors[server],
                        label=f"{label}, {run}",
                    )
        if scenario == "fanout":
            ax.set_xscale("log")
            ax.set_xlabel("latency (ms)")
            ax.set_ylabel("fraction of deliveries")
            ax.set_title(f"fan-out latency CDF\n{describe(scenario, results)}", fontsize=9)
        elif scenario == "saturation":
            ax.set_yscale("log")
            ax.axhline(doc["config"]["p99_limit_ms"], color="grey", linestyle=":")
            ax.set_xlabel("offered deliveries/s (rate x room size)")
            ax.set_ylabel("p99 latency (ms)")
            ax.set_title(
                f"saturation: p99 per rate step\n{describe(scenario, results)}", fontsize=9
            )
        else:
            ax.set_xlabel("seconds since the sender started")
            ax.set_ylabel("server RSS (MB)")
            ax.set_title(
                f"slow consumers: server RSS (dotted: no stalled clients)\n"
                f"{describe(scenario, results)}",
                fontsize=9,
            )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{doc['machine']['date']}, {doc['machine']['cores']} cores {doc['machine']['cpu_model']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
