// The hooks against the real server (`python -m server --dev`, started by tests/live.setup.mjs):
// a real socket.io-client connection per mounted provider, and plain socket.io-client peers
// acting as the other users. Nothing here is simulated: events come from the hub.

import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import { afterEach, describe, expect, inject, it } from "vitest";
import { Api } from "../src/api";
import {
  SocketProvider,
  createHubSocket,
  useCursors,
  useMembers,
  useNotifications,
  usePresence,
  useProjectChat,
  useProjects,
  useRealtime,
  useTaskBoard,
} from "../src/realtime";
import { Session, devSignIn, type SessionData } from "../src/session";
import type { Task } from "../src/types";

declare module "vitest" {
  export interface ProvidedContext {
    appUrl: string;
    hubUrl: string;
  }
}

const appUrl = inject("appUrl");
const hubUrl = inject("hubUrl");
const WAIT = { timeout: 5000 };

let seq = 0;
const opened: Socket[] = [];

afterEach(() => {
  cleanup();
  for (const s of opened.splice(0)) s.disconnect();
});

interface Signed extends SessionData {
  projectId: number;
}

/** A new user, member of the demo project (unique per test, so presence is predictable). */
async function signUp(name: string, role = "member"): Promise<Signed> {
  seq += 1;
  const userId = `${name.toLowerCase()}-${seq}-${Date.now() % 100000}`;
  const response = await fetch(`${appUrl}/api/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId, userName: name, role }),
  });
  const body = (await response.json()) as { token: string; userId: string; userName: string; projectId: number };
  return { token: body.token, user: { userId: body.userId, userName: body.userName }, mode: "dev", projectId: body.projectId };
}

/** Another user's client, joined to the project. */
async function peer(who: Signed): Promise<Socket> {
  const socket = io(hubUrl, { auth: { token: who.token }, forceNew: true, transports: ["websocket"] });
  opened.push(socket);
  await new Promise<void>((ok, fail) => {
    socket.once("connect", () => ok());
    socket.once("connect_error", fail);
  });
  const joined = await socket.timeout(5000).emitWithAck("joinProject", who.projectId);
  expect(joined.ok).toBe(true);
  return socket;
}

function rest(who: Signed): Api {
  return new Api(new Session(who, undefined, null), appUrl);
}

/** Mount hooks for `who` under a provider with its own real connection. */
function mount<T>(who: SessionData, hook: () => T, renew?: () => Promise<SessionData>) {
  const session = new Session(who, renew ?? ((u) => devSignIn({ userId: String(u.userId), userName: u.userName }, appUrl)), null);
  const socket = createHubSocket(hubUrl, session);
  opened.push(socket);
  const api = new Api(session, appUrl);
  const wrapper = ({ children }: { children: ReactNode }) => (
    <SocketProvider socket={socket} api={api} tokens={session} user={session.user}>
      {children}
    </SocketProvider>
  );
  return { ...renderHook(hook, { wrapper }), socket };
}

const names = (list: { userName: string }[]) => list.map((u) => u.userName).sort();

describe("usePresence", () => {
  it("starts from onlineMembers, then follows userJoined and userLeft", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const { result } = mount(ada, () => usePresence(ada.projectId));
    await waitFor(() => expect(names(result.current.members)).toContain("Ada"), WAIT);
    expect(names(result.current.members)).not.toContain("Ben");

    const benSocket = await peer(ben);
    await waitFor(() => expect(names(result.current.members)).toContain("Ben"), WAIT);
    benSocket.disconnect();
    await waitFor(() => expect(names(result.current.members)).not.toContain("Ben"), WAIT);
  });
});

describe("useProjectChat", () => {
  it("loads history, receives live messages and typing, and sends with an ack", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const benSocket = await peer(ben);
    const before = `before ${seq}`;
    expect((await benSocket.timeout(5000).emitWithAck("chatMessage", { projectId: ben.projectId, message: before })).ok).toBe(true);

    // Ben hears Ada arrive once the hook has joined the room: from then on, she is in it
    const adaJoined = new Promise((ok) => benSocket.on("userJoined", (e: { userId: string }) => e.userId === ada.user.userId && ok(e)));
    const { result } = mount(ada, () => useProjectChat(ada.projectId));
    await waitFor(() => expect(result.current.messages.map((m) => m.message)).toContain(before), WAIT);
    await adaJoined;
    const live = `live ${seq}`;
    const texts = () => result.current.messages.map((m) => m.message);
    expect((await benSocket.timeout(5000).emitWithAck("chatMessage", { projectId: ben.projectId, message: live })).ok).toBe(true);
    await waitFor(() => expect(texts()).toContain(live), WAIT);
    // once each, oldest first
    expect(texts().filter((t) => t === live).length).toBe(1);
    expect(texts().indexOf(before)).toBeLessThan(texts().indexOf(live));

    benSocket.emit("typing", { projectId: ben.projectId, isTyping: true });
    await waitFor(() => expect(names(result.current.typing)).toEqual(["Ben"]), WAIT);
    benSocket.emit("typing", { projectId: ben.projectId, isTyping: false });
    await waitFor(() => expect(result.current.typing).toEqual([]), WAIT);

    const received = new Promise<{ id: number; message: string; userName: string }>((ok) =>
      benSocket.on("newMessage", (m) => m.message === "from the hook" && ok(m)),
    );
    const id = await result.current.send("from the hook");
    const seen = await received;
    expect(seen).toMatchObject({ id, userName: "Ada" });
  });
});

describe("useTaskBoard and useNotifications", () => {
  it("apply another user's change live and deliver the assignee's notification", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const { result } = mount(ada, () => ({ board: useTaskBoard(ada.projectId), inbox: useNotifications(), rt: useRealtime() }));
    await waitFor(() => expect(result.current.rt.status).toBe("connected"), WAIT);
    await waitFor(() => expect(result.current.board.loading).toBe(false), WAIT);

    // Ben creates a task for Ada: it appears on her board, and she is notified
    const created = await rest(ben).request<Task>("POST", `/api/projects/${ben.projectId}/tasks`, {
      title: `Review ${seq}`,
      assigneeId: ada.user.userId,
    });
    await waitFor(() => expect(result.current.board.tasks.map((t) => t.id)).toContain(created.id), WAIT);

    await rest(ben).updateTask(created.id, { title: `Review ${seq} again`, status: "in_progress" });
    await waitFor(() => {
      const task = result.current.board.tasks.find((t) => t.id === created.id);
      expect(task).toMatchObject({ title: `Review ${seq} again`, status: "in_progress" });
    }, WAIT);
    expect(result.current.board.lastUpdate).toMatchObject({ taskId: created.id, updatedBy: { userName: "Ben" } });

    await waitFor(() => expect(result.current.inbox.unread).toBe(2), WAIT);
    const titles = result.current.inbox.notifications.map((n) => n.title);
    expect(titles).toEqual(
      expect.arrayContaining([`Ben assigned “Review ${seq}” to you`, `Ben moved “Review ${seq} again” to In progress`]),
    );

    const first = result.current.inbox.notifications[0];
    await result.current.inbox.markRead(first.id);
    await waitFor(() => expect(result.current.inbox.unread).toBe(1), WAIT);
    const stillUnread = await rest(ada).unreadNotifications();
    expect(stillUnread.map((n) => n.id)).not.toContain(first.id);
    expect(stillUnread).toHaveLength(1);
  });
});

describe("useTaskBoard, moves and versions", () => {
  it("a move is stored with its position; one made on an old version is refused and says who moved it", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const created = await rest(ben).createTask(ben.projectId, { title: `Contested ${seq}` });
    const { result } = mount(ada, () => useTaskBoard(ada.projectId));
    await waitFor(() => expect(result.current.tasks.map((t) => t.id)).toContain(created.id), WAIT);
    const mine = () => result.current.tasks.find((t) => t.id === created.id)!;
    expect(mine()).toMatchObject({ version: 1, position: expect.any(Number) });

    await act(() => result.current.moveTask(created.id, "in_progress", 0.5));
    expect(mine()).toMatchObject({ status: "in_progress", position: 0.5, version: 2 });
    expect((await rest(ben).request<Task>("GET", `/api/tasks/${created.id}`)).position).toBe(0.5);

    // Ben moves it on version 2; Ada's board hears of it, then Ada moves it on version 2 too
    const theirs = await rest(ben).updateTask(created.id, { status: "done", position: 9, version: 2 });
    await waitFor(() => expect(mine().status).toBe("done"), WAIT);
    const stale = { ...mine(), version: 2 };
    await expect(result.current.updateTask(created.id, { title: "mine" }, stale)).rejects.toMatchObject({ name: "TaskConflict" });
    await waitFor(() => expect(result.current.notices[String(created.id)]).toMatchObject({ kind: "conflict", by: { userName: "Ben" } }), WAIT);
    expect(mine()).toMatchObject({ title: `Contested ${seq}`, status: "done", version: theirs.version });
  });
});

describe("useProjects and useMembers", () => {
  it("follow an admin creating a project, adding a member and removing them", async () => {
    const root = await signUp("Root", "admin");
    const ada = await signUp("Ada");
    const { result } = mount(ada, () => ({ projects: useProjects(), rt: useRealtime() }));
    await waitFor(() => expect(result.current.rt.status).toBe("connected"), WAIT);
    await waitFor(() => expect(result.current.projects.projects).not.toBeNull(), WAIT);

    const admin = rest(root);
    const project = await admin.createProject(`Launch ${seq}`);
    const watch = mount(root, () => useMembers(project.id));
    await waitFor(() => expect(watch.result.current.members.map((m) => m.userName)).toEqual(["Root"]), WAIT);

    await admin.addMember(project.id, { userId: String(ada.user.userId), userName: "Ada" });
    await waitFor(() => expect(result.current.projects.projects?.map((p) => p.id)).toContain(project.id), WAIT);
    await waitFor(() => expect(watch.result.current.members.map((m) => m.userName)).toEqual(["Root", "Ada"]), WAIT);

    await admin.removeMember(project.id, ada.user.userId);
    await waitFor(() => expect(result.current.projects.projects?.map((p) => p.id)).not.toContain(project.id), WAIT);
    expect(result.current.projects.removed).toEqual({ projectId: project.id, name: `Launch ${seq}` });
    await waitFor(() => expect(watch.result.current.members.map((m) => m.userName)).toEqual(["Root"]), WAIT);
  });
});

describe("useCursors", () => {
  it("shows another user's pointer and sends our own", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const benSocket = await peer(ben);
    const { result } = mount(ada, () => ({ cursors: useCursors(ada.projectId), presence: usePresence(ada.projectId) }));
    await waitFor(() => expect(names(result.current.presence.members)).toContain("Ada"), WAIT);

    benSocket.emit("cursorMove", { projectId: ben.projectId, taskId: null, position: { x: 0.25, y: 0.5 } });
    await waitFor(() => expect(result.current.cursors.cursors).toMatchObject([{ userName: "Ben", position: { x: 0.25, y: 0.5 } }]), WAIT);

    const got = new Promise((ok) => benSocket.on("cursorUpdate", ok));
    result.current.cursors.move(7, { x: 0.75, y: 0.125 });
    await expect(got).resolves.toMatchObject({ userName: "Ada", taskId: 7, position: { x: 0.75, y: 0.125 } });

    // Ben leaves: his cursor goes
    benSocket.disconnect();
    await waitFor(() => expect(result.current.cursors.cursors).toEqual([]), WAIT);
  });
});

describe("the provider", () => {
  it("answers `Authentication failed: invalid token` with a fresh token, and connects", async () => {
    const ada = await signUp("Ada");
    let renewals = 0;
    const stale = { ...ada, token: "not.a.valid-token" };
    const { result } = mount(stale, () => useRealtime(), async () => {
      renewals += 1;
      return ada;
    });
    await waitFor(() => expect(result.current.status).toBe("connected"), WAIT);
    expect(renewals).toBe(1);
  });

  it("reports `failed` when no fresh token can be had", async () => {
    const ada = await signUp("Ada");
    const { result, socket } = mount({ ...ada, token: "not.a.valid-token" }, () => useRealtime(), () =>
      Promise.reject(new Error("sign in again")),
    );
    await waitFor(() => expect(result.current.status).toBe("failed"), WAIT);
    expect(socket.connected).toBe(false);
  });

  it("keeps a project's room while any hook holds it, and leaves with the last", async () => {
    const ada = await signUp("Ada");
    const ben = await signUp("Ben");
    const benSocket = await peer(ben);
    const left: string[] = [];
    benSocket.on("userLeft", (e: { userName: string }) => left.push(e.userName));

    const { result, rerender } = renderHookSwitch(ada);
    await waitFor(() => expect(names(result.current.members)).toContain("Ben"), WAIT);
    rerender({ presence: true, cursors: false }); // one holder goes, one stays
    await new Promise((r) => setTimeout(r, 300));
    expect(left).toEqual([]);
    rerender({ presence: false, cursors: false }); // the last one goes
    await waitFor(() => expect(left).toEqual(["Ada"]), WAIT);
  });
});

function renderHookSwitch(who: Signed) {
  const session = new Session(who, undefined, null);
  const socket = createHubSocket(hubUrl, session);
  opened.push(socket);
  const api = new Api(session, appUrl);
  const wrapper = ({ children }: { children: ReactNode }) => (
    <SocketProvider socket={socket} api={api} tokens={session} user={session.user}>
      {children}
    </SocketProvider>
  );
  return renderHook(
    ({ presence, cursors }: { presence: boolean; cursors: boolean }) => {
      const a = usePresence(presence ? who.projectId : null);
      useCursors(cursors ? who.projectId : null);
      return a;
    },
    { wrapper, initialProps: { presence: true, cursors: true } },
  );
}
