// The reference for the admin UI's protocol: a stock Node Socket.IO server with
// @socket.io/admin-ui's own instrument(), and the same "/" handlers as our test hub.
//
//   node admin_reference_server.mjs --port N --username U --hash BCRYPT [--read-only]
//
// Prints "listening N" once ready; SIGTERM/SIGINT stop it.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { instrument } from "@socket.io/admin-ui";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    username: { type: "string" },
    hash: { type: "string" },
    "read-only": { type: "boolean", default: false },
  },
});

const http = createServer();
const io = new Server(http, { cors: { origin: true, credentials: true } });

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack?.([...socket.rooms].sort());
  });
  socket.on("rooms", (ack) => ack?.([...socket.rooms].sort()));
  socket.on("hello", (...args) => socket.emit("hi", ...args));
});

instrument(io, {
  auth: { type: "basic", username: values.username, password: values.hash },
  readonly: values["read-only"],
  serverId: "reference",
  mode: "development",
});

http.listen(Number(values.port), values.host, () => {
  console.log(`listening ${http.address().port}`);
});

const stop = () => {
  io.close();
  http.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
