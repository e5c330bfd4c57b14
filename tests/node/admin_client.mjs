// The admin UI's side of the /admin protocol, spoken with the stock socket.io-client as the
// UI speaks it (same options: forceNew, withCredentials, polling then websocket, auth).
//
//   node admin_client.mjs --url http://127.0.0.1:N --username U --password P [--read-only]
//
// Runs one scenario and prints one JSON line: {"ok": true, ...} or {"ok": false, "error"}.
// Ids, times and counts are replaced by what they are ("<sid>", "<time>", ...), so that
// the runs against our hub and against Node's instrument() compare equal.
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    "read-only": { type: "boolean", default: false },
    timeout: { type: "string", default: "20" },
  },
});
const URL = values.url;
const READ_ONLY = values["read-only"];
const sockets = [];

function connect(nsp, auth, transports = ["polling", "websocket"]) {
  const socket = io(URL + nsp, {
    forceNew: true,
    reconnection: false,
    withCredentials: true,
    transports,
    auth,
  });
  sockets.push(socket);
  return socket;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

function upgraded(socket) {
  if (socket.io.engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
}

function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("connected with wrong credentials")));
    socket.once("connect_error", (err) => resolve(err.message));
  });
}

// every event an admin socket receives, in order
function record(socket) {
  const log = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    log.push({ event, args });
    for (const waiter of [...waiters]) waiter();
  });
  const waitFor = (what, predicate = () => true) =>
    new Promise((resolve) => {
      const check = () => {
        const found = log.find((e) => e.event === what && predicate(e.args));
        if (found) {
          waiters.splice(waiters.indexOf(check), 1);
          resolve(found.args);
        }
      };
      waiters.push(check);
      check();
    });
  return { log, waitFor };
}

function sortRuns(feed) {
  const out = [];
  for (const entry of feed) {
    const run = [];
    while (out.length && out[out.length - 1][0] === "room_left" && entry[0] === "room_left") {
      run.unshift(out.pop());
    }
    run.push(entry);
    if (entry[0] === "room_left") run.sort((a, b) => String(a[2]).localeCompare(String(b[2])));
    out.push(...run);
  }
  return out;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// what a value is, where the value itself differs from run to run
function shape(value, ids) {
  if (typeof value === "string") {
    if (ids.has(value)) return ids.get(value);
    if (ISO.test(value)) return "<time>";
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => shape(v, ids));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v, ids)]));
  }
  return value;
}

function serialized(socket, ids) {
  // the fields the UI reads, as their kinds (the handshake's values are the server's own)
  const shake = socket.handshake ?? {};
  return {
    id: shape(socket.id, ids),
    clientId: typeof socket.clientId === "string" && socket.clientId.length === 12,
    transport: socket.transport,
    nsp: socket.nsp,
    data: socket.data,
    rooms: shape(socket.rooms, ids),
    handshake: {
      address: shake.address,
      headers: typeof shake.headers === "object",
      query: { EIO: shake.query?.EIO, transport: shake.query?.transport },
      issued: Number.isInteger(shake.issued) && shake.issued > 1.6e12,
      time: typeof shake.time === "string",
      url: typeof shake.url === "string" && shake.url.startsWith("/socket.io/"),
      secure: shake.secure,
      xdomain: typeof shake.xdomain,
      auth: "auth" in shake,
    },
  };
}

let step = "start";
async function scenario() {
  const out = {};
  step = "refusals";
  out.wrongPassword = await refused(
    connect("/admin", { username: values.username, password: values.password + "x" })
  );
  out.noCredentials = await refused(connect("/admin", {}));

  const target = await connected(connect("/", { who: "target" }));
  await upgraded(target); // so that all_sockets shows it on a WebSocket, on any server
  const admin = connect("/admin", { username: values.username, password: values.password });
  const { log, waitFor } = record(admin);
  await connected(admin);
  const targetId = target.id;
  const ids = new Map([
    [target.id, "<target>"],
    [admin.id, "<admin>"],
  ]);
  step = "session";
  const [session] = await waitFor("session");
  out.session = typeof session === "string" && session.length === 16;
  const [config] = await waitFor("config");
  out.config = config;
  const [all] = await waitFor("all_sockets");
  // the admin's own transport: polling, or already a WebSocket if its upgrade beat the
  // password check (on either server, depending on the machine's load)
  out.allSockets = all
    .map((s) => serialized(s, ids))
    .map((s) => (s.id === "<admin>" ? { ...s, transport: ["polling", "websocket"].includes(s.transport) } : s))
    .sort((a, b) => a.nsp.localeCompare(b.nsp));
  const [stats] = await waitFor("server_stats");
  out.stats = {
    keys: Object.keys(stats).sort(),
    serverId: stats.serverId,
    pid: Number.isInteger(stats.pid),
    uptime: typeof stats.uptime === "number" && stats.uptime >= 0,
    clientsCount: stats.clientsCount >= 2,
    namespaces: stats.namespaces.map((n) => n.name).sort(),
    aggregatedEvents: Array.isArray(stats.aggregatedEvents),
  };

  step = "second";
  // a socket that connects on polling and upgrades
  const second = connect("/", { who: "second" });
  await connected(second);
  ids.set(second.id, "<second>");
  const secondId = second.id;
  const [joining] = await waitFor("socket_connected", ([s]) => s.id === second.id);
  out.secondConnected = serialized(joining, ids);
  await upgraded(second);
  const [updated] = await waitFor("socket_updated", ([s]) => s.id === second.id);
  out.secondUpdated = shape(updated, ids);

  step = "rooms";
  // its rooms and events, as they happen
  // sorted once the ids are masked: a random id sorts before or after "room-1"
  out.joinAck = shape(await second.emitWithAck("join", "room-1"), ids).sort();
  await waitFor("room_joined", ([, room, id]) => room === "room-1" && id === second.id);
  second.emit("hello", 1, { two: 2 });
  await new Promise((resolve) => second.once("hi", resolve));
  await waitFor("event_sent", ([, id, args]) => id === second.id && args[0] === "hi");

  step = "commands";
  // the UI's commands, on the target
  const got = [];
  target.onAny((event, ...args) => got.push([event, ...args]));
  admin.emit("emit", "/", target.id, "fromAdmin", 1, { x: "y" });
  admin.emit("join", "/", "room-2", target.id);
  admin.emit("leave", "/", "room-2", target.id);
  if (READ_ONLY) {
    admin.emit("_disconnect", "/", false, target.id);
    // nothing happened to the target: it still answers, in the rooms it had
    out.targetRooms = shape(await target.emitWithAck("rooms"), ids);
    target.emit("hello", "still here");
    await new Promise((resolve) => target.once("hi", resolve));
  } else {
    await new Promise((resolve) => target.once("fromAdmin", resolve));
    step = "commands: room_joined";
    await waitFor("room_joined", ([, room, id]) => room === "room-2" && id === target.id);
    step = "commands: room_left";
    await waitFor("room_left", ([, room, id]) => room === "room-2" && id === target.id);
    step = "commands: rooms";
    out.targetRooms = shape(await target.emitWithAck("rooms"), ids);
    admin.emit("join", "/", "room-3", "<nobody>");
    const reason = new Promise((resolve) => target.once("disconnect", resolve));
    admin.emit("_disconnect", "/", false, target.id);
    step = "commands: target disconnect";
    out.targetDisconnect = await reason;
    step = "commands: socket_disconnected";
    await waitFor("socket_disconnected", ([, id]) => id === targetId);
  }
  out.targetGot = shape(got, ids);
  step = "second leaves";
  second.disconnect();
  await waitFor("socket_disconnected", ([, id]) => id === secondId);
  await waitFor("room_left", ([, room, id]) => room === secondId && id === secondId);
  await waitFor("room_left", ([, room, id]) => room === "room-1" && id === secondId);

  // the feed, in the order it came: the events of the two sockets of "/"
  // the rooms a socket leaves as it goes are told in the order its server keeps them
  // (Node: the order they were joined in; ours: a set's): each such run is sorted
  out.feed = sortRuns(log
    .filter(({ event }) => event !== "server_stats")
    .filter(({ args }) => args[0] === "/" || args[0]?.nsp === "/")
    .filter(({ args }) => args.some((a) => [targetId, secondId].includes(a?.id ?? a)))
    .map(({ event, args }) =>
      event === "socket_connected"
        ? [event, serialized(args[0], ids).id, ...shape(args.slice(1), ids)]
        : [event, ...shape(args, ids)]
    ));

  step = "reload";
  // a page reload: back in with the session id alone
  const again = connect("/admin", { sessionId: session });
  const replay = record(again);
  await connected(again);
  out.sessionAgain = (await replay.waitFor("config"))[0].supportedFeatures.length;
  return out;
}

const limit = Number(values.timeout) * 1000;
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `timed out after ${limit} ms, at ${step}` }));
  process.exit(0);
}, limit);

scenario()
  .then((result) => console.log(JSON.stringify({ ok: true, ...result })))
  .catch((err) => console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err) })))
  .finally(() => {
    clearTimeout(timer);
    for (const socket of sockets) socket.disconnect();
    setTimeout(() => process.exit(0), 50);
  });
