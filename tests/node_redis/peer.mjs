// A stock Node Socket.IO server on Redis: the other kind of node in the interop and cluster
// tests. It is driven by JSON lines on stdin and answers with JSON lines on stdout.
//
//   node peer.mjs --port N --redis redis://127.0.0.1:P/0 [--adapter pubsub|streams]
//                 [--recovery-ms MS]
//
// --adapter pubsub (the default) puts it on @socket.io/redis-adapter (Redis Pub/Sub), with
// no connection state recovery. --adapter streams puts it on
// @socket.io/redis-streams-adapter (Redis Streams) with connection state recovery on:
// sessions are kept in Redis for --recovery-ms (default 120000) and a client that comes
// back within that time, to this node or another one, gets its id, rooms and data back,
// and the packets it missed; middlewares are skipped for it.
//
// Prints {"ready": true, "port": N, "adapter": "pubsub" | "streams"} once it listens. Each
// command line {"id", "cmd", ...} is answered by {"id", "result"} (or {"id", "error"});
// server-side events received from other nodes are printed as
// {"event": "serverSide", "args": [...]}. The command "rooms" lists this node's own sockets
// as {id, rooms (sorted), recovered}; "fetch" lists those of the whole cluster.
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, i, all) => {
    if (value.startsWith("--")) pairs.push([value.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);

const adapterKind = args.adapter ?? "pubsub";
const recoveryMs = Number(args["recovery-ms"] ?? 120000);
if (!["pubsub", "streams"].includes(adapterKind)) {
  console.error(`--adapter must be pubsub or streams, not ${adapterKind}`);
  process.exit(2);
}
if (!Number.isInteger(recoveryMs) || recoveryMs <= 0) {
  console.error(`--recovery-ms must be a positive integer, not ${args["recovery-ms"]}`);
  process.exit(2);
}

const pub = createClient({ url: args.redis });
pub.on("error", (err) => console.error("redis pub:", err.message));

// The Socket.IO options for the chosen adapter: Pub/Sub needs a client to publish on and one
// to subscribe on; Streams takes one client and duplicates it for reading and subscribing.
async function adapterOptions() {
  if (adapterKind === "streams") {
    const { createAdapter: createStreamsAdapter } = await import(
      "@socket.io/redis-streams-adapter"
    );
    await pub.connect();
    return {
      adapter: createStreamsAdapter(pub),
      connectionStateRecovery: { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true },
    };
  }
  const sub = pub.duplicate();
  sub.on("error", (err) => console.error("redis sub:", err.message));
  await Promise.all([pub.connect(), sub.connect()]);
  return { adapter: createAdapter(pub, sub, { requestsTimeout: 3000 }) };
}

const httpServer = createServer();
const io = new Server(httpServer, {
  ...(await adapterOptions()),
  cors: { origin: "*" },
});

const out = (value) => process.stdout.write(JSON.stringify(value) + "\n");
// Buffers travel in JSON commands as {"$bin": "<hex>"}, Dates as {"$date": "<ISO 8601>"},
// undefined as {"$undefined": true}
const revive = (value) => {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    if (typeof value.$date === "string") return new Date(value.$date);
    if (value.$undefined === true) return undefined;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
};
const show = (value) => {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (Array.isArray(value)) return value.map(show);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, show(v)]));
  }
  return value;
};

io.use((socket, next) => {
  socket.data.name = socket.handshake.auth?.name ?? "";
  next();
});
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack([...socket.rooms].sort());
  });
  socket.on("say", (room, ...rest) => socket.to(room).emit("said", ...rest));
});
io.on("ping", (value, callback) => {
  out({ event: "serverSide", name: "ping", args: [value] });
  if (typeof callback === "function") callback("pong from node");
});
io.on("hello", (...rest) => out({ event: "serverSide", name: "hello", args: show(rest) }));

const commands = {
  async emit({ rooms = [], except = [], event, args = [] }) {
    let target = io;
    for (const room of rooms) target = target.to(room);
    for (const room of except) target = target.except(room);
    target.emit(event, ...revive(args));
    return true;
  },
  async fetch({ rooms = [] }) {
    let target = io;
    for (const room of rooms) target = target.in(room);
    const sockets = await target.fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data }));
  },
  async join({ rooms = [], room }) {
    let target = io;
    for (const r of rooms) target = target.in(r);
    target.socketsJoin(room);
    return true;
  },
  async disconnect({ rooms = [], close = false }) {
    let target = io;
    for (const r of rooms) target = target.in(r);
    target.disconnectSockets(close);
    return true;
  },
  async serverSideEmit({ event, args = [] }) {
    io.serverSideEmit(event, ...revive(args));
    return true;
  },
  async serverSideEmitWithAck({ event, args = [] }) {
    return await io.serverSideEmitWithAck(event, ...revive(args));
  },
  async emitWithAck({ rooms = [], event, args = [], timeout = 3000 }) {
    let target = io.timeout(timeout);
    for (const room of rooms) target = target.to(room);
    return show(await target.emitWithAck(event, ...revive(args)));
  },
  async serverCount() {
    return await io.of("/").adapter.serverCount();
  },
  async rooms() {
    return [...io.of("/").sockets.values()].map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(),
      recovered: s.recovered,
    }));
  },
};

createInterface({ input: process.stdin }).on("line", async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  try {
    out({ id: request.id, result: await commands[request.cmd](request) });
  } catch (err) {
    out({ id: request.id, error: String(err?.message ?? err) });
  }
});
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));

// The Streams adapter subscribes (for acks, fetchSockets, serverSideEmit, serverCount) in
// the background, to the public channel and its own one ("socket.io#/#<uid>#") at once:
// "ready" waits until its own one has a subscriber, so that serverCount counts this node.
async function subscribed() {
  if (adapterKind !== "streams") return;
  const channel = `socket.io#/#${io.of("/").adapter.uid}#`;
  const deadline = Date.now() + 10000;
  while ((await pub.sendCommand(["PUBSUB", "NUMSUB", channel]))[1] < 1) {
    if (Date.now() > deadline) throw new Error("the streams adapter did not subscribe in 10 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

httpServer.listen(Number(args.port), "127.0.0.1", async () => {
  await subscribed();
  out({ ready: true, port: Number(args.port), adapter: adapterKind });
});
