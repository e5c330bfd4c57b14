// Receiving clients for the bench's `fanout-ws` scenario: N WebSocket connections made with
// the `ws` package, each speaking Engine.IO v4 / Socket.IO v5 by hand, in one Node process.
//
//   node ws_clients.mjs --port P --n N [--host 127.0.0.1] [--prefix w] [--room bench]
//                       [--inflight 100] [--timeout 120]
//
// Each client: WebSocket to /socket.io/?EIO=4&transport=websocket (no permessage-deflate),
// answers every ping "2" with "3", sends CONNECT `40{"name":...}`, waits for `40{...}`, then
// `42<id>["join",room]` and waits for `43<id>[true]`. Once every client is joined (or has
// failed, or the timeout passed) it prints `{"ready":R,"failed":F,"states":{...},"errors":{...}}`
// (errors: why connections failed or were closed, with a count each).
//
// Then it obeys JSON lines on stdin, one JSON line of reply on stdout each:
//   {"cmd":"record","run":R}     count `msg` deliveries of run R from now on -> {"receivers"}
//   {"cmd":"cutoff","until_ns":T} count none received after wall-clock T (ns) -> {"ok"}
//   {"cmd":"received"}           -> {"received"}
//   {"cmd":"collect"}            stop recording -> {"received","stray","late",
//                                "latencies" (µs, unsorted), "healthy_closed", "states",
//                                "errors"}
//   {"cmd":"quit"}               close every connection and exit -> {"ok"}
//
// A delivery is `42["msg",{"t":<ns>,"s":<seq>,"r":<run>,...` where t is the sender's
// time.time_ns(). Latency is the wall clock at receipt, performance.timeOrigin +
// performance.now() (µs precision), minus t.
import { createInterface } from "node:readline";
import WebSocket from "ws";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number.parseInt(option("--port", "0"), 10);
const count = Number.parseInt(option("--n", "0"), 10);
const prefix = option("--prefix", "w");
const room = option("--room", "bench");
const inflightMax = Number.parseInt(option("--inflight", "100"), 10);
const timeoutMs = Number.parseFloat(option("--timeout", "120")) * 1000;
const url = `ws://${host}:${port}/socket.io/?EIO=4&transport=websocket`;

const CONNECTING = 0;
const JOINING = 1;
const READY = 2;
const FAILED = 3;
const CLOSED = 4;
const STATE_NAMES = ["connecting", "joining", "ready", "failed", "closed"];
const STAMP = /^42\["msg",\{"t":(\d+),"s":\d+,"r":(\d+),/;
const JOIN_ACK = "431[true]";

let run = null;
let until = Number.POSITIVE_INFINITY; // µs since the epoch
let received = 0;
let stray = 0;
let late = 0;
let latencies = [];
let started = 0;
let settled = 0;
let inflight = 0;
let announced = false;
const clients = [];
const errors = {}; // why connections failed or closed: message -> count

function noteError(reason) {
  errors[reason] = (errors[reason] || 0) + 1;
}

function nowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

function write(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function settle(client, state) {
  const wasPending = client.state < READY;
  client.state = state;
  if (wasPending) {
    settled += 1;
    inflight -= 1;
    pump();
  }
}

function onDelivery(data) {
  if (run === null) return;
  const now = nowUs();
  let sent;
  let r;
  const m = STAMP.exec(data.toString("latin1", 0, Math.min(data.length, 96)));
  if (m !== null) {
    // µs since the epoch fits a double exactly; ns would not
    sent = Number(m[1].slice(0, -3));
    r = Number(m[2]);
  } else {
    // not the compact form the three servers send: parse it all
    const body = JSON.parse(data.toString("utf8").slice(2))[1];
    sent = Math.floor(Number(body.t) / 1000);
    r = body.r;
  }
  if (r !== run) {
    stray += 1;
  } else if (now > until) {
    late += 1;
  } else {
    received += 1;
    latencies.push(Math.floor(now - sent));
  }
}

function open(index) {
  const client = { name: `${prefix}${index}`, state: CONNECTING, ws: null };
  clients.push(client);
  const ws = new WebSocket(url, { perMessageDeflate: false });
  client.ws = ws;
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    // a prefix check on the raw bytes before any decoding: deliveries are most of the traffic
    if (data[4] === 0x6d && data.toString("latin1", 0, 8) === '42["msg"') {
      onDelivery(data);
      return;
    }
    const text = data.toString("utf8");
    if (text === "2") {
      ws.send("3");
    } else if (text[0] === "0") {
      ws.send(`40${JSON.stringify({ name: client.name })}`);
    } else if (text.startsWith("40")) {
      client.state = JOINING;
      ws.send(`421${JSON.stringify(["join", room])}`);
    } else if (text === JOIN_ACK && client.state === JOINING) {
      settle(client, READY);
      maybeAnnounce();
    } else if (text.startsWith("44") || text.startsWith("41") || text === "1") {
      noteError(`server sent ${text.slice(0, 60)}`);
      settle(client, client.state < READY ? FAILED : CLOSED);
      ws.close();
      maybeAnnounce();
    }
  });
  ws.on("error", (err) => {
    noteError(`error: ${err.code || err.message}`);
    settle(client, client.state < READY ? FAILED : CLOSED);
    maybeAnnounce();
  });
  ws.on("close", (code) => {
    if (client.state < FAILED) noteError(`closed: ${code}`);
    if (client.state < FAILED) settle(client, client.state < READY ? FAILED : CLOSED);
    maybeAnnounce();
  });
}

function pump() {
  while (started < count && inflight < inflightMax) {
    inflight += 1;
    open(started);
    started += 1;
  }
}

function tally() {
  const states = Object.fromEntries(STATE_NAMES.map((name) => [name, 0]));
  for (const c of clients) states[STATE_NAMES[c.state]] += 1;
  return states;
}

function maybeAnnounce(force = false) {
  if (announced || (!force && settled < count)) return;
  announced = true;
  const states = tally();
  write({ ready: states.ready, failed: count - states.ready, states, errors });
}

const commands = {
  record(msg) {
    run = msg.run;
    until = Number.POSITIVE_INFINITY;
    received = 0;
    stray = 0;
    late = 0;
    latencies = [];
    return { receivers: clients.filter((c) => c.state === READY).length };
  },
  cutoff(msg) {
    until = msg.until_ns / 1000;
    return { ok: true };
  },
  received() {
    return { received };
  },
  collect() {
    run = null;
    const reply = {
      received,
      stray,
      late,
      latencies,
      states: tally(),
      errors,
      healthy_closed: clients.filter((c) => c.state === CLOSED).length,
    };
    latencies = [];
    return reply;
  },
  status() {
    return { states: tally() };
  },
  quit() {
    for (const c of clients) {
      if (c.state < FAILED) c.state = CLOSED;
      c.ws.terminate();
    }
    return { ok: true };
  },
};

createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  const handler = commands[msg.cmd];
  write(handler ? handler(msg) : { error: `unknown command ${msg.cmd}` });
  if (msg.cmd === "quit") process.exit(0);
});
process.stdin.on("end", () => process.exit(0));

setTimeout(() => maybeAnnounce(true), timeoutMs).unref();
if (count === 0) maybeAnnounce(true);
pump();
