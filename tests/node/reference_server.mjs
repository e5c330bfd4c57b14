// Reference Socket.IO server (Node, stock `socket.io`) for the interop tests.
//
//   node reference_server.mjs --port N
//
// Configured like the test server described by the Socket.IO protocol spec,
// plus a few handlers used by our extra scenarios (see README.md). Prints
// "listening <port>" on stdout once it accepts connections.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
if (!values.port) {
  console.error("usage: node reference_server.mjs --port N");
  process.exit(2);
}
const port = Number.parseInt(values.port, 10);

const httpServer = createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  connectTimeout: 1000,
  cors: { origin: "*" },
});

io.on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);

  socket.on("message", (...args) => {
    socket.emit("message-back", ...args);
  });

  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });

  // Ask the client for an acknowledgement and report what came back.
  socket.on("server-ack-request", (payload) => {
    socket.timeout(2000).emit("please-ack", payload, (err, ...resp) => {
      socket.emit("ack-result", err ? { error: err.message } : resp);
    });
  });

  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });

  socket.on("to-room", (room, data) => {
    io.to(room).emit("room-message", data);
  });
});

io.of("/custom").on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

const privateNsp = io.of("/private");
privateNsp.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") {
    next();
    return;
  }
  const err = new Error("not authorized");
  err.data = { reason: "no token" };
  next(err);
});
privateNsp.on("connection", () => {});

// Graceful stop on SIGTERM/SIGINT: close the engine (clients see their
// transport close), bounded so a stuck connection cannot keep us alive.
function shutdown() {
  setTimeout(() => process.exit(0), 500).unref();
  io.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

httpServer.listen(port, values.host, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
