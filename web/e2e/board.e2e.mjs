// End to end: the board page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), two browser contexts signed in as two users, against the real server
// started by this test. Screenshots go to test-artifacts/web/ at the repository's root.
//
// Run: node --test e2e/board.e2e.mjs   (needs web/dist: npm run build)

import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { DevServer } from "./server.mjs";

const ROOT = resolve(import.meta.dirname, "..", "..");
const ARTIFACTS = process.env.ARTIFACTS_DIR ?? join(ROOT, "test-artifacts", "web");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** "A task edited by one appears on the other's board within a second." */
const LIVE_MS = 1000;
/** Everything else that waits on the network. */
const WAIT_MS = 10_000;

const server = new DevServer();
let browser;
const pages = {};

const $ = (id) => `[data-testid="${id}"]`;

async function shoot(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${who}.png`) });
  }
}

async function signIn(who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${who}] page error: ${err.message}`));
  page.tokenRequests = 0;
  page.elsewhere = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && request.url().endsWith("/api/dev/token")) page.tokenRequests += 1;
    const url = new URL(request.url());
    if (url.protocol.startsWith("http") || url.protocol.startsWith("ws")) {
      if (url.host !== new URL(server.url).host) page.elsewhere.push(request.url());
    }
  });
  page.sockets = [];
  page.on("websocket", (ws) => {
    page.sockets.push(ws.url());
    if (new URL(ws.url()).host !== new URL(server.url).host) page.elsewhere.push(ws.url());
  });
  await page.goto(server.url);
  await page.click($(`sign-in-${who}`));
  await page.waitForSelector($("task-card"), { timeout: WAIT_MS });
  await page.waitForSelector($("connecting-banner"), { state: "detached", timeout: WAIT_MS });
  pages[who] = page;
  return page;
}

const onlineNames = async (page) => (await page.locator($("member-name")).allInnerTexts()).sort();

async function waitOnline(page, names) {
  await page.waitForFunction(
    ([sel, expected]) => {
      const shown = [...document.querySelectorAll(sel)].map((e) => e.textContent ?? "");
      return expected.every((n) => shown.some((s) => s.includes(n)));
    },
    [$("online-member"), names],
    { timeout: WAIT_MS },
  );
}

function cardTitled(page, title) {
  return page.locator($("task-card"), { has: page.locator($("task-title"), { hasText: title }) });
}

async function editTask(page, oldTitle, { title, status, assignee }) {
  await cardTitled(page, oldTitle).locator($("task-edit")).click();
  const editor = page.locator($("task-editor"));
  if (title !== undefined) await editor.locator($("edit-title")).fill(title);
  if (status !== undefined) await editor.locator($("edit-status")).selectOption(status);
  if (assignee !== undefined) await editor.locator($("edit-assignee")).selectOption(assignee);
  await editor.locator($("edit-save")).click();
}

describe("the board page, two users", { timeout: 180_000 }, () => {
  before(async () => {
    assert.ok(existsSync(join(ROOT, "web", "dist", "index.html")), "web/dist is missing: run npm run build");
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    await server.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    await signIn("alice");
    await signIn("bob");
  });

  after(async () => {
    await browser?.close();
    await server.close();
  });

  it("talks to one origin: the page, the REST API and Socket.IO on the server's one port", async () => {
    const origin = new URL(server.url).host;
    for (const page of Object.values(pages)) {
      assert.deepEqual(page.elsewhere, []);
      assert.ok(page.sockets.some((url) => url.startsWith(`ws://${origin}/socket.io/`)), page.sockets.join(" "));
    }
  });

  it("shows who is online, on both boards", async () => {
    await waitOnline(pages.alice, ["Alice", "Bob"]);
    await waitOnline(pages.bob, ["Alice", "Bob"]);
    assert.deepEqual(await onlineNames(pages.bob), ["Alice", "Bob"]);
    assert.deepEqual(await onlineNames(pages.alice), ["Alice", "Bob"]);
  });

  it("a task edited by one appears on the other's board within a second", async () => {
    const title = "Try the task board (edited by Alice)";
    await editTask(pages.alice, "Try the task board", { title, status: "in_progress", assignee: "bob" });
    const seen = cardTitled(pages.bob, title);
    await seen.waitFor({ timeout: LIVE_MS });
    // it moved to Bob's "In progress" column and is assigned to him
    assert.equal(await seen.evaluate((el) => el.closest("[data-status]").dataset.status), "in_progress");
    assert.equal((await seen.locator($("task-assignee")).innerText()).trim(), "Bob");
  });

  it("a task added by one appears in the other's To do column", async () => {
    await pages.bob.fill($("new-task"), "Added by Bob");
    await pages.bob.press($("new-task"), "Enter");
    const seen = cardTitled(pages.alice, "Added by Bob");
    await seen.waitFor({ timeout: WAIT_MS });
    assert.equal(await seen.evaluate((el) => el.closest("[data-status]").dataset.status), "todo");
    assert.equal(await cardTitled(pages.bob, "Added by Bob").count(), 1);
  });

  it("the assignee's notification appears on the bell, and can be marked read", async () => {
    const bob = pages.bob;
    await bob.waitForSelector($("bell-count"), { timeout: WAIT_MS });
    assert.equal((await bob.locator($("bell-count")).innerText()).trim(), "1");
    await bob.click($("bell"));
    const note = bob.locator($("notification")).first();
    // a sentence to read, and the project's name
    assert.match(await note.innerText(), /Alice assigned “Try the task board \(edited by Alice\)” to you/);
    assert.match(await note.innerText(), /Demo project/);
    await shoot("notification");
    await note.locator($("mark-read")).click();
    await bob.waitForSelector($("bell-count"), { state: "detached", timeout: WAIT_MS });
    await bob.click($("bell"));
    // Alice changed the task, so she is not notified
    assert.equal(await pages.alice.locator($("bell-count")).count(), 0);
  });

  it("typing shows on the other board, then the message itself", async () => {
    const { alice, bob } = pages;
    await alice.fill($("chat-input"), "Hello Bob");
    await bob.waitForFunction((sel) => document.querySelector(sel)?.textContent === "Alice is typing…", $("typing"), {
      timeout: WAIT_MS,
    });
    await shoot("typing");
    await alice.click($("chat-send"));
    await bob.locator($("message-text"), { hasText: "Hello Bob" }).waitFor({ timeout: WAIT_MS });
    await bob.waitForFunction((sel) => document.querySelector(sel)?.textContent === "", $("typing"), { timeout: WAIT_MS });
    await bob.fill($("chat-input"), "Hi Alice, on it");
    await bob.press($("chat-input"), "Enter");
    await alice.locator($("message-text"), { hasText: "Hi Alice, on it" }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await alice.locator($("message-text")).allInnerTexts(), ["Hello Bob", "Hi Alice, on it"]);
  });

  it("a pointer over the board shows as a cursor on the other board", async () => {
    const { alice, bob } = pages;
    const box = await alice.locator($("board")).boundingBox();
    for (let i = 0; i < 5; i++) {
      await alice.mouse.move(box.x + 200 + i * 20, box.y + 150 + i * 10);
      await alice.waitForTimeout(80);
    }
    // where Alice's pointer last was, as a fraction of the board: Bob's board draws it there
    const x = ((280 / box.width) * 100).toFixed(1);
    const cursor = bob.locator(`${$("remote-cursor")}[data-user-id="alice"]`);
    await bob.waitForFunction(
      ([sel, want]) => {
        const left = document.querySelector(sel)?.style.left ?? "";
        return Math.abs(parseFloat(left) - parseFloat(want)) < 0.2;
      },
      [`${$("remote-cursor")}[data-user-id="alice"]`, x],
      { timeout: WAIT_MS },
    );
    assert.equal((await cursor.innerText()).trim(), "Alice");
    await shoot("board");
  });

  it("a token pasted at sign-in works too (no dev sign-in needed)", async () => {
    const response = await fetch(`${server.url}/api/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: "carol", userName: "Carol" }),
    });
    const { token } = await response.json();
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const carol = await context.newPage();
    await carol.goto(server.url);
    await carol.fill($("sign-in-token"), token);
    await carol.press($("sign-in-token"), "Enter");
    await carol.waitForSelector($("task-card"), { timeout: WAIT_MS });
    assert.equal((await carol.locator($("me")).innerText()).trim(), "Carol");
    await waitOnline(pages.alice, ["Alice", "Bob", "Carol"]);
    pages.carol = carol;
  });

  it("a server restart shows the reconnecting banner, then everything recovers", async () => {
    const { alice, bob, carol } = pages;
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, `the server did not exit cleanly: ${JSON.stringify(stopped)}`);
    await alice.waitForSelector($("reconnecting-banner"), { timeout: WAIT_MS });
    await bob.waitForSelector($("reconnecting-banner"), { timeout: WAIT_MS });
    await shoot("reconnecting");

    // a new process: same ports and database, and a new secret, as after a deploy that
    // rotated JWT_SECRET (the pages' tokens are now refused, and they fetch new ones)
    server.rotateSecret();
    await server.start();
    await alice.waitForSelector($("reconnecting-banner"), { state: "detached", timeout: 20_000 });
    await bob.waitForSelector($("reconnecting-banner"), { state: "detached", timeout: 20_000 });
    await waitOnline(alice, ["Alice", "Bob"]);
    await waitOnline(bob, ["Alice", "Bob"]);
    // a pasted token cannot be renewed: the new secret refuses it, and Carol is asked to
    // sign in again
    await carol.waitForSelector($("signed-out-banner"), { timeout: WAIT_MS });
    // the hub refused the old tokens (`Authentication failed: invalid token`): each page
    // asked for a new one, once, and connected with it
    assert.equal(alice.tokenRequests, 2);
    assert.equal(bob.tokenRequests, 2);

    // live again: rooms were rejoined, so edits and chat reach the other board
    await editTask(bob, "Write the README walkthrough", { status: "done" });
    await bob.waitForSelector($("task-editor"), { state: "detached", timeout: WAIT_MS });
    await alice.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-status="done"] [data-testid="task-title"]')].some(
          (e) => e.textContent === "Write the README walkthrough",
        ),
      undefined,
      { timeout: WAIT_MS },
    );
    await alice.fill($("chat-input"), "Back after the restart");
    await alice.click($("chat-send"));
    await bob.locator($("message-text"), { hasText: "Back after the restart" }).waitFor({ timeout: WAIT_MS });
    // history survived: the messages from before the restart are still there, once each
    assert.deepEqual(await bob.locator($("message-text")).allInnerTexts(), [
      "Hello Bob",
      "Hi Alice, on it",
      "Back after the restart",
    ]);
    await shoot("recovered");
  });

  it("a notification's link opens the board at its task, in the page and as an address", async () => {
    const { bob } = pages;
    const shownTitle = async (page) => {
      const card = page.locator(`${$("task-card")}[data-shown="true"]`);
      await card.waitFor({ timeout: WAIT_MS });
      return (await card.locator($("task-title")).innerText()).trim();
    };
    if ((await bob.locator($("notifications")).count()) === 0) await bob.click($("bell"));
    const link = bob.locator($("notification-link")).first();
    const href = await link.getAttribute("href");
    assert.match(href, /^\/projects\/\d+\/tasks\/\d+$/);
    await link.click();
    assert.equal(await shownTitle(bob), "Try the task board (edited by Alice)");
    await bob.waitForSelector($("notifications"), { state: "detached", timeout: WAIT_MS });
    // the board's own address from there on, so a reload stays on the board
    assert.match(new URL(bob.url()).hash, /^#project=\d+$/);
    assert.equal(new URL(bob.url()).pathname, "/");
    await shoot("notification-opened");

    // the link as an address (opened from an email, say): the server answers with the page
    await bob.goto(`${server.url}${href}`);
    assert.equal(await shownTitle(bob), "Try the task board (edited by Alice)");
    assert.equal(new URL(bob.url()).pathname, "/");
  });
});
