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

/** One page's screenshot, for pages outside `pages` (a phone, say). */
async function shootPage(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

const statusOf = (page, title) => cardTitled(page, title).evaluate((el) => el.closest("[data-status]").dataset.status);

/** Each column's card titles, in order: what a board shows. */
const boardOf = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll(".column[data-status]")].map((c) => [
        c.dataset.status,
        [...c.querySelectorAll('[data-testid="task-card"] [data-testid="task-title"]')].map((e) => e.textContent),
      ]),
    ),
  );

/** Wait until `page` shows the card titled `title` in column `status` (at `index`, if given). */
async function waitCard(page, title, status, index) {
  await page.waitForFunction(
    ([title, status, index]) => {
      const titles = [...document.querySelectorAll(`.column[data-status="${status}"] [data-testid="task-card"] [data-testid="task-title"]`)].map(
        (e) => e.textContent,
      );
      return index === undefined ? titles.includes(title) : titles[index] === title;
    },
    [title, status, index],
    { timeout: WAIT_MS },
  );
}

async function addTask(page, title) {
  await page.fill($("new-task"), title);
  await page.press($("new-task"), "Enter");
  await cardTitled(page, title).waitFor({ timeout: WAIT_MS });
}

/** Drag a card by mouse: into column `status` (at its bottom), or onto the top half of card `above`. */
async function dragCard(page, title, { status, above }) {
  const grab = await cardTitled(page, title).locator($("task-title")).boundingBox();
  await page.mouse.move(grab.x + 8, grab.y + grab.height / 2);
  await page.mouse.down();
  await page.mouse.move(grab.x + 28, grab.y + grab.height / 2 + 12, { steps: 4 });
  await page.locator($("drag-ghost")).waitFor({ timeout: WAIT_MS });
  const target = above
    ? await cardTitled(page, above).boundingBox().then((b) => ({ x: b.x + b.width / 2, y: b.y + 6 }))
    : await page.locator(`.column[data-status="${status}"]`).boundingBox().then((b) => ({ x: b.x + b.width / 2, y: b.y + b.height - 12 }));
  await page.mouse.move(target.x, target.y, { steps: 12 });
  await page.mouse.up();
}

/** The PUT of a task from `page`, held until `release()` is called. */
async function holdTaskUpdates(page) {
  let release;
  let sent;
  const held = new Promise((ok) => (release = ok));
  const gone = new Promise((ok) => (sent = ok));
  await page.route("**/api/tasks/*", async (route) => {
    if (route.request().method() !== "PUT") return route.continue();
    await held;
    await route.continue();
    sent();
  });
  return async () => {
    release();
    await gone; // the held request is on its way before the route goes
    await page.unroute("**/api/tasks/*");
  };
}

const isTaskPut = (r) => r.request().method() === "PUT" && /\/api\/tasks\/\d+$/.test(r.url());

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
  it("a card dragged by mouse from To do to Done moves on the other board, and cards keep their order", async () => {
    const { alice, bob } = pages;
    await addTask(alice, "Drag me");
    await waitCard(bob, "Drag me", "todo");
    const doneBefore = (await boardOf(alice)).done;

    const put = alice.waitForResponse(isTaskPut);
    await dragCard(alice, "Drag me", { status: "done" });
    // shown at once, at the bottom of Done, and no text was selected on the way
    assert.deepEqual((await boardOf(alice)).done, [...doneBefore, "Drag me"]);
    assert.equal(await alice.evaluate(() => String(window.getSelection())), "");
    assert.equal((await put).status(), 200);
    await waitCard(bob, "Drag me", "done", doneBefore.length);
    await shoot("dragged-to-done");

    // within the column: to the top of Done, on both boards, and stored (a reload keeps it)
    await dragCard(alice, "Drag me", { above: doneBefore[0] });
    assert.deepEqual((await boardOf(alice)).done, ["Drag me", ...doneBefore]);
    await waitCard(bob, "Drag me", "done", 0);
    await bob.reload();
    await waitCard(bob, "Drag me", "done", 0);
    assert.deepEqual(await boardOf(bob), await boardOf(alice));
  });

  it("a card moved with the keyboard: picked up, moved with the arrows, dropped, each step announced", async () => {
    const { alice, bob } = pages;
    await addTask(bob, "Keyboard card");
    await waitCard(alice, "Keyboard card", "todo");
    const handle = () => cardTitled(bob, "Keyboard card").locator($("drag-handle"));
    const said = () => bob.locator($("drag-status")).textContent();

    await handle().focus();
    await bob.keyboard.press("Space");
    assert.match(await said(), /^Picked up “Keyboard card”: To do, position \d+ of \d+\. Arrow keys move it/);
    await bob.keyboard.press("ArrowRight");
    assert.match(await said(), /^In progress, position \d+ of \d+$/);
    await bob.keyboard.press("ArrowRight");
    await bob.keyboard.press("Home");
    assert.match(await said(), /^Done, position 1 of \d+$/);
    await bob.locator($("drop-slot")).waitFor({ timeout: WAIT_MS });
    await shoot("keyboard-lifted");
    await bob.keyboard.press("Space");
    assert.match(await said(), /^“Keyboard card” moved to Done, position 1 of \d+\.$/);
    await waitCard(bob, "Keyboard card", "done", 0);
    await waitCard(alice, "Keyboard card", "done", 0);
    // the focus went with the card
    assert.equal(await handle().evaluate((el) => el === document.activeElement), true);

    // Escape puts it back where it was
    await bob.keyboard.press("Enter");
    await bob.keyboard.press("ArrowLeft");
    await bob.keyboard.press("Escape");
    assert.equal(await said(), "Move cancelled: “Keyboard card” stays in Done.");
    assert.equal(await statusOf(bob, "Keyboard card"), "done");
  });

  it("two boards move the same card at once: one is refused, says who moved it, and both boards end the same", async () => {
    const { alice, bob } = pages;
    await addTask(alice, "Contested");
    await waitCard(bob, "Contested", "todo");

    // Bob moves it to In progress; his request is held until Alice's move is done
    const release = await holdTaskUpdates(bob);
    const bobPut = bob.waitForRequest((r) => r.method() === "PUT");
    await cardTitled(bob, "Contested").locator($("drag-handle")).focus();
    await bob.keyboard.press("Space");
    await bob.keyboard.press("ArrowRight");
    await bob.keyboard.press("Space");
    await bobPut;
    assert.equal(await statusOf(bob, "Contested"), "in_progress"); // shown at once

    const alicePut = alice.waitForResponse(isTaskPut);
    await dragCard(alice, "Contested", { status: "done" });
    assert.equal((await alicePut).status(), 200);
    await waitCard(bob, "Contested", "done"); // Alice's move reached Bob's board

    const refused = bob.waitForResponse(isTaskPut);
    await release();
    assert.equal((await refused).status(), 409);
    const notice = cardTitled(bob, "Contested").locator($("card-notice"));
    await notice.waitFor({ timeout: WAIT_MS });
    assert.match(await notice.innerText(), /Alice moved this card to Done while you were moving it/);
    await shoot("conflict");
    assert.equal(await statusOf(bob, "Contested"), "done");
    assert.deepEqual(await boardOf(bob), await boardOf(alice));
    await notice.locator($("card-notice-dismiss")).click();
  });

  it("an editor open on a card someone else changes says so, saving keeps their change; then the card is deleted", async () => {
    const { alice, bob } = pages;
    await cardTitled(bob, "Contested").locator($("task-edit")).click();
    const editor = bob.locator($("task-editor"));
    await editor.waitFor({ timeout: WAIT_MS });

    await editTask(alice, "Contested", { title: "Contested (renamed by Alice)" });
    const said = editor.locator($("editor-notice"));
    await said.waitFor({ timeout: WAIT_MS });
    assert.match(await said.innerText(), /Alice renamed this card to “Contested \(renamed by Alice\)” while you were editing it/);

    // Bob saves his description on the version he opened: refused, nothing of Alice's lost
    await editor.locator($("edit-description")).fill("Bob's notes");
    const refused = bob.waitForResponse(isTaskPut);
    await editor.locator($("edit-save")).click();
    assert.equal((await refused).status(), 409);
    await bob.waitForFunction(
      (sel) => /Your changes were not saved/.test(document.querySelector(sel)?.textContent ?? ""),
      $("editor-notice"),
      { timeout: WAIT_MS },
    );
    assert.equal(await editor.locator($("edit-title")).inputValue(), "Contested (renamed by Alice)");
    assert.equal(await editor.locator($("edit-description")).inputValue(), "Bob's notes");
    await shoot("editor-conflict");

    // saved again, on the current version: both changes stand, on both boards
    await editor.locator($("edit-save")).click();
    await editor.waitFor({ state: "detached", timeout: WAIT_MS });
    for (const page of [alice, bob]) {
      const card = cardTitled(page, "Contested (renamed by Alice)");
      await card.locator(".desc", { hasText: "Bob's notes" }).waitFor({ timeout: WAIT_MS });
    }

    // deleted by Bob (two clicks): gone from both boards, and Alice is told who did it
    await cardTitled(bob, "Contested (renamed by Alice)").locator($("task-edit")).click();
    await editor.locator($("edit-delete")).click();
    await editor.locator($("edit-delete-confirm")).click();
    await editor.waitFor({ state: "detached", timeout: WAIT_MS });
    await cardTitled(alice, "Contested (renamed by Alice)").waitFor({ state: "detached", timeout: WAIT_MS });
    assert.equal(await alice.locator($("task-deleted")).innerText(), "Bob deleted “Contested (renamed by Alice)”.");
    assert.equal(await cardTitled(bob, "Contested (renamed by Alice)").count(), 0);
  });

  it("at phone width (390x844) nothing overflows sideways, board and chat are both reachable, a finger drags a card", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const phone = await context.newPage();
    const overflow = () => phone.evaluate(() => document.scrollingElement.scrollWidth);
    await phone.goto(server.url);
    // the sign-in card holds its buttons
    const card = await phone.locator(".sign-in").boundingBox();
    for (const name of ["Use token", "Sign in"]) {
      const button = await phone.getByRole("button", { name }).boundingBox();
      assert.ok(button.x + button.width <= card.x + card.width, `${name} sticks out of the sign-in card`);
    }
    assert.ok((await overflow()) <= 390);
    await shootPage(phone, "phone-sign-in");

    await phone.click($("sign-in-bob"));
    await phone.waitForSelector($("task-card"), { timeout: WAIT_MS });
    await phone.waitForSelector($("connecting-banner"), { state: "detached", timeout: WAIT_MS });
    assert.ok((await overflow()) <= 390, `the board is ${await overflow()} px wide`);
    assert.ok(await phone.locator($("board")).isVisible());
    await shootPage(phone, "phone-board");

    await phone.click($("tab-chat"));
    assert.ok(await phone.locator($("chat-input")).isVisible());
    assert.equal(await phone.locator($("board")).isVisible(), false);
    assert.ok((await overflow()) <= 390, `the chat is ${await overflow()} px wide`);
    await phone.fill($("chat-input"), "Sent from a phone");
    await phone.click($("chat-send"));
    await pages.alice.locator($("message-text"), { hasText: "Sent from a phone" }).waitFor({ timeout: WAIT_MS });
    await shootPage(phone, "phone-chat");

    await phone.click($("bell"));
    const list = await phone.locator($("notifications")).boundingBox();
    assert.ok(list.x >= 0 && list.x + list.width <= 390, JSON.stringify(list));
    assert.ok((await overflow()) <= 390);
    await shootPage(phone, "phone-notifications");
    await phone.click($("bell"));

    // a finger drags "Drag me" by its grip from Done into To do
    await phone.click($("tab-board"));
    const grip = await cardTitled(phone, "Drag me").locator($("drag-handle")).boundingBox();
    const cdp = await context.newCDPSession(phone);
    let at = { x: grip.x + grip.width / 2, y: grip.y + grip.height / 2 };
    const touch = (type) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints: type === "touchEnd" ? [] : [{ ...at, id: 1 }] });
    const glide = async (to, steps = 10) => {
      const from = at;
      for (let i = 1; i <= steps; i++) {
        at = { x: from.x + ((to.x - from.x) * i) / steps, y: from.y + ((to.y - from.y) * i) / steps };
        await touch("touchMove");
      }
    };
    await touch("touchStart");
    await glide({ x: at.x - 12, y: at.y - 12 }, 3);
    // the columns are stacked: aim at To do's last card slot, again if the layout moved meanwhile
    for (let i = 0; i < 3 && (await phone.locator(`.column[data-status="todo"] ${$("drop-slot")}`).count()) === 0; i++) {
      const todo = await phone.locator('.column[data-status="todo"]').boundingBox();
      await glide({ x: todo.x + todo.width / 2, y: todo.y + todo.height - 10 });
    }
    await shootPage(phone, "phone-touch-drag");
    await touch("touchEnd");
    await waitCard(phone, "Drag me", "todo");
    await waitCard(pages.alice, "Drag me", "todo");
    assert.ok((await overflow()) <= 390);
    await context.close();
  });

  it("an admin creates a project and adds Bob, whose picker shows it at once; removed, he is told and moved", async () => {
    const { alice, bob } = pages;
    const pickerHas = (page, name, present) =>
      page.waitForFunction(
        ([sel, name, present]) => [...document.querySelector(sel).options].some((o) => o.textContent === name) === present,
        [$("project-picker"), name, present],
        { timeout: WAIT_MS },
      );
    // Bob is no admin
    assert.equal(await bob.locator($("admin-open")).count(), 0);

    await alice.click($("admin-open"));
    await alice.fill($("admin-project-name"), "Launch");
    await alice.click($("admin-create-project"));
    await pickerHas(alice, "Launch", true);
    // the new project is shown, with Alice its only member
    await alice.waitForFunction((sel) => document.querySelector(sel).selectedOptions[0]?.textContent === "Launch", $("project-picker"), {
      timeout: WAIT_MS,
    });
    await alice.locator(`${$("admin-member")}[data-user-id="alice"]`).waitFor({ timeout: WAIT_MS });
    assert.equal(await alice.locator($("task-card")).count(), 0);

    await alice.fill($("admin-member-name"), "Bob");
    assert.equal(await alice.locator($("admin-member-id")).inputValue(), "bob");
    await alice.click($("admin-add-member"));
    await alice.locator(`${$("admin-member")}[data-user-id="bob"]`).waitFor({ timeout: WAIT_MS });
    await pickerHas(bob, "Launch", true); // live, no reload
    await shoot("admin-added-bob");

    // Bob opens it; Alice sees him there, then removes him
    const launch = await bob.evaluate(
      (sel) => [...document.querySelector(sel).options].find((o) => o.textContent === "Launch").value,
      $("project-picker"),
    );
    await bob.selectOption($("project-picker"), launch);
    await waitOnline(alice, ["Alice", "Bob"]);
    await alice.click(`${$("admin-member")}[data-user-id="bob"] ${$("admin-remove-member")}`);
    await alice.locator(`${$("admin-member")}[data-user-id="bob"]`).waitFor({ state: "detached", timeout: WAIT_MS });
    await pickerHas(bob, "Launch", false);
    const told = bob.locator($("project-removed"));
    await told.waitFor({ timeout: WAIT_MS });
    assert.match(await told.innerText(), /You were removed from “Launch”; now showing “Demo project”/);
    assert.equal(await bob.evaluate((sel) => document.querySelector(sel).selectedOptions[0]?.textContent, $("project-picker")), "Demo project");
    await bob.locator($("task-card")).first().waitFor({ timeout: WAIT_MS });
    await shoot("admin-removed-bob");

    await alice.click($("admin-close"));
    await alice.selectOption($("project-picker"), { label: "Demo project" });
    await alice.locator($("task-card")).first().waitFor({ timeout: WAIT_MS });
  });

  it("a mention typed with the suggestions is highlighted for the other, and its notification opens the message", async () => {
    const { alice, bob } = pages;
    // typed, picked with the keyboard
    await alice.click($("chat-input"));
    await alice.keyboard.type("Could you look at this, @Bo");
    await alice.locator($("mention-list")).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await alice.locator($("mention-option")).allInnerTexts(), ["Bob @bob"]);
    await shoot("mention-suggestions");
    await alice.keyboard.press("Enter");
    assert.equal(await alice.inputValue($("chat-input")), "Could you look at this, @Bob ");
    await alice.keyboard.type("please");
    await alice.keyboard.press("Enter");

    const seen = bob.locator(`${$("message")}[data-mentions-me="true"]`, { hasText: "Could you look at this" });
    await seen.waitFor({ timeout: WAIT_MS });
    assert.equal(await seen.locator("mark.mention.me").innerText(), "@Bob");
    // on Alice's side highlighted too, though not as hers
    const sent = alice.locator($("message"), { hasText: "Could you look at this" });
    assert.equal(await sent.locator("mark.mention").innerText(), "@Bob");
    assert.equal(await sent.locator("mark.mention.me").count(), 0);

    // picked with the mouse
    await bob.fill($("chat-input"), "On it @al");
    await bob.locator($("mention-option"), { hasText: "Alice" }).click();
    assert.equal(await bob.inputValue($("chat-input")), "On it @Alice ");
    await bob.click($("chat-send"));
    await alice.locator(`${$("message")}[data-mentions-me="true"]`, { hasText: "On it" }).waitFor({ timeout: WAIT_MS });
    await shoot("mentions");

    // Bob's notification: a sentence, the message, and a link to it
    await bob.click($("bell"));
    const note = bob.locator(`${$("notification")}[data-type="mention"]`).first();
    await note.waitFor({ timeout: WAIT_MS });
    assert.equal(await note.locator($("notification-title")).innerText(), "Alice mentioned you");
    assert.equal(await note.locator($("notification-body")).innerText(), "Could you look at this, @Bob please");
    const link = note.locator($("notification-link"));
    const href = await link.getAttribute("href");
    assert.match(href, /^\/projects\/\d+\/messages\/\d+$/);
    await shoot("mention-notification");
    await link.click();
    const marked = bob.locator(`${$("message")}[data-shown="true"]`);
    await marked.waitFor({ timeout: WAIT_MS });
    assert.match(await marked.innerText(), /Could you look at this, @Bob please/);
    assert.equal(await marked.getAttribute("data-message-id"), href.split("/").pop());
    assert.match(new URL(bob.url()).hash, /^#project=\d+$/);

    // as an address too; the message is scrolled into the chat's view
    await bob.goto(`${server.url}${href}`);
    await marked.waitFor({ timeout: WAIT_MS });
    const inView = await marked.evaluate((el) => {
      const box = el.getBoundingClientRect();
      const list = el.closest('[data-testid="messages"]').getBoundingClientRect();
      return box.top >= list.top - 1 && box.bottom <= list.bottom + 1;
    });
    assert.ok(inView, "the linked message is not in view");
    await shoot("mention-opened");
  });
});
