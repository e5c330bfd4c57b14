"""The web client's own suites, run from pytest so that ``make test`` counts them.

- TypeScript: ``tsc --noEmit`` over the page, the hooks and their tests.
- Vitest (``web/tests/``): the hooks' listener bookkeeping on a real, unconnected
  socket.io-client ``Socket``; and the hooks against a real ``python -m server --dev``.
- End to end: ``web/e2e/board.e2e.mjs`` drives Debian's ``/usr/bin/chromium`` with
  playwright-core, two users against a real ``python -m server --dev`` that it starts (and
  restarts) itself. Screenshots land in ``test-artifacts/web/``.

``make test`` installs ``web/node_modules`` and builds ``web/dist`` first; ``.ci/run``
installs Chromium. Anything missing fails here with what to do, rather than skipping.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BIN = WEB / "node_modules" / ".bin"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
#: What the e2e file holds; fewer passing means some did not run.
E2E_SCENARIOS = 17


def run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    if not BIN.is_dir():
        pytest.fail("web/node_modules is missing: run `make install` (npm ci in web/)")
    # its own process group: on a timeout the servers and browsers it started go with it
    proc = subprocess.Popen(
        args,
        cwd=WEB,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{' '.join(args)} took over {timeout} s:\n{output[-8000:]}")
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{output[-8000:]}"
    return output


def test_typescript_compiles() -> None:
    run([str(BIN / "tsc"), "--noEmit"], timeout=180)


def test_vitest_hooks(tmp_path: Path) -> None:
    report = tmp_path / "vitest.json"
    run(
        [str(BIN / "vitest"), "run", "--reporter=json", f"--outputFile={report}"],
        timeout=300,
        env={"PYTHON": sys.executable},  # tests/live.test.tsx starts the real server
    )
    result = json.loads(report.read_text())
    failed = [
        t["fullName"]
        for f in result["testResults"]
        for t in f["assertionResults"]
        if t["status"] != "passed"
    ]
    assert not failed, failed
    assert result["numPassedTests"] == result["numTotalTests"] > 0


def test_end_to_end_two_users_in_chromium() -> None:
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("web/dist is missing: run `make install` (npm run build in web/)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    output = run(
        ["node", "--test", "--test-reporter=tap", "e2e/board.e2e.mjs"],
        timeout=400,
        env={"PYTHON": sys.executable, "CHROMIUM": str(CHROMIUM)},
    )
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail) (\d+)$", output, re.M)}
    assert counts == {"pass": E2E_SCENARIOS, "fail": 0}, output[-8000:]
