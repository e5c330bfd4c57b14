// The stock admin UI (@socket.io/admin-ui's built ui/dist) in headless Chromium, against a
// hub: serves ui/dist on a loopback port, fills the connection form, and waits until the
// dashboard lists the server and the socket it is told of.
//
//   node admin_ui_browser.mjs --hub http://127.0.0.1:N --ui-port M --username U
//        --password P --server-id ID --socket SID --screenshots DIR [--chromium PATH]
//
// Prints one JSON line: {"ok": true, "screenshots": [...]} or {"ok": false, "error"}.
// Nothing leaves the machine: the UI's web fonts and icon font (on public CDNs) are
// refused at the browser, before any request goes out.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values } = parseArgs({
  options: {
    hub: { type: "string" },
    "ui-port": { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    "server-id": { type: "string" },
    socket: { type: "string" },
    screenshots: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
    timeout: { type: "string", default: "60" },
  },
});

const require = createRequire(import.meta.url);
const DIST = join(dirname(require.resolve("@socket.io/admin-ui/package.json")), "ui", "dist");
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

function serveDist(port) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    let file = join(DIST, path === "/" ? "index.html" : path);
    if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) {
      file = join(DIST, "index.html");
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

const LOOPBACK = /^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//;
const shots = [];

async function scenario(browser, uiUrl) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // only loopback: the CDN fonts of index.html are refused here
  await page.route("**/*", (route) =>
    LOOPBACK.test(route.request().url()) ? route.continue() : route.abort()
  );
  const shot = async (name) => {
    // the page slides in and its charts grow: let them settle, for a picture one can read
    await page.waitForTimeout(1000);
    const path = join(values.screenshots, `admin-ui-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    shots.push(path);
  };
  await page.goto(uiUrl);
  await page.getByLabel("Server URL").fill(values.hub);
  await page.getByLabel("Username").fill(values.username);
  await page.getByLabel("Password").fill(values.password);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByLabel("Server URL").waitFor({ state: "hidden" });

  await page.goto(`${uiUrl}#/servers/`);
  await page.getByText(values["server-id"], { exact: true }).first().waitFor();
  await shot("servers");

  await page.goto(`${uiUrl}#/sockets/`);
  await page.getByText(values.socket, { exact: true }).first().waitFor();
  await shot("sockets");

  await page.goto(`${uiUrl}#/`);
  await page.getByText("Servers").first().waitFor();
  await shot("dashboard");
  return { ok: true, screenshots: shots };
}

let browser;
let server;
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `timed out`, screenshots: shots }));
  process.exit(0);
}, Number(values.timeout) * 1000);
try {
  server = await serveDist(Number(values["ui-port"]));
  browser = await chromium.launch({
    executablePath: values.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const result = await scenario(browser, `http://127.0.0.1:${values["ui-port"]}/`);
  console.log(JSON.stringify(result));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err), screenshots: shots }));
} finally {
  clearTimeout(timer);
  await browser?.close();
  server?.close();
}
