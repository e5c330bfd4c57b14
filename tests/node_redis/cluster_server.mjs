// The Node peer of bench/cluster.py: bench/node/server.mjs's events on @socket.io/redis-adapter.
// It lives here for the npm packages (the adapter and redis) that this folder installs.
//
//   node cluster_server.mjs --port N --redis redis://127.0.0.1:P/0 [--host 127.0.0.1]
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number.parseInt(option("--port", "0"), 10);
const require = createRequire(import.meta.url);
const versions = `socket.io=${require("socket.io/package.json").version} ` +
  `redis-adapter=${require("@socket.io/redis-adapter/package.json").version}`;

const pub = createClient({ url: option("--redis", "redis://127.0.0.1:6379/0") });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
  adapter: createAdapter(pub, sub),
});

io.use((socket, next) => {
  const name = socket.handshake.auth && socket.handshake.auth.name;
  if (!name) {
    next(new Error("a name is required"));
    return;
  }
  socket.data.name = name;
  next();
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("broadcast", (room, payload) => {
    io.to(room).emit("msg", payload);
  });
  socket.on("echo", (payload, ack) => {
    if (typeof ack === "function") ack(payload);
  });
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}

httpServer.listen(port, host, () => {
  const address = httpServer.address();
  console.log(`listening ${address.address}:${address.port} ${versions} node=${process.version}`);
});
