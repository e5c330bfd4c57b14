// The Node peer of bench/cluster.py: bench/node/server.mjs's events on Redis. It lives here for
// the npm packages (the adapters and redis) that this folder installs.
//
//   node cluster_server.mjs --port N --redis redis://127.0.0.1:P/0 [--host 127.0.0.1]
//                           [--adapter pubsub|streams] [--recovery-ms MS]
//
// --adapter pubsub (the default) is @socket.io/redis-adapter (Redis Pub/Sub). --adapter
// streams is @socket.io/redis-streams-adapter (Redis Streams), with connection state recovery
// on, since that is what it is for: sessions kept --recovery-ms (default 120000), middlewares
// skipped for a recovered client.
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
const adapterKind = option("--adapter", "pubsub");
const recoveryMs = Number(option("--recovery-ms", "120000"));
if (!["pubsub", "streams"].includes(adapterKind)) {
  console.error(`--adapter must be pubsub or streams, not ${adapterKind}`);
  process.exit(2);
}
if (!Number.isInteger(recoveryMs) || recoveryMs <= 0) {
  console.error(`--recovery-ms must be a positive integer, not ${option("--recovery-ms")}`);
  process.exit(2);
}
const adapterPackage = adapterKind === "streams"
  ? "@socket.io/redis-streams-adapter"
  : "@socket.io/redis-adapter";
const require = createRequire(import.meta.url);
const versions = `socket.io=${require("socket.io/package.json").version} ` +
  `${adapterPackage.slice("@socket.io/".length)}=${require(`${adapterPackage}/package.json`).version}`;

const pub = createClient({ url: option("--redis", "redis://127.0.0.1:6379/0") });
let adapterOptions;
if (adapterKind === "streams") {
  const { createAdapter: createStreamsAdapter } = await import(adapterPackage);
  await pub.connect();
  adapterOptions = {
    adapter: createStreamsAdapter(pub),
    connectionStateRecovery: { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true },
  };
} else {
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  adapterOptions = { adapter: createAdapter(pub, sub) };
}

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
  ...adapterOptions,
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
