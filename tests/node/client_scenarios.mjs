// Interop client scenarios, run with the stock `socket.io-client`.
//
//   node client_scenarios.mjs --url http://127.0.0.1:N \
//       --transports polling|websocket|polling,websocket --scenario NAME [--timeout SECONDS]
//
// Runs ONE scenario and prints exactly one result line of JSON on stdout:
// {"ok": true, ...details} or {"ok": false, "error": "..."}. The "reconnect"
// scenario prints {"phase": "connected"} first, so a harness can restart the
// server; the result is always the last line. Exit status is 0 whether the
// scenario passed or not; it is non-zero only for bad arguments or a crash.
//
// Results hold no server-specific values (ids, timings), only payloads,
// types and booleans, so that runs against different servers can be compared.

import { parseArgs } from "node:util";
import { io, Manager } from "socket.io-client";

const SCENARIOS = {
  connect,
  echo,
  ack,
  binary,
  "server-ack": serverAck,
  namespaces,
  "unknown-namespace": unknownNamespace,
  "middleware-refusal": middlewareRefusal,
  rooms,
  heartbeat,
  reconnect,
};

// How long a single awaited step may take before the scenario fails.
const STEP_MS = 3000;

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    transports: { type: "string", default: "polling,websocket" },
    scenario: { type: "string" },
    timeout: { type: "string" },
  },
});

if (!values.url || !values.scenario || !(values.scenario in SCENARIOS)) {
  process.stderr.write(
    "usage: node client_scenarios.mjs --url URL --transports polling|websocket|polling,websocket " +
      `--scenario NAME [--timeout SECONDS]\nscenarios: ${Object.keys(SCENARIOS).join(", ")}\n`,
  );
  process.exit(2);
}

const URL_BASE = values.url.replace(/\/+$/, "");
const TRANSPORTS = values.transports.split(",").map((t) => t.trim()).filter(Boolean);
for (const t of TRANSPORTS) {
  if (t !== "polling" && t !== "websocket") {
    process.stderr.write(`unknown transport: ${t}\n`);
    process.exit(2);
  }
}
const defaultTimeout = values.scenario === "reconnect" ? 25 : 10;
const OVERALL_MS = 1000 * (values.timeout ? Number(values.timeout) : defaultTimeout);

// ---------------------------------------------------------------- output

let finished = false;

function emitLine(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function finish(result, code = 0) {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

function errorText(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolve with the argument list of the next `event` on `emitter`. */
function waitFor(emitter, event, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args);
    };
    emitter.on(event, handler);
  });
}

/** Resolve when `socket` connects; reject with the connect_error otherwise. */
function connected(socket, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error("timed out waiting for connect"));
    }, ms);
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`connect_error: ${errorText(err)}`));
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
    if (socket.connected) onConnect();
  });
}

/** Resolve with the connect_error (an Error); reject if the socket connects. */
function connectError(socket, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error("timed out waiting for connect_error"));
    }, ms);
    const onConnect = () => {
      cleanup();
      reject(new Error("connected although a connect_error was expected"));
    };
    const onError = (err) => {
      cleanup();
      resolve(err);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** A fresh client socket (own Manager) on namespace `nsp`. */
function client(nsp = "/", extra = {}) {
  return io(URL_BASE + nsp, {
    forceNew: true,
    reconnection: false,
    transports: TRANSPORTS,
    ...extra,
  });
}

/** Turn a received value into plain JSON; binary becomes {"$bytes": [...]}. */
function plain(value) {
  if (value === undefined || value === null) return null;
  if (value instanceof ArrayBuffer) return { $bytes: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { $bytes: Array.from(bytes) };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/** Emit with an acknowledgement; resolve with ALL the ack's arguments. */
function emitAckAll(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(STEP_MS).emit(event, ...args, (err, ...resp) => {
      if (err) reject(new Error(`no ack for "${event}": ${errorText(err)}`));
      else resolve(resp);
    });
  });
}

// ---------------------------------------------------------------- scenarios

async function connect() {
  const socket = client("/", { auth: { token: "abc" } });
  const authP = waitFor(socket, "auth");
  await connected(socket);
  const idIsString = typeof socket.id === "string" && socket.id.length > 0;
  const [auth] = await authP;
  await sleep(600); // let a polling -> websocket upgrade complete
  const result = {
    auth: plain(auth),
    id_is_string: idIsString,
    connected: socket.connected,
    transport: socket.io.engine.transport.name,
  };
  socket.disconnect();
  return result;
}

async function echo() {
  const socket = client();
  await connected(socket);
  const backP = waitFor(socket, "message-back");
  socket.emit("message", 1, "2", { 3: [true] }, "héllo €");
  const args = await backP;
  socket.disconnect();
  return { message_back: plain(args) };
}

async function ack() {
  const socket = client();
  await connected(socket);
  const ackArgs = await emitAckAll(socket, "message-with-ack", 1, "2", { 3: [false] });
  // emitWithAck resolves with the first argument of the acknowledgement only.
  const first = await socket.timeout(STEP_MS).emitWithAck("message-with-ack", 1, "2", { 3: [false] });
  socket.disconnect();
  return { ack_args: plain(ackArgs), emit_with_ack: plain(first) };
}

async function binary() {
  const socket = client();
  await connected(socket);
  const backP = waitFor(socket, "message-back");
  socket.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5, 6]), n: 1 });
  const back = await backP;
  const ackArgs = await emitAckAll(socket, "message-with-ack", Buffer.from([7, 8]));
  const first = await socket.timeout(STEP_MS).emitWithAck("message-with-ack", Buffer.from([7, 8]));
  socket.disconnect();
  return { message_back: plain(back), ack_args: plain(ackArgs), emit_with_ack: plain(first) };
}

async function serverAck() {
  const socket = client();
  socket.on("please-ack", (payload, cb) => cb({ got: payload }));
  await connected(socket);
  const resultP = waitFor(socket, "ack-result");
  socket.emit("server-ack-request", { x: 1 });
  const [ackResult] = await resultP;
  socket.disconnect();
  return { ack_result: plain(ackResult) };
}

async function namespaces() {
  const manager = new Manager(URL_BASE, { reconnection: false, transports: TRANSPORTS });
  const root = manager.socket("/", { auth: { ns: "root" } });
  const custom = manager.socket("/custom", { auth: { ns: "custom" } });
  const rootAuthP = waitFor(root, "auth");
  const customAuthP = waitFor(custom, "auth");
  await Promise.all([connected(root), connected(custom)]);
  const [[rootAuth], [customAuth]] = await Promise.all([rootAuthP, customAuthP]);
  const engine = manager.engine;
  const result = {
    root_auth: plain(rootAuth),
    custom_auth: plain(customAuth),
    ids_are_strings: typeof root.id === "string" && typeof custom.id === "string",
    ids_distinct: root.id !== custom.id,
    shared_engine:
      root.io === custom.io && root.io.engine === engine && typeof engine.id === "string",
    both_connected: root.connected && custom.connected,
  };
  root.disconnect();
  custom.disconnect();
  return result;
}

async function unknownNamespace() {
  const socket = client("/random");
  const err = await connectError(socket);
  const result = {
    connect_error: errorText(err),
    data: plain(err.data),
    connected: socket.connected,
  };
  socket.close();
  return result;
}

async function middlewareRefusal() {
  const refused = client("/private");
  const err = await connectError(refused);
  const refusedConnected = refused.connected;
  refused.close();

  const allowed = client("/private", { auth: { token: "secret" } });
  await connected(allowed);
  const result = {
    connect_error: errorText(err),
    data: plain(err.data),
    refused_connected: refusedConnected,
    connected: allowed.connected,
  };
  allowed.disconnect();
  return result;
}

async function rooms() {
  const a = client();
  const b = client();
  const got = { a: [], b: [] };
  a.on("room-message", (data) => got.a.push(plain(data)));
  b.on("room-message", (data) => got.b.push(plain(data)));
  await Promise.all([connected(a), connected(b)]);
  const joinAcks = await Promise.all([
    emitAckAll(a, "join", "r1"),
    emitAckAll(b, "join", "r1"),
  ]);
  a.emit("to-room", "r1", "hi");
  const deadline = Date.now() + STEP_MS;
  while ((got.a.length === 0 || got.b.length === 0) && Date.now() < deadline) await sleep(20);
  await sleep(200); // catch duplicates, if any
  a.disconnect();
  b.disconnect();
  return { joined: joinAcks.length === 2, a: got.a, b: got.b };
}

async function heartbeat() {
  const socket = client();
  let pings = 0;
  let reason = null;
  socket.io.on("ping", () => {
    pings += 1;
  });
  socket.on("disconnect", (r) => {
    reason = r;
  });
  await connected(socket);
  await sleep(1500);
  const result = {
    connected: socket.connected,
    disconnect_reason: reason,
    several_pings: pings >= 3,
  };
  socket.disconnect();
  return result;
}

async function reconnect() {
  const socket = client("/", {
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    auth: { token: "again" },
  });
  const authP = waitFor(socket, "auth");
  await connected(socket);
  await authP;
  if (TRANSPORTS.length > 1 && socket.io.engine.transport.name !== "websocket") {
    // Let the upgrade finish first, so the restart hits a settled transport.
    await waitFor(socket.io.engine, "upgrade", 2000).catch(() => {});
  }
  const disconnectP = waitFor(socket, "disconnect", 20000);
  emitLine({ phase: "connected" });
  const [reason] = await disconnectP;
  const authAgainP = waitFor(socket, "auth", 20000);
  await waitFor(socket, "connect", 20000);
  const [authAgain] = await authAgainP;
  const result = {
    disconnect_reason: reason,
    reconnected: socket.connected,
    auth_after_reconnect: plain(authAgain),
  };
  socket.disconnect();
  return result;
}

// ---------------------------------------------------------------- main

process.on("uncaughtException", (err) => {
  finish({ ok: false, error: `uncaught: ${errorText(err)}` }, 1);
});

setTimeout(() => {
  finish({ ok: false, error: `overall timeout after ${OVERALL_MS} ms` });
}, OVERALL_MS).unref();

// Keep the event loop alive until the scenario settles (sockets may all close).
const keepAlive = setInterval(() => {}, 1000);

SCENARIOS[values.scenario]()
  .then((details) => finish({ ok: true, ...details }))
  .catch((err) => finish({ ok: false, error: errorText(err) }))
  .finally(() => clearInterval(keepAlive));
