// The Node Socket.IO peer of the bench: the same events as bench/servers/trio_hub.py.
//
//   node server.mjs --port N [--host 127.0.0.1]
//
// Prints "listening HOST:PORT ..." once it accepts connections. SIGTERM/SIGINT exit.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Server } from "socket.io";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number.parseInt(option("--port", "0"), 10);
const version = createRequire(import.meta.url)("socket.io/package.json").version;

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
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
  // a presence join: the room hears of the newcomer, the newcomer gets the room's names
  socket.on("enter", async (room, ack) => {
    socket.join(room);
    socket.to(room).emit("userJoined", { name: socket.data.name });
    const members = await io.in(room).fetchSockets();
    socket.emit("onlineMembers", { members: members.map((s) => s.data.name) });
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
  console.log(
    `listening ${address.address}:${address.port} socket.io=${version} node=${process.version}`,
  );
});
