"""The README's walkthrough works as written: Bob's python-socketio script and Alice's
socket.io-client script, taken from README.md, chat in the demo project of a ``--dev``
server, and Bob sees a task change made over REST."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from tests.node_harness import NODE_DIR, LineReader, node_deps_installed, node_executable
from tests.realtime.harness import STORES, Service, serving_on

ROOT = Path(__file__).resolve().parents[2]


def readme_block(first_line: str) -> str:
    """The fenced code block of README.md whose first line is ``first_line``."""
    text = (ROOT / "README.md").read_text()
    for match in re.finditer(r"^( *)```\w*\n(.*?)^\1```", text, re.DOTALL | re.MULTILINE):
        block = textwrap.dedent(match.group(2))
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README.md has no code block starting with {first_line!r}")


def on_ports(code: str, svc: Service) -> str:
    return code.replace("127.0.0.1:4000", svc.app_url[7:]).replace(
        "127.0.0.1:4001", svc.hub_url[7:]
    )


@pytest.mark.skipif(
    node_executable() is None or not node_deps_installed(), reason="needs node and npm ci"
)
@pytest.mark.parametrize("store", STORES)
async def test_the_readme_walkthrough(store: str, tmp_path: Path) -> None:
    """On SQLite and on PostgreSQL: the walkthrough reads the same on both."""
    async with serving_on(store, tmp_path, dev=True) as svc:
        bob = await trio.to_thread.run_sync(
            lambda: subprocess.Popen(
                [sys.executable, "-u", "-c", on_ports(readme_block("# bob.py"), svc)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        assert bob.stdout is not None
        lines = LineReader(bob.stdout)

        async def bob_says(*fragments: str) -> list[str]:
            """The next line with each fragment, in any order: python-socketio's client
            runs each event on a thread of its own, so two events sent back to back (the
            task change and the notification) may be printed either way round."""

            def wait() -> list[str]:
                found: dict[str, str] = {}
                while len(found) < len(fragments):
                    line = lines.next_line(timeout=10)
                    if line is None:
                        raise AssertionError(f"bob.py ended: {lines.seen}")
                    for fragment in fragments:
                        if fragment in line and fragment not in found:
                            found[fragment] = line
                return [found[fragment] for fragment in fragments]

            return await trio.to_thread.run_sync(wait)

        try:
            (joined,) = await bob_says("joined:")
            assert "'ok': True" in joined
            alice = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    [str(node_executable()), "--input-type=module"],
                    input=on_ports(readme_block("// alice.mjs"), svc),
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=20,
                )
            )
            assert alice.returncode == 0, alice.stderr
            assert alice.stdout.splitlines() == ["online: Alice, Bob", "Alice: Hello Bob!"]
            (message,) = await bob_says("newMessage")
            assert "'message': 'Hello Bob!'" in message

            curl = readme_block("# alice changes a task").strip().splitlines()[1:]
            token = svc.running.realtime.verifier.issue("alice", "Alice", "admin")
            command = on_ports("\n".join(curl), svc).replace("$TOKEN", token)
            done = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    ["bash", "-c", command], capture_output=True, text=True, timeout=20
                )
            )
            assert '"status":"done"' in done.stdout, done
            updated, notification = await bob_says("taskUpdated", "notification")
            assert "'changes': {'status': 'done'}" in updated
            assert "'type': 'task_update'" in notification
        finally:
            bob.kill()
            bob.wait()
            bob.stdout.close()
