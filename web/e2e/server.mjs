// The real server for the end-to-end test: `python -m server --dev` on free loopback ports,
// with its own SQLite file (and, beside it, the dev JWT secret that --dev keeps).
// `restart()` stops it with SIGTERM and starts it again on the same ports and database;
// `rotateSecret()` before a start makes that process pick a new secret, so every token the
// pages hold becomes invalid, as after a deploy with a new JWT_SECRET.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..", "..");
const PYTHON = process.env.PYTHON ?? join(ROOT, ".venv", "bin", "python");

export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

export async function waitFor(what, check, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class DevServer {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "board-e2e-"));
    this.log = [];
    this.child = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port ??= await freePort();
    // one port: the board, the REST API and /socket.io/
    const child = spawn(
      PYTHON,
      ["-m", "server", "--dev", "--host", "127.0.0.1", "--port", String(this.port)],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: `sqlite:///${join(this.dir, "board.db")}`, JWT_SECRET: "", LOG_LEVEL: "INFO", PYTHONUNBUFFERED: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    this.exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
    for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk) => this.log.push(String(chunk)));
    await waitFor(
      "the server's /healthz",
      async () => {
        if (child.exitCode !== null) throw new Error(`the server exited:\n${this.log.join("")}`);
        return (await fetch(`${this.url}/healthz`)).ok;
      },
      30_000,
    ).catch((err) => {
      throw new Error(`${err.message}\n--- server log ---\n${this.log.join("")}`);
    });
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const result = await this.exited;
    clearTimeout(timer);
    this.child = null;
    return result;
  }

  rotateSecret() {
    rmSync(join(this.dir, "dev-jwt-secret"), { force: true });
  }

  async restart() {
    const result = await this.stop();
    await this.start();
    return result;
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
