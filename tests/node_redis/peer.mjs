// A stock Node Socket.IO server on @socket.io/redis-adapter: the other kind of node in the
// interop tests. It is driven by JSON lines on stdin and answers with JSON lines on stdout.
//
//   node peer.mjs --port N --redis redis://127.0.0.1:P/0
//
// Prints {"ready": true, "port": N} once it listens. Each command line {"id", "cmd", ...}
// is answered by {"id", "result"} (or {"id", "error"}); server-side events received from
// other nodes are printed as {"event": "serverSide", "args": [...]}.
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

const pub = createClient({ url: args.redis });
const sub = pub.duplicate();
pub.on("error", (err) => console.error("redis pub:", err.message));
sub.on("error", (err) => console.error("redis sub:", err.message));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: createAdapter(pub, sub, { requestsTimeout: 3000 }),
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

httpServer.listen(Number(args.port), "127.0.0.1", () => out({ ready: true, port: Number(args.port) }));
