// One emit through @socket.io/redis-emitter, then exit:
//   node emit.mjs --redis redis://127.0.0.1:P/0 --json '{"rooms": [...], "event": "...", "args": [...]}'
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const argv = process.argv.slice(2);
const option = (name) => argv[argv.indexOf(`--${name}`) + 1];
const spec = JSON.parse(option("json"));

const client = createClient({ url: option("redis") });
await client.connect();
let target = new Emitter(client).of(spec.nsp ?? "/");
for (const room of spec.rooms ?? []) target = target.to(room);
for (const room of spec.except ?? []) target = target.except(room);
target.emit(spec.event, ...(spec.args ?? []));
await client.quit();
console.log(JSON.stringify({ emitted: true }));
