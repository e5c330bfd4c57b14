// A stock socket.io-client driven line by line, for tests that steer a scenario step by step.
//
//   node driven_client.mjs --url http://127.0.0.1:N [--transports polling,websocket]
//                          [--auth JSON] [--rejoin JSON]
//
// --rejoin '["join","room"]': on every connection that is not a recovered one (the first
// included), emit that event with an ack, as an app rejoins its rooms; the ack is reported
// as {"type":"ack","event":NAME,"value":VALUE}.
//
// It reconnects by itself (100 ms, no jitter) and reports on stdout, one JSON object a line:
//   {"type":"connect","id":ID,"recovered":BOOL}
//   {"type":"event","name":NAME,"args":[...]}      every event, as the listener received it
//   {"type":"disconnect","reason":REASON}
//   {"type":"connect_error","message":MESSAGE}
// Commands on stdin, one JSON object a line:
//   {"cmd":"cut"}    close the Engine.IO connection under the socket (as a network cut
//                    would): the client reconnects and may recover
//   {"cmd":"emit","event":NAME,"args":[...]}
//   {"cmd":"call","event":NAME,"args":[...]}   emit with an ack; its answer is reported as
//                    {"type":"ack","event":NAME,"value":VALUE} (or "error" on a timeout)
//   {"cmd":"exit"}
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    transports: { type: "string", default: "polling,websocket" },
    auth: { type: "string", default: "{}" },
    rejoin: { type: "string", default: "" },
  },
});

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const socket = io(values.url, {
  forceNew: true,
  transports: values.transports.split(","),
  auth: JSON.parse(values.auth),
  reconnectionDelay: 100,
  reconnectionDelayMax: 100,
  randomizationFactor: 0,
});

const rejoin = values.rejoin ? JSON.parse(values.rejoin) : null;

socket.on("connect", () => {
  out({ type: "connect", id: socket.id, recovered: !!socket.recovered });
  if (rejoin && !socket.recovered) {
    socket
      .timeout(10000)
      .emitWithAck(...rejoin)
      .then((value) => out({ type: "ack", event: rejoin[0], value }))
      .catch((err) => out({ type: "ack", event: rejoin[0], error: String(err?.message ?? err) }));
  }
});
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.onAny((name, ...args) => out({ type: "event", name, args }));

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "cut") {
    socket.io.engine.close();
  } else if (command.cmd === "emit") {
    socket.emit(command.event, ...(command.args || []));
  } else if (command.cmd === "call") {
    socket
      .timeout(10000)
      .emitWithAck(command.event, ...(command.args || []))
      .then((value) => out({ type: "ack", event: command.event, value }))
      .catch((err) => out({ type: "ack", event: command.event, error: String(err?.message ?? err) }));
  } else if (command.cmd === "exit") {
    socket.disconnect();
    process.exit(0);
  }
});
